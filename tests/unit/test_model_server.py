"""The REST model server as a real child process, against a tiny SavedModel.

One server is started for the module (TF start-up dominates the cost) and
queried over HTTP exactly as TF Serving clients would; the last test stops
it with SIGTERM and checks it exits cleanly.
"""
import json
import signal
import urllib.error
import urllib.request
from typing import Any, Optional, Tuple

import numpy as np
import pytest
import tensorflow as tf

from serving import model_server

MODEL_NAME = "taxi"


class TinyModel(tf.Module):
    """p = sigmoid(0.1 * fare + [payment_type == "Cash"]), shape [None, 1]."""

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.float32, name="fare"),
        tf.TensorSpec([None], tf.string, name="payment_type"),
    ])
    def serve(self, fare, payment_type):
        cash = tf.cast(tf.equal(payment_type, "Cash"), tf.float32)
        return {"outputs": tf.sigmoid(tf.expand_dims(0.1 * fare + cash, -1))}


def expected_probability(fare: float, payment_type: str) -> float:
    logit = 0.1 * fare + (1.0 if payment_type == "Cash" else 0.0)
    return float(1.0 / (1.0 + np.exp(-logit)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("model") / "1")
    module = TinyModel()
    tf.saved_model.save(module, model_dir,
                        signatures={"serving_default": module.serve})
    with model_server.launch(model_dir, MODEL_NAME, version="1",
                             startup_timeout_s=120) as running:
        yield running


def call(server, path: str, body: Optional[Any] = None,
         raw: Optional[bytes] = None) -> Tuple[int, Any]:
    data = raw if raw is not None else (
        None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(server.base_url + path, data=data,
                                     method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_status_is_shaped_like_tf_serving(server):
    expected = {"model_version_status": [{
        "version": "1", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}
    assert call(server, f"/v1/models/{MODEL_NAME}") == (200, expected)
    assert call(server, f"/v1/models/{MODEL_NAME}/versions/1") == (
        200, expected)


def test_row_predict_returns_one_prediction_per_instance(server):
    rows = [{"fare": 5.0, "payment_type": "Cash"},
            {"fare": 12, "payment_type": "Credit Card"}]
    status, body = call(server, f"/v1/models/{MODEL_NAME}:predict",
                        {"instances": rows})
    assert status == 200
    assert list(body) == ["predictions"]
    assert len(body["predictions"]) == 2
    for row, prediction in zip(rows, body["predictions"]):
        assert prediction == [pytest.approx(
            expected_probability(row["fare"], row["payment_type"]), rel=1e-5)]


def test_columnar_predict_on_a_version_and_signature(server):
    status, body = call(
        server, f"/v1/models/{MODEL_NAME}/versions/1:predict",
        {"signature_name": "serving_default",
         "inputs": {"fare": [0.0, 30.0], "payment_type": ["Cash", "x"]}})
    assert status == 200
    assert body["outputs"] == [
        [pytest.approx(expected_probability(0.0, "Cash"), rel=1e-5)],
        [pytest.approx(expected_probability(30.0, "x"), rel=1e-5)]]


@pytest.mark.parametrize("body, named", [
    ({"instances": [{"fare": 1.0}]}, "payment_type"),
    ({"inputs": {"payment_type": ["Cash"]}}, "fare"),
    ({"instances": [{"fare": "cheap", "payment_type": "Cash"}]}, "fare"),
    ({"instances": [{"fare": 1.0, "payment_type": "Cash", "tip": 1}]}, "tip"),
    ({"rows": []}, "instances"),
    ({"instances": [{"fare": 1.0, "payment_type": "Cash"}],
      "signature_name": "nope"}, "nope"),
])
def test_bad_bodies_are_400_naming_the_field(server, body, named):
    status, answer = call(server, f"/v1/models/{MODEL_NAME}:predict", body)
    assert status == 400
    assert named in answer["error"]


def test_invalid_json_is_400(server):
    status, answer = call(server, f"/v1/models/{MODEL_NAME}:predict",
                          raw=b"{not json")
    assert status == 400
    assert "JSON" in answer["error"]


@pytest.mark.parametrize("path", [
    "/v1/models/other:predict",
    f"/v1/models/{MODEL_NAME}/versions/7:predict",
])
def test_unknown_model_or_version_is_404(server, path):
    status, answer = call(server, path,
                          {"instances": [{"fare": 1.0, "payment_type": "x"}]})
    assert status == 404
    assert "Servable not found" in answer["error"]


def test_unknown_model_status_is_404(server):
    status, answer = call(server, "/v1/models/other")
    assert status == 404
    assert "other" in answer["error"]


def test_sigterm_stops_the_server_cleanly(server):
    """Runs last: it ends the module's server."""
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0
