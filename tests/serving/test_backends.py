"""Versions pushed during 20 seconds of load are picked up with zero failed requests.

The gateway runs TF Serving's default policy (no models.config: serve the
latest version). Versions 2 and 3 are pushed the way the Pusher pushes
(staging directory + rename) while four clients keep sending requests; an
incomplete directory (no saved_model.pb) and a staging directory must be
ignored. Every answer must be a 200 whose value matches the version that
answered, versions must only move forward, and the old versions are retired.
"""
import os
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
