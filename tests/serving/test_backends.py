"""Versions pushed during load are picked up with zero failed requests, and
broken or half-copied versions never retire the version that serves.

The gateway runs TF Serving's default policy (no models.config: serve the
latest version). Versions 2 and 3 are pushed the way the Pusher pushes
(staging directory + rename) while four clients keep sending requests; an
incomplete directory (no saved_model.pb) and a staging directory must be
ignored. Every answer must be a 200 whose value matches the version that
answered, versions must only move forward, and the old versions are retired.
"""
import os
import shutil
import threading
import time

import pytest

from serving.client import Client
from serving.server import launch
from testing.tiny_model import INSTANCE, bias_of, gateway_args, gateway_env, probability, push_version
from tests.conftest import TAXI_CONFIG

pytestmark = pytest.mark.integration

LOAD_SECONDS = 20.0
CLIENTS = 4


def test_pushed_versions_are_hot_swapped_under_load(tmp_path, tiny_models):
    root = str(tmp_path)
    base = os.path.join(root, "serving", "taxi")
    push_version(base, 1, tiny_models[1])
    with launch(gateway_args(TAXI_CONFIG, root, "--no_request_log"), env=gateway_env()) as server:
        results = []   # (thread, status, version, prediction)
        stop = threading.Event()
        lock = threading.Lock()

        def load(thread: int) -> None:
            with Client(server.base_url) as client:
                while not stop.is_set():
                    status, body, headers = client.request(
                        "POST", "/v1/models/taxi:predict", {"instances": [INSTANCE]})
                    version = int(headers.get("X-Model-Version", 0))
                    prediction = body["predictions"][0][0] if status == 200 else body
                    with lock:
                        results.append((thread, status, version, prediction))

        threads = [threading.Thread(target=load, args=(i,)) for i in range(CLIENTS)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            time.sleep(4)
            os.makedirs(os.path.join(base, "9", "variables"))     # incomplete: no saved_model.pb
            os.makedirs(os.path.join(base, ".staging-10"))       # the Pusher's temporary name
            push_version(base, 2, tiny_models[2])
            time.sleep(7)
            push_version(base, 3, tiny_models[3])
            time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - start)))
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        with Client(server.base_url) as client:
            status_code, status, _ = client.request("GET", "/v1/models/taxi")

    failures = [r for r in results if r[1] != 200]
    assert failures == [], failures[:5]
    assert len(results) > 200
    for _, _, version, prediction in results:
        assert prediction == pytest.approx(
            probability(bias_of(version), INSTANCE["fare"], INSTANCE["payment_type"]), rel=1e-5)
    for thread in range(CLIENTS):
        seen = [r[2] for r in results if r[0] == thread]
        assert seen == sorted(seen), "a client went back to an older version"
        assert seen[0] == 1 and seen[-1] == 3
    assert {r[2] for r in results} == {1, 2, 3}
    assert status_code == 200
    assert [s["version"] for s in status["model_version_status"]] == ["3"]


def test_broken_and_partial_pushes_under_load_fail_no_request(tmp_path, tiny_models):
    """Version 2 is pushed broken (truncated saved_model.pb, renamed into place), then
    fixed in place; version 3 is copied file by file, its variables in two halves with
    pauses longer than the poll interval. A client keeps sending requests throughout."""
    root = str(tmp_path)
    base = os.path.join(root, "serving", "taxi")
    push_version(base, 1, tiny_models[1])
    with launch(gateway_args(TAXI_CONFIG, root, "--no_request_log"), env=gateway_env()) as server:
        results = []   # (status, version, prediction)
        stop = threading.Event()

        def load() -> None:
            with Client(server.base_url) as client:
                while not stop.is_set():
                    status, body, headers = client.request(
                        "POST", "/v1/models/taxi:predict", {"instances": [INSTANCE]})
                    results.append((status, int(headers.get("X-Model-Version", 0)),
                                    body["predictions"][0][0] if status == 200 else body))

        def states() -> dict:
            with Client(server.base_url) as client:
                body = client.request("GET", "/v1/models/taxi")[1]
            return {s["version"]: s for s in body["model_version_status"]}

        def wait_for(condition, timeout=60.0) -> None:
            deadline = time.monotonic() + timeout
            while not condition():
                assert time.monotonic() < deadline, states()
                time.sleep(0.1)

        thread = threading.Thread(target=load)
        thread.start()
        try:
            time.sleep(1)
            staging = os.path.join(base, ".staging-2")
            shutil.copytree(tiny_models[2], staging)
            with open(os.path.join(staging, "saved_model.pb"), "r+b") as f:
                f.truncate(100)
            os.rename(staging, os.path.join(base, "2"))
            wait_for(lambda: states().get("2", {}).get("state") == "END")
            broken = states()
            assert broken["2"]["status"]["error_code"] != "OK" and broken["2"]["status"]["error_message"]
            assert broken["1"]["state"] == "AVAILABLE"
            with Client(server.base_url) as client:
                assert client.request("GET", "/healthz")[0] == 200
            time.sleep(1)
            shutil.copy(os.path.join(tiny_models[2], "saved_model.pb"), os.path.join(base, "2"))
            wait_for(lambda: list(states()) == ["2"])

            target = os.path.join(base, "3")
            os.makedirs(os.path.join(target, "variables"))
            for name in ("saved_model.pb", "fingerprint.pb"):
                shutil.copy(os.path.join(tiny_models[3], name), target)
            shutil.copytree(os.path.join(tiny_models[3], "assets"), os.path.join(target, "assets"))
            time.sleep(1)
            for name in sorted(os.listdir(os.path.join(tiny_models[3], "variables"))):
                with open(os.path.join(tiny_models[3], "variables", name), "rb") as f:
                    data = f.read()
                with open(os.path.join(target, "variables", name), "wb") as f:
                    f.write(data[:len(data) // 2])
                    f.flush()
                    time.sleep(1)
                    f.write(data[len(data) // 2:])
            wait_for(lambda: list(states()) == ["3"])
            time.sleep(1)
        finally:
            stop.set()
            thread.join(timeout=60)

    failures = [r for r in results if r[0] != 200]
    assert failures == [], failures[:5]
    assert len(results) > 50
    for _, version, prediction in results:
        assert prediction == pytest.approx(
            probability(bias_of(version), INSTANCE["fare"], INSTANCE["payment_type"]), rel=1e-5)
    seen = [r[1] for r in results]
    assert seen == sorted(seen) and seen[0] == 1 and seen[-1] == 3 and 2 in seen
