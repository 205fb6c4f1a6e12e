"""A broken, partial or in-progress push never retires the working version.

In-process ``InProcessBackend`` over the tiny models (versions differ by
bias): a version whose ``saved_model.pb`` is truncated is reported in the
model status as TF Serving reports a failed load (state END, error code and
message) while the previous version keeps answering; fixing its files in
place makes it load; a directory still being copied is not loaded before it
is complete and settled.
"""
import os
import shutil
import time

import pytest

from serving import models_config
from serving.backends import InProcessBackend
from testing.tiny_model import INSTANCE, bias_of, probability, push_version

POLL = 0.1
MODEL = "taxi"


def predict(backend, version=None):
    version = version or max(backend.versions(MODEL))
    answer = backend.infer(MODEL, version, "predict", {"instances": [INSTANCE]}, {})
    return answer["predictions"][0][0]


def expected(version):
    return pytest.approx(probability(bias_of(version), INSTANCE["fare"], INSTANCE["payment_type"]), rel=1e-5)


def states(backend):
    return [(s["version"], s["state"]) for s in backend.status(MODEL, None)["model_version_status"]]


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(POLL)


def push_broken(base, version, source):
    """The Pusher's atomic push of a model whose saved_model.pb was cut short."""
    staging = os.path.join(base, f".staging-{version}")
    shutil.copytree(source, staging)
    pb = os.path.join(staging, "saved_model.pb")
    with open(pb, "r+b") as f:
        f.truncate(os.path.getsize(pb) // 3)
    os.rename(staging, os.path.join(base, str(version)))


@pytest.fixture
def backend(tmp_path, tiny_models):
    base = str(tmp_path / MODEL)
    push_version(base, 1, tiny_models[1])
    backend = InProcessBackend({MODEL: base}, poll_interval_s=POLL)
    backend.start()
    yield backend, base
    backend.close()


def test_a_broken_newest_version_is_reported_and_the_previous_keeps_serving(backend, tiny_models):
    backend, base = backend
    push_broken(base, 2, tiny_models[2])
    wait_for(lambda: ("2", "END") in states(backend))
    assert backend.versions(MODEL) == [1]
    assert predict(backend) == expected(1)
    (failed,) = backend.status(MODEL, 2)["model_version_status"]
    assert failed["state"] == "END" and failed["status"]["error_code"] != "OK"
    assert failed["status"]["error_message"]
    assert states(backend) == [("2", "END"), ("1", "AVAILABLE")]
    assert backend.available_versions(MODEL) == [1]
    time.sleep(5 * POLL)
    assert backend.versions(MODEL) == [1]  # not retried while unchanged
    # Fixed in place: the same version directory, good files.
    shutil.copy(os.path.join(tiny_models[2], "saved_model.pb"), os.path.join(base, "2", "saved_model.pb"))
    wait_for(lambda: backend.versions(MODEL) == [2])
    assert predict(backend) == expected(2)
    assert states(backend) == [("2", "AVAILABLE")]


def test_a_copy_in_progress_is_loaded_only_once_complete_and_settled(backend, tiny_models):
    backend, base = backend
    target = os.path.join(base, "3")
    os.makedirs(os.path.join(target, "variables"))
    shutil.copy(os.path.join(tiny_models[3], "saved_model.pb"), target)   # the proto first (incomplete)
    time.sleep(5 * POLL)
    assert backend.versions(MODEL) == [1] and states(backend) == [("1", "AVAILABLE")]
    for name in sorted(os.listdir(tiny_models[3])):
        source = os.path.join(tiny_models[3], name)
        if name != "saved_model.pb" and os.path.isfile(source):
            shutil.copy(source, target)
    shutil.copytree(os.path.join(tiny_models[3], "assets"), os.path.join(target, "assets"))
    shutil.copytree(os.path.join(tiny_models[3], "variables"), os.path.join(target, "variables"),
                    dirs_exist_ok=True)
    wait_for(lambda: backend.versions(MODEL) == [3])
    assert predict(backend) == expected(3)


def test_labels_and_specific_versions_skip_a_failed_version(tmp_path, tiny_models):
    base = str(tmp_path / MODEL)
    push_version(base, 1, tiny_models[1])
    push_broken(base, 2, tiny_models[2])
    config = str(tmp_path / "models.config")
    models_config.write(config, [models_config.ModelEntry(MODEL, base, versions=(1, 2),
                                                          labels={"stable": 1, "canary": 2})])
    backend = InProcessBackend({}, config, poll_interval_s=POLL)
    backend.start()
    try:
        assert backend.versions(MODEL) == [1]
        assert backend.labels(MODEL) == {"stable": 1}
        assert states(backend) == [("2", "END"), ("1", "AVAILABLE")]
    finally:
        backend.close()


def test_a_gateway_with_only_a_broken_version_does_not_start_and_says_why(tmp_path, tiny_models):
    base = str(tmp_path / MODEL)
    push_broken(base, 1, tiny_models[1])
    backend = InProcessBackend({MODEL: base}, poll_interval_s=POLL)
    with pytest.raises(RuntimeError, match=r"no servable version found .*failed to load: \{'taxi version 1'"):
        backend.start()
