"""frozen_imports: no collection while the body runs; its objects frozen after; later garbage still collected."""
import gc
import weakref

import pytest

from common.frozen_imports import frozen_imports


@pytest.fixture(autouse=True)
def restore_gc():
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


class Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_nothing_is_collected_in_the_body_and_its_objects_are_frozen_after():
    collections = []
    callback = lambda phase, info: collections.append(info["generation"]) if phase == "start" else None  # noqa: E731
    gc.callbacks.append(callback)
    try:
        frozen_before = gc.get_freeze_count()
        with frozen_imports():
            made = [[i] for i in range(100_000)]  # far past gen-0's threshold of 700
            assert not gc.isenabled()
        assert collections == []
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen_before + len(made)
    finally:
        gc.callbacks.remove(callback)


def test_garbage_made_afterwards_is_still_collected():
    with frozen_imports():
        pass
    node = Node()
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is None


def test_a_disabled_collector_stays_disabled():
    gc.disable()
    with frozen_imports():
        pass
    assert not gc.isenabled()
