"""Feedback end to end: a real gateway process answers predictions, takes their labels back
(single and batch, each kind of bad body refused naming the field, a repeat a no-op), the
join command writes a labelled span that TF reads back with the training columns, and after
a restart a late label for an already joined prediction is accepted and becomes version 2."""
import glob
import json
import os
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from serving import request_log
from serving.client import Client
from serving.feedback.join import DATA_FILE, labelled_dir, version_dir
from serving.server import launch
from testing.tiny_model import INSTANCE, gateway_args, gateway_env, push_version
from tests.conftest import REPO, TAXI_CONFIG

pytestmark = pytest.mark.integration

MODEL = "taxi"


@pytest.fixture(scope="module")
def root(tmp_path_factory, tiny_models):
    root = str(tmp_path_factory.mktemp("feedback_gateway"))
    push_version(os.path.join(root, "serving", MODEL), 1, tiny_models[1])
    return root


def predict(client, rows, request_id=None):
    headers = {"X-Request-Id": request_id} if request_id else None
    status, _, answer_headers = client.request("POST", f"/v1/models/{MODEL}:predict",
                                               {"instances": [dict(INSTANCE, fare=10.0 + r)
                                                              for r in range(rows)]}, headers=headers)
    assert status == 200
    return answer_headers["X-Request-Id"]


def feedback(client, body=None, raw=None):
    status, answer, _ = client.request("POST", f"/v1/models/{MODEL}/feedback", body, raw=raw)
    return status, answer


def logged_rows(log_dir):
    return sum(len(request_log.read_window(log_dir, span)) for span in request_log.list_spans(log_dir))


def join(root):
    """``python -m serving join`` as an operator runs it: {span: result}."""
    command = [sys.executable, "-m", "serving", "join", "--config", TAXI_CONFIG,
               "--set", f"serving.request_log_dir={root}/request_log"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True,
                          env=dict(os.environ, PYTHONPATH=REPO))
    return {r["span"]: r for r in map(json.loads, done.stdout.splitlines())}


def read_labelled(log_dir, results):
    examples = []
    for span, result in sorted(results.items()):
        files = glob.glob(os.path.join(version_dir(log_dir, span, result["version"]), "*"))
        assert [os.path.basename(f) for f in files] == [DATA_FILE]
        examples += [tf.train.Example.FromString(r.numpy())
                     for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return examples


def wait_for(condition, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_labels_from_prediction_to_labelled_span_and_a_late_label_after_a_restart(root, taxi_config):
    log_dir = os.path.join(root, "request_log")
    with launch(gateway_args(TAXI_CONFIG, root), env=gateway_env()) as server, \
            Client(server.base_url) as client:
        single = predict(client, 1)
        batch = predict(client, 3, request_id="client-batch-7")
        other = predict(client, 1)
        assert feedback(client, {"request_id": single, "label": 3.5}) == (200, {"accepted": 1,
                                                                                  "duplicates": 0})
        items = [{"request_id": batch, "row": r, "label": float(r)} for r in range(2)]
        assert feedback(client, {"feedback": items}) == (200, {"accepted": 2, "duplicates": 0})
        assert feedback(client, {"request_id": single, "label": 3.5}) == (200, {"accepted": 0,
                                                                                  "duplicates": 1})
        status, answer = feedback(client, {"request_id": single, "label": 0.5})
        assert status == 409 and single in answer["error"]
        for body, raw, code, text in (
                ({"request_id": "no-such-request", "label": 1.0}, None, 404, "request_id: unknown "
                                                                             "request id 'no-such-request'"),
                ({"request_id": other, "label": -1.0}, None, 400, "label: feature 'tips': expected a "
                                                                 "FLOAT (number) in [0, 10000]"),
                (None, b'{"request_id": "x", ', 400, "JSON Parse error"),
                ({"request_id": other}, None, 400, "label: required"),
                ({"feedback": [{"request_id": other, "label": 1.0}, {"label": 1.0}]}, None, 400,
                 "feedback[1].request_id: required"),
                ({"request_id": other, "label": 1.0, "note": "x" * 30000}, None, 413,
                 "over the limit of 20000 bytes")):
            status, answer = feedback(client, body, raw)
            assert (status, list(answer)) == (code, ["error"]) and text in answer["error"], answer
        wait_for(lambda: logged_rows(log_dir) == 5)

    first = join(root)
    assert sum(r["rows"] for r in first.values()) == 3 and {r["version"] for r in first.values()} == {1}
    examples = read_labelled(log_dir, first)
    columns = {f.name for f in taxi_config.features} - set(taxi_config.serving.sensitive_features)
    assert all(set(e.features.feature) == columns | {"tips"} for e in examples)
    assert sorted(e.features.feature["tips"].float_list.value[0] for e in examples) == [0.0, 1.0, 3.5]
    assert not any(name.startswith(request_log.METADATA_PREFIX) for e in examples for name in e.features.feature)

    with launch(gateway_args(TAXI_CONFIG, root), env=gateway_env()) as server, \
            Client(server.base_url) as client:  # a restart: ids and labels come back from disk
        assert feedback(client, {"request_id": single, "label": 3.5}) == (200, {"accepted": 0,
                                                                                  "duplicates": 1})
        late_label = {"request_id": batch, "row": 2, "label": 7.25}  # the batch's last row, late
        assert feedback(client, late_label) == (200, {"accepted": 1, "duplicates": 0})
    second = join(root)
    written = [span for span, r in second.items() if r["written"]]
    assert len(written) == 1 and second[written[0]]["version"] == 2
    late_span = written[0]
    assert sorted(os.listdir(os.path.join(labelled_dir(log_dir), f"span-{late_span}"))) == [
        "version-1", "version-1.json", "version-2", "version-2.json"]
    tips = sorted(e.features.feature["tips"].float_list.value[0]
                  for e in read_labelled(log_dir, {late_span: second[late_span]}))
    assert {0.0, 1.0, 7.25} <= set(tips) and len(tips) == second[late_span]["rows"]
