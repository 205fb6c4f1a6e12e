"""serving.api.feedback in process: ``POST /v1/models/<m>/feedback`` on the gateway
``build_gateway`` makes (tiny model, request log, feedback from configs/taxi.yaml).
Over real HTTP, with the join and a restart: test_feedback_gateway.py."""
import json
import os

import pytest

from serving.api.deps import Limits
from serving.feedback.settings import FeedbackSettings
from serving.server import GatewaySettings, build_gateway
from testing.tiny_model import INSTANCE, push_version

MAX_ROWS = 4


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, tiny_models, taxi_config):
    root = str(tmp_path_factory.mktemp("feedback_api"))
    base = os.path.join(root, "taxi")
    push_version(base, 1, tiny_models[1])
    settings = GatewaySettings(
        model_name="taxi", model_base_path=base, schema_path=taxi_config.schema_path,
        limits=Limits(max_batch_rows=MAX_ROWS), request_log_dir=os.path.join(root, "log"),
        feature_dtypes=tuple((f.name, f.dtype) for f in taxi_config.features),
        sensitive_features=tuple(taxi_config.serving.sensitive_features.items()),
        feedback=FeedbackSettings.from_config(taxi_config))
    built = build_gateway(settings)
    yield built
    built.close()
    built.backend.close()
    built.request_log.close()


def call(gateway, body, path="/v1/models/taxi/feedback", method="POST", raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    response = gateway.handle(method, path, {}, data)
    return response.status, json.loads(response.body)


def predict(gateway, rows=1):
    response = gateway.handle("POST", "/v1/models/taxi:predict", {},
                              json.dumps({"instances": [INSTANCE] * rows}).encode())
    assert response.status == 200
    return response.headers["X-Request-Id"]


def test_single_and_batch_labels_are_accepted_and_a_repeat_is_a_duplicate(gateway):
    first, second = predict(gateway), predict(gateway, rows=2)
    assert call(gateway, {"request_id": first, "label": 3.5}) == (200, {"accepted": 1, "duplicates": 0})
    batch = {"feedback": [{"request_id": second, "label": 0.0},
                          {"request_id": second, "row": 1, "label": 2.0},
                          {"request_id": first, "label": 3.5}]}
    assert call(gateway, batch) == (200, {"accepted": 2, "duplicates": 1})
    assert call(gateway, {"request_id": first, "label": 3.5, "row": 0}) == (200, {"accepted": 0,
                                                                               "duplicates": 1})
    status, body = call(gateway, {"request_id": first, "label": 1.0})
    assert status == 409 and f"request '{first}' row 0 already has the label 3.5" in body["error"]
    metrics = gateway.handle("GET", "/metrics", {}, b"").body.decode()
    assert 'verb="feedback",code="200"' in metrics and 'verb="feedback",code="409"' in metrics


@pytest.mark.parametrize("body, status, text", [
    ({"request_id": "never-logged", "label": 1.0}, 404, "request_id: unknown request id 'never-logged'"),
    ({"request_id": "{rid}", "label": -5}, 400, "label: feature 'tips': expected a FLOAT (number) in "
                                                "[0, 10000], got -5.0"),
    ({"request_id": "{rid}", "label": "yes"}, 400, "label: label 'yes' (not a number) is not valid"),
    ({"request_id": "{rid}"}, 400, "label: required"),
    ({"label": 1.0}, 400, "request_id: required"),
    ({"request_id": "{rid}", "row": 3, "label": 1.0}, 400, "row: request '{rid}' has 1 row(s)"),
    ({"feedback": [{"request_id": "{rid}", "label": 1.0}, {"request_id": "{rid}", "label": 1e9}]},
     400, "feedback[1].label: "),
    ({"feedback": [{"request_id": "{rid}", "label": 1.0}], "label": 2}, 400, "unexpected field(s) ['label']"),
    ({"feedback": []}, 400, "feedback: expected a non-empty list"),
    ({"feedback": [{"request_id": "{rid}", "label": 1.0}] * (MAX_ROWS + 1)}, 400,
     f"feedback: {MAX_ROWS + 1} items; at most {MAX_ROWS}"),
    ([1], 400, "JSON Parse error: the request body must be a JSON object"),
])
def test_every_bad_body_gets_a_4xx_naming_the_field(gateway, body, status, text):
    rid = predict(gateway)
    body = json.loads(json.dumps(body).replace("{rid}", rid))
    code, answer = call(gateway, body)
    assert (code, list(answer)) == (status, ["error"]) and text.replace("{rid}", rid) in answer["error"]
    assert call(gateway, {"request_id": rid, "label": 1.0}) == (200, {"accepted": 1, "duplicates": 0})


@pytest.mark.parametrize("method, path, raw, status, text", [
    ("POST", "/v1/models/taxi/feedback", b"{not json", 400, "JSON Parse error"),
    ("POST", "/v1/models/taxi/feedback", b"", 400, "the request body is empty"),
    ("GET", "/v1/models/taxi/feedback", b"", 405, "use POST"),
    ("POST", "/v1/models/other/feedback", b"{}", 404, "Servable not found for request: Latest(other)"),
])
def test_malformed_requests(gateway, method, path, raw, status, text):
    code, answer = call(gateway, None, path, method, raw)
    assert code == status and text in answer["error"]


def test_the_openapi_document_describes_the_endpoint(gateway):
    document = json.loads(gateway.handle("GET", "/openapi.json", {}, b"").body)
    post = document["paths"]["/v1/models/{model}/feedback"]["post"]
    assert set(post["responses"]) == {"200", "400", "404", "408", "409", "411", "413"}
    item = document["components"]["schemas"]["FeedbackItem"]
    assert item["required"] == ["request_id", "label"] and set(item["properties"]) == {
        "request_id", "row", "label"}


def test_without_a_request_log_the_endpoint_says_why(tmp_path, tiny_models, taxi_config):
    base = str(tmp_path / "taxi")
    push_version(base, 1, tiny_models[1])
    built = build_gateway(GatewaySettings(model_name="taxi", model_base_path=base,
                                          feedback=FeedbackSettings.from_config(taxi_config)))
    try:
        status, body = call(built, {"request_id": "x", "label": 1.0})
        assert status == 404 and "it needs the request log" in body["error"]
    finally:
        built.close()
        built.backend.close()
