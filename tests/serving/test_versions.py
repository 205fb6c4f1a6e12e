"""serving.versions: when a pushed version directory is complete, settled or failed."""
import os
import shutil
import time

import pytest

from serving import versions
from serving.versions import FAILED, READY, SETTLING, VersionWatch


def make_version(path, shards=1, skip=()):
    """A SavedModel-shaped directory (file contents do not matter here)."""
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    files = ["saved_model.pb", "variables/variables.index"] + [
        f"variables/variables.data-{i:05d}-of-{shards:05d}" for i in range(shards)]
    for name in files:
        if name not in skip:
            with open(os.path.join(path, name), "wb") as f:
                f.write(b"x" * 10)
    return path


@pytest.mark.parametrize("skip, shards, complete", [
    ((), 1, True),
    ((), 3, True),
    (("saved_model.pb",), 1, False),
    (("variables/variables.index",), 1, False),
    (("variables/variables.data-00001-of-00003",), 3, False),
    (("variables/variables.data-00000-of-00001",), 1, False),
])
def test_a_version_is_complete_with_its_proto_index_and_every_shard(tmp_path, skip, shards, complete):
    assert versions.is_complete(make_version(str(tmp_path / "1"), shards, skip)) is complete


def test_only_complete_numbered_directories_are_versions(tmp_path):
    make_version(str(tmp_path / "1"))
    make_version(str(tmp_path / ".staging-2"))
    make_version(str(tmp_path / "3"), skip=("variables/variables.index",))
    make_version(str(tmp_path / "0"))
    assert versions.complete_versions(str(tmp_path)) == [1]
    assert versions.complete_versions(str(tmp_path / "missing")) == []


class Clock:
    """Wall-clock time plus an offset the test moves forward."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self):
        return time.time() + self.offset


def test_a_fresh_directory_settles_after_the_interval_and_a_change_restarts_the_clock(tmp_path):
    clock = Clock()
    watch = VersionWatch(settle_s=5, clock=clock)
    path = make_version(str(tmp_path / "1"))
    assert watch.check(path) == SETTLING          # just written
    clock.offset = 3
    assert watch.check(path) == SETTLING
    make_version(path, shards=2)                   # the copy goes on: a new shard appears
    clock.offset = 6
    assert watch.check(path) == SETTLING           # 3 s since the change
    clock.offset = 12
    assert watch.check(path) == READY


def test_a_directory_unchanged_for_the_interval_is_ready_at_first_sight(tmp_path):
    path = make_version(str(tmp_path / "1"))
    clock = Clock()
    clock.offset = 10
    assert VersionWatch(settle_s=5, clock=clock).check(path) == READY


def test_a_failed_load_is_not_retried_until_the_files_change(tmp_path):
    clock = Clock()
    watch = VersionWatch(settle_s=1, clock=clock)
    path = make_version(str(tmp_path / "1"))
    clock.offset = 2
    assert watch.check(path) == READY
    failure = watch.record_failure(path, OSError("truncated saved_model.pb"))
    assert (failure.error_code, failure.message) == ("UNKNOWN", "truncated saved_model.pb")
    clock.offset = 100
    assert watch.check(path) == FAILED and watch.failure(path) == failure
    shutil.copy(os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pb.new"))
    os.replace(os.path.join(path, "saved_model.pb.new"), os.path.join(path, "saved_model.pb"))
    assert watch.check(path) == SETTLING and watch.failure(path) is None  # fixed in place
    clock.offset = 102
    assert watch.check(path) == READY


def test_tensorflow_error_codes_are_named_like_tf_serving():
    import tensorflow as tf

    assert versions.error_code_of(tf.errors.DataLossError(None, None, "x")) == "DATA_LOSS"
    assert versions.error_code_of(FileNotFoundError("x")) == "NOT_FOUND"
    assert versions.error_code_of(ValueError("x")) == "UNKNOWN"


def test_the_last_state_needs_no_walk_once_checked(tmp_path):
    clock = Clock()
    watch = VersionWatch(settle_s=1, clock=clock)
    path = make_version(str(tmp_path / "1"))
    assert watch.last_state(path) == SETTLING      # never checked: checks now
    clock.offset = 2
    assert watch.last_state(path) == READY
    watch.record_failure(path, ValueError("bad"))
    assert watch.last_state(path) == FAILED
