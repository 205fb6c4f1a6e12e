"""BatchQueue: merges concurrent calls, returns each caller its own rows,
refuses work beyond max_enqueued_batches with TF Serving's 503, and keeps
answering after close (a retired version still serves requests in flight)."""
import threading

import numpy as np
import pytest

from common.config import BatchingConfig
from serving.batching import QUEUE_FULL, BatchQueue, Demand
from serving.errors import Unavailable


def test_concurrent_calls_are_merged_and_split_back():
    sizes = []

    def run(arrays):
        sizes.append(len(arrays["x"]))
        return {"y": arrays["x"] * 2}

    demand = Demand()
    queue = BatchQueue(run, BatchingConfig(max_batch_size=64, batch_timeout_micros=200_000,
                                           num_batch_threads=1), demand)
    results = {}
    start = threading.Barrier(16)

    def call(i):
        with demand:
            start.wait()
            results[i] = queue.submit({"x": np.full(3, i)}, 3)["y"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    queue.close()
    assert {i: list(r) for i, r in results.items()} == {i: [2 * i] * 3 for i in range(16)}
    assert sum(sizes) == 48 and max(sizes) > 3  # some calls shared a batch
    assert max(sizes) <= 64


def test_a_full_queue_answers_unavailable():
    release = threading.Event()
    started = threading.Event()

    def run(arrays):
        started.set()
        release.wait(timeout=30)
        return {"y": arrays["x"]}

    demand = Demand()
    queue = BatchQueue(run, BatchingConfig(max_batch_size=1, batch_timeout_micros=0,
                                           max_enqueued_batches=1, num_batch_threads=1), demand)
    outcomes = []

    def call():
        with demand:
            outcomes.append(queue.submit({"x": np.zeros(1)}, 1)["y"].shape)

    with demand, demand:  # two other requests "in flight": no inline shortcut
        first = threading.Thread(target=call)
        first.start()
        assert started.wait(timeout=30)          # running
        second = threading.Thread(target=call)
        second.start()                            # queued (capacity 1 batch of 1 row)
        while not queue._queue:                   # pylint: disable=protected-access
            pass
        with pytest.raises(Unavailable, match=QUEUE_FULL):
            queue.submit({"x": np.zeros(1)}, 1)
        release.set()
        first.join(timeout=30)
        second.join(timeout=30)
    assert outcomes == [(1,), (1,)]
    queue.close()
    assert queue.submit({"x": np.ones(2)}, 2)["y"].tolist() == [1.0, 1.0]  # after close: inline
