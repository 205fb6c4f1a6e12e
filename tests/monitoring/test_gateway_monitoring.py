"""Monitoring end to end: a real gateway serves the tiny taxi model, logs two spans of traffic
(the second shifted), takes the labels back through its feedback endpoint, and
``python -m monitoring check`` (a separate process, reading the gateway's /metrics over
HTTP) raises exactly the alerts the shift, the labels and the latency limit call for.

Spans are time windows: with ``serving.request_log_window_seconds`` at 6 s, each span's
requests are sent right after a window starts, and the check runs once the second
window has ended (the newest closed span).
"""
import json
import os
import subprocess
import sys
import time

import pytest
import tensorflow_data_validation as tfdv

from common.loader import load_config
from monitoring.history import load_history
from monitoring.reference import served_features
from serving import request_log
from serving.client import Client
from serving.server import launch
from testing.served_spans import label_for, shifted, taxi_rows, write_calibration_for
from testing.tiny_model import bias_of, gateway_args, gateway_env, push_version, save_tiny_model
from tests.conftest import REPO, TAXI_CONFIG

pytestmark = pytest.mark.integration

WINDOW = 6
ROWS = 200
BATCH = 25  # rows per request: under the test gateway's 20,000-byte body limit
EXPECTED = {
    ("skew", "payment_type", "l_infinity"), ("drift", "payment_type", "l_infinity"),
    ("skew", "fare", "jensen_shannon"), ("drift", "fare", "jensen_shannon"),
    ("skew", "company", "missing_fraction"), ("drift", "company", "missing_fraction"),
    ("skew", "company", "l_infinity"),
    ("schema", "company", "FEATURE_TYPE_NOT_PRESENT"),  # the schema's presence floor for company
    ("output_drift", "predicted_class", "l_infinity"),
    ("labelled_accuracy", "label", "accuracy"),
    ("p99_latency", "requests", "p99_latency_ms"),
}


def wait_for_window_start(margin=0.3):
    """Sleeps into the first ``margin`` seconds of the next request-log window."""
    time.sleep(WINDOW - time.time() % WINDOW + margin)


def serve(client, rows):
    """Regress requests of BATCH rows (examples may lack optional features); returns
    [(request id, row, probability)] per row."""
    answered = []
    for start in range(0, len(rows), BATCH):
        status, body, headers = client.request("POST", "/v1/models/taxi:regress",
                                               {"examples": rows[start:start + BATCH]})
        assert status == 200, body
        answered += [(headers["X-Request-Id"], i, p) for i, p in enumerate(body["results"])]
    return answered


def send_labels(client, cfg, rows, answered, correct):
    """Labels making each row's true class its prediction (``correct``) or the other class."""
    items = [{"request_id": rid, "row": r, "label": label_for(cfg, row, (p > 0.5) == correct)}
             for row, (rid, r, p) in zip(rows, answered)]
    for start in range(0, len(items), BATCH):  # serving.max_batch_rows bounds feedback items too
        status, answer, _ = client.request("POST", "/v1/models/taxi/feedback",
                                           {"feedback": items[start:start + BATCH]})
        assert status == 200 and answer["accepted"] == len(items[start:start + BATCH]), answer


def check(overrides, *extra):
    done = subprocess.run([sys.executable, "-m", "monitoring", "check", "--config", TAXI_CONFIG,
                           *overrides, *extra], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
    assert done.returncode in (0, 1), done.stderr
    return done


def test_a_shifted_span_served_by_the_gateway_raises_exactly_the_expected_alerts(tmp_path, taxi_config):
    root = str(tmp_path)
    push_version(os.path.join(root, "serving", "taxi"), 1,
                 save_tiny_model(os.path.join(root, "tiny"), taxi_config, bias_of(1)))
    settings = [f"serving.request_log_window_seconds={WINDOW}", "serving.feedback_window_spans=100000"]
    overrides = [f"serving.request_log_dir={root}/request_log", f"run_dir={root}/runs",
                 f"monitoring.calibration={root}/calibration/calibration.json",
                 "monitoring.max_p99_latency_ms=0.001", *settings]
    cfg = load_config(TAXI_CONFIG, overrides)
    schema = tfdv.load_schema_text(cfg.schema_path)
    features = served_features(cfg, schema)
    write_calibration_for(f"{root}/calibration", cfg, schema, load_history(cfg, schema, features), features,
                          ROWS)
    before, _ = taxi_rows(cfg, ROWS, seed=11)
    after = shifted(taxi_rows(cfg, ROWS, seed=12)[0], out_of_domain=0)
    log_dir = os.path.join(root, "request_log")
    extra = [arg for setting in settings for arg in ("--set", setting)]
    with launch(gateway_args(TAXI_CONFIG, root, *extra), env=gateway_env()) as server, \
            Client(server.base_url) as client:
        wait_for_window_start()
        first = serve(client, before)
        wait_for_window_start()
        second = serve(client, after)
        send_labels(client, cfg, before, first, correct=True)
        send_labels(client, cfg, after, second, correct=False)
        wait_for_window_start()  # the second span is closed now
        deadline = time.monotonic() + 30
        while sum(len(request_log.read_window(log_dir, s)) for s in request_log.list_spans(log_dir)) < 2 * ROWS:
            assert time.monotonic() < deadline, "the gateway did not log every row"
            time.sleep(0.2)
        spans = request_log.list_spans(log_dir)
        assert [len(request_log.read_window(log_dir, s)) for s in spans] == [ROWS, ROWS], (
            "each span's requests should fall into one window")
        done = check([arg for o in overrides for arg in ("--set", o)], "--gateway-url", server.base_url)

    assert done.returncode == 1, done.stdout + done.stderr
    with open(os.path.join(root, "runs", "taxi", "monitoring", "alerts.jsonl")) as f:
        alerts = [json.loads(line) for line in f]
    assert {(a["comparator"], a["feature"], a["measure"]) for a in alerts} == EXPECTED, done.stdout
    assert {a["span"] for a in alerts} == {spans[1]} and {a["model_version"] for a in alerts} == {1}
    by_key = {(a["comparator"], a["feature"]): a for a in alerts}
    assert by_key[("labelled_accuracy", "label")]["value"] == 0.0
    assert by_key[("labelled_accuracy", "label")]["detail"].startswith(f"0/{ROWS} labelled rows")
    shares = [sum(p > 0.5 for _, _, p in answered) / ROWS for answered in (first, second)]
    assert by_key[("output_drift", "predicted_class")]["value"] == pytest.approx(abs(shares[1] - shares[0]))
    assert all(isinstance(a["mlmd_artifact_id"], int) for a in alerts)

    # The first span, unshifted and rightly labelled, raises nothing (and has no previous span).
    quiet = check([arg for o in overrides for arg in ("--set", o)], "--span", str(spans[0]))
    assert quiet.returncode == 0, quiet.stdout
    assert "0 alerts" in quiet.stdout and "previous span none" in quiet.stdout
