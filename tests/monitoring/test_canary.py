"""The automatic canary against a real gateway over real tiny SavedModels and real REST traffic.

Versions: 1 is stable; 2 answers like it (same formula); 3 is broken (its bias
pushes every answer to the positive class). While users' requests flow from a
thread, ``monitoring.canary.run`` first canaries 3 at 25 %: the analysis sees its
outputs far off and withdraws it by itself, users having got its answers on about
a quarter of their rows only. Then 2 goes out as a shadow: users never see it, the
analysis passes and it is promoted. Both verdicts are in ML Metadata.
"""
import os
import threading

import pytest

from common.loader import load_config
from monitoring import locations
from monitoring.canary import PROMOTE, WITHDRAW, Gateway, run, summary
from monitoring.canary_analysis import FAIL, PASS
from monitoring.metadata import CANARY_TYPE, open_store
from monitoring.served import feature_values
from serving import request_log
from serving.client import Client
from serving.server import launch
from testing.served_spans import taxi_rows
from testing.tiny_model import ADMIN_TOKEN, bias_of, gateway_args, gateway_env, push_version, save_tiny_model
from tests.conftest import TAXI_CONFIG

pytestmark = pytest.mark.integration

ROWS_PER_REQUEST = 5
# Latency is not what this test breaks: a high floor keeps a loaded CI machine's p99 spikes
# on a few dozen requests from failing the good candidate.
SETTINGS = ["rollout_analysis.canary_percent=25", "rollout_analysis.min_requests=30",
            "rollout_analysis.poll_seconds=0.3", "rollout_analysis.timeout_seconds=60",
            "rollout_analysis.p99_latency_floor_ms=500"]


class Users(threading.Thread):
    """Sends regress requests of a few taxi rows until stopped; counts the answers."""

    def __init__(self, url, rows):
        super().__init__(daemon=True)
        self.url, self.rows, self.stop, self.answered = url, rows, threading.Event(), 0

    def run(self):
        with Client(self.url) as client:
            while not self.stop.is_set():
                start = (self.answered * ROWS_PER_REQUEST) % (len(self.rows) - ROWS_PER_REQUEST)
                status, body, _ = client.request("POST", "/v1/models/taxi:regress",
                                                 {"examples": self.rows[start:start + ROWS_PER_REQUEST]})
                assert status == 200, body
                self.answered += 1


def primary_rows(log_dir):
    """(version, logged at, ms) of every row users got (primary rows)."""
    return [(int(feature_values(e.features.feature[request_log.VERSION])[0]),
             int(feature_values(e.features.feature[request_log.TIMESTAMP_MS])[0]))
            for span in request_log.list_spans(log_dir)
            for e in request_log.iter_window(log_dir, span, role="primary")]


def test_a_broken_canary_is_withdrawn_and_a_good_shadow_is_promoted(tmp_path, taxi_config):
    root = str(tmp_path)
    base = os.path.join(root, "serving", "taxi")
    good = save_tiny_model(os.path.join(root, "good"), taxi_config, bias_of(1))
    push_version(base, 1, good)
    push_version(base, 2, good)
    push_version(base, 3, save_tiny_model(os.path.join(root, "broken"), taxi_config, 10.0))
    overrides = [f"serving.push_dir={root}/serving", f"serving.request_log_dir={root}/request_log",
                 f"run_dir={root}/runs", *SETTINGS]
    cfg = load_config(TAXI_CONFIG, overrides)
    rows, _ = taxi_rows(cfg, 300, seed=5)
    printed = []
    with launch(gateway_args(TAXI_CONFIG, root), env=gateway_env()) as server:
        gateway = Gateway(server.base_url, "taxi", ADMIN_TOKEN)
        gateway.rollout("promote", {"version": 1})  # the gateway started with the newest (3) stable
        users = Users(server.base_url, rows)
        users.start()
        try:
            broken = run(cfg, gateway, 3, report=printed.append)
            shadow = run(cfg, gateway, 2, shadow=True, report=printed.append)
        finally:
            users.stop.set()
            users.join(timeout=30)
        with Client(server.base_url) as client:
            status, state, _ = client.request("GET", "/v1/admin/models/taxi/rollout",
                                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    print(summary(broken), summary(shadow), sep="\n")
    assert broken.verdict.status == FAIL and broken.action == WITHDRAW, summary(broken)
    assert "output_distance" in broken.verdict.reason, summary(broken)
    assert shadow.verdict.status == PASS and shadow.action == PROMOTE, summary(shadow)
    assert shadow.verdict.candidate.requests >= 30 and shadow.mode == "shadow"
    assert status == 200 and state["stable"] == 2 and state["canary"] is None and state["shadow"] is None

    served = primary_rows(os.path.join(root, "request_log"))
    promoted_ms = state["updated_at"] * 1000
    assert all(at >= promoted_ms for version, at in served if version == 2), "users saw the shadow's answers"
    served = [version for version, _ in served]
    broken_share = served.count(3) / len(served)
    assert 0 < broken_share <= 0.35, f"users got the broken version on {broken_share:.0%} of their rows"

    store = open_store(locations.metadata_path(cfg))
    records = store.get_executions_by_type(CANARY_TYPE)
    got = [(e.properties["candidate"].int_value, e.properties["status"].string_value,
            e.properties["action"].string_value) for e in records]
    assert got == [(3, FAIL, WITHDRAW), (2, PASS, PROMOTE)]
    assert "output_distance" in records[0].properties["reason"].string_value
