"""The gateway as a real child process on loopback, serving two versions of a
tiny taxi-shaped SavedModel under TF Serving's models.config labels
(stable = 1, canary = 2): every endpoint's response shape, version and label
routing, batching of concurrent requests, each class of bad input, admin
auth and metrics (the OpenAPI contract is fuzzed in test_contract.py, the HTTP layer
attacked in test_http.py).
"""
import concurrent.futures
import json
import os
import re
import signal

import pytest

from serving import models_config
from serving.client import Client
from serving.server import launch
from testing.tiny_model import ADMIN_TOKEN, INSTANCE, bias_of, gateway_args, gateway_env, probability, push_version
from tests.conftest import TAXI_CONFIG

pytestmark = pytest.mark.integration

MODEL = "taxi"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("gateway"))


@pytest.fixture(scope="module")
def gateway(root, tiny_models):
    base = os.path.join(root, "serving", MODEL)
    for version in (1, 2):
        push_version(base, version, tiny_models[version])
    models_config.write(os.path.join(root, "serving", "models.config"), [models_config.ModelEntry(
        MODEL, base, versions=(1, 2), labels={"stable": 1, "canary": 2})])
    with launch(gateway_args(TAXI_CONFIG, root, "--no_request_log"), env=gateway_env()) as server:
        yield server


@pytest.fixture(scope="module")
def client(gateway):
    with Client(gateway.base_url) as c:
        yield c


def p(version, instance=INSTANCE):
    return probability(bias_of(version), instance["fare"], instance["payment_type"])


def status_of(*versions):
    return {"model_version_status": [
        {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in versions]}


# ------------------------------------------------------------------ status and metadata

@pytest.mark.parametrize("path, versions", [
    ("/v1/models/taxi", (2, 1)),
    ("/v1/models/taxi/versions/1", (1,)),
    ("/v1/models/taxi/labels/stable", (1,)),
    ("/v1/models/taxi/labels/canary", (2,)),
])
def test_status_is_shaped_like_tf_serving(client, path, versions):
    status, body, _ = client.request("GET", path)
    assert (status, body) == (200, status_of(*versions))


def test_metadata_lists_signatures_in_tf_servings_json_shape(client, taxi_config):
    status, body, _ = client.request("GET", "/v1/models/taxi/versions/2/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": MODEL, "signature_name": "", "version": "2"}
    defs = body["metadata"]["signature_def"]["signature_def"]
    assert set(defs) == {"serving_default", "serving_tf_example"}
    inputs = defs["serving_default"]["inputs"]
    assert set(inputs) == {f.name for f in taxi_config.features}
    dtypes = {"float": "DT_FLOAT", "int": "DT_INT64", "string": "DT_STRING"}
    for feature in taxi_config.features:
        assert inputs[feature.name]["dtype"] == dtypes[feature.dtype]
        assert inputs[feature.name]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}],
                                                        "unknown_rank": False}
    assert defs["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert defs["serving_tf_example"]["inputs"]["examples"]["dtype"] == "DT_STRING"
    # without a version: the stable label's version
    assert client.request("GET", "/v1/models/taxi/metadata")[1]["model_spec"]["version"] == "1"


# ------------------------------------------------------------------ inference

def test_row_predict_goes_to_stable_and_returns_one_prediction_per_instance(client):
    cash = dict(INSTANCE, payment_type="Cash", fare=3.0)
    status, body, headers = client.request("POST", "/v1/models/taxi:predict",
                                           {"instances": [INSTANCE, cash]})
    assert status == 200 and list(body) == ["predictions"]
    assert body["predictions"] == [[pytest.approx(p(1), rel=1e-5)], [pytest.approx(p(1, cash), rel=1e-5)]]
    assert headers["X-Model-Version"] == "1"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-Id"])


@pytest.mark.parametrize("path, version", [
    ("/v1/models/taxi/versions/1:predict", 1),
    ("/v1/models/taxi/versions/2:predict", 2),
    ("/v1/models/taxi/labels/stable:predict", 1),
    ("/v1/models/taxi/labels/canary:predict", 2),
])
def test_version_and_label_routing(client, path, version):
    status, body, headers = client.request("POST", path, {"instances": [INSTANCE]},
                                           headers={"X-Request-Id": "fixed-id-1"})
    assert status == 200
    assert headers["X-Model-Version"] == str(version)
    assert headers["X-Request-Id"] == "fixed-id-1"
    assert body["predictions"] == [[pytest.approx(p(version), rel=1e-5)]]


def test_columnar_predict_with_signature_name(client):
    inputs = {name: [value, value] for name, value in INSTANCE.items()}
    status, body, _ = client.request("POST", "/v1/models/taxi/versions/2:predict",
                                     {"signature_name": "serving_default", "inputs": inputs})
    assert status == 200 and list(body) == ["outputs"]
    assert body["outputs"] == [[pytest.approx(p(2), rel=1e-5)]] * 2


def test_classify_uses_the_tf_example_signature(client):
    cash = dict(INSTANCE, payment_type="Cash", fare=20)  # an int fare is typed FLOAT by the schema
    status, body, _ = client.request("POST", "/v1/models/taxi/labels/canary:classify",
                                     {"examples": [INSTANCE, cash]})
    assert status == 200
    assert [[label for label, _ in r] for r in body["results"]] == [["0", "1"], ["0", "1"]]
    for result, row in zip(body["results"], (INSTANCE, cash)):
        assert result[1][1] == pytest.approx(p(2, row), rel=1e-5)
        assert result[0][1] == pytest.approx(1 - p(2, row), rel=1e-5)


def test_regress_with_shared_context(client):
    context = {k: v for k, v in INSTANCE.items() if k != "fare"}
    status, body, _ = client.request("POST", "/v1/models/taxi/versions/1:regress",
                                     {"context": context, "examples": [{"fare": 5.0}, {"fare": 50.0}]})
    assert status == 200
    assert body["results"] == [pytest.approx(p(1, dict(INSTANCE, fare=5.0)), rel=1e-5),
                               pytest.approx(p(1, dict(INSTANCE, fare=50.0)), rel=1e-5)]


def test_concurrent_requests_are_batched_without_mixing_rows(gateway):
    """64 concurrent clients, each with its own fare: every answer is its own row's."""
    def one(i):
        row = dict(INSTANCE, fare=float(i))
        with Client(gateway.base_url) as c:
            answers = [c.request("POST", "/v1/models/taxi/versions/2:predict",
                                 {"instances": [row] * (1 + i % 3)}) for _ in range(5)]
        return row, answers

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        results = list(pool.map(one, range(64)))
    for row, answers in results:
        for status, body, _ in answers:
            assert status == 200, body
            assert body["predictions"][0] == [pytest.approx(p(2, row), rel=1e-5)]


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("body, named", [
    ({"instances": [{k: v for k, v in INSTANCE.items() if k != "fare"}]}, "fare"),     # missing
    ({"instances": [dict(INSTANCE, fare="cheap")]}, "fare"),                          # wrong type
    ({"instances": [dict(INSTANCE, trip_seconds=1.5)]}, "trip_seconds"),              # not an int
    ({"instances": [dict(INSTANCE, payment_type="Bitcoin")]}, "payment_type"),        # string domain
    ({"instances": [dict(INSTANCE, trip_start_hour=24)]}, "trip_start_hour"),         # int domain
    ({"instances": [dict(INSTANCE, fare=-1.0)]}, "fare"),                             # float domain
    ({"instances": [dict(INSTANCE, tips=1.0)]}, "tips"),                              # not in SERVING
    ({"instances": [dict(INSTANCE, tip_ratio=0.2)]}, "tip_ratio"),                    # unknown input
    ({"inputs": {"fare": [1.0]}}, "payment_type"),                                    # columnar, missing
    ({"rows": [INSTANCE]}, "instances"),                                              # no instances
    ({"instances": [{"fare": 1.0}] * 51}, "max_batch_rows"),                          # over the row limit
    ({"instances": [INSTANCE], "signature_name": "nope"}, "nope"),                    # unknown signature
])
def test_each_bad_input_is_a_400_naming_the_field(client, body, named):
    status, answer, _ = client.request("POST", "/v1/models/taxi:predict", body)
    assert status == 400
    assert list(answer) == ["error"] and named in answer["error"]


@pytest.mark.parametrize("raw, named", [(b"{not json", "JSON"), (b"[1, 2]", "JSON object"),
                                        (b"", "empty")])
def test_malformed_bodies_are_400(client, raw, named):
    status, answer, _ = client.request("POST", "/v1/models/taxi:predict", raw=raw)
    assert status == 400 and named in answer["error"]


def test_classify_examples_are_validated_too(client):
    status, answer, _ = client.request("POST", "/v1/models/taxi:classify",
                                       {"examples": [dict(INSTANCE, payment_type=7)]})
    assert status == 400 and "payment_type" in answer["error"]


def test_body_over_the_size_limit_is_413(gateway):
    body = json.dumps({"instances": [dict(INSTANCE, company="x" * 30000)]}).encode()
    with Client(gateway.base_url) as c:
        status, answer, _ = c.request("POST", "/v1/models/taxi:predict", raw=body)
    assert status == 413 and "max_request_bytes" in answer["error"]


@pytest.mark.parametrize("path, status, named", [
    ("/v1/models/other:predict", 404, "other"),
    ("/v1/models/taxi/versions/7:predict", 404, "7"),
    ("/v1/models/taxi/versions/abc:predict", 400, "version"),
    ("/v1/models/taxi/versions/0:predict", 400, "version"),
    ("/v1/models/taxi/versions/..%2F..%2Fetc:predict", 400, "version"),
    ("/v1/models/..%2Ftaxi:predict", 400, "model name"),
    ("/v1/models/taxi/labels/nolabel:predict", 400, "nolabel"),
    ("/v1/models/taxi/labels/..:predict", 400, "label"),
    ("/v1/models/taxi:explain", 404, "explain"),
])
def test_bad_model_version_label_or_verb(client, path, status, named):
    code, answer, _ = client.request("POST", path, {"instances": [INSTANCE]})
    assert code == status and named in answer["error"]


# ------------------------------------------------------------------ admin, operations

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"},
                                     {"Authorization": f"Basic {ADMIN_TOKEN}"}])
def test_admin_without_the_right_token_is_401(client, headers):
    for method, path in (("GET", "/v1/admin/models/taxi/rollout"),
                         ("POST", "/v1/admin/models/taxi/rollout:promote")):
        status, answer, _ = client.request(method, path, {} if method == "POST" else None,
                                           headers=headers)
        assert status == 401 and "error" in answer


def test_admin_with_the_token_reads_the_rollout(client):
    status, state, _ = client.request("GET", "/v1/admin/models/taxi/rollout",
                                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 200
    assert (state["stable"], state["canary"]) == (1, 2)


def test_healthz_and_openapi(client):
    status, body, _ = client.request("GET", "/healthz")
    assert status == 200 and body["models"][MODEL]["versions"] == [1, 2]
    status, doc, _ = client.request("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert "/v1/models/{model}/labels/{label}:predict" in doc["paths"]


def test_metrics_are_prometheus_text_per_model_version(client):
    client.request("POST", "/v1/models/taxi/versions/2:predict", {"instances": [INSTANCE]})
    client.request("POST", "/v1/models/taxi/versions/2:predict", {"instances": []})
    status, text, headers = client.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    ok = 'gateway_requests_total{model="taxi",version="2",verb="predict",code="200"}'
    assert float(samples[ok]) >= 1
    error = 'gateway_request_errors_total{model="taxi",version="2",verb="predict",code="400"}'
    assert float(samples[error]) >= 1
    hist = 'gateway_request_latency_seconds_{}{{model="taxi",version="2",verb="predict"{}}}'
    assert float(samples[hist.format("bucket", ',le="+Inf"')]) == float(samples[hist.format("count", "")])
    assert "# TYPE gateway_request_latency_seconds histogram" in text


# ------------------------------------------------------------------ proxy backend

@pytest.fixture(scope="module")
def proxy(gateway, root):
    """A second gateway forwarding to the first (which speaks TF Serving's API,
    as real TF Serving would), reading the same models.config."""
    args = gateway_args(TAXI_CONFIG, root, "--no_request_log", "--backend", "proxy",
                        "--proxy_url", gateway.base_url)
    with launch(args, env=gateway_env()) as server:
        with Client(server.base_url) as c:
            yield c


def test_proxy_forwards_status_metadata_and_inference(proxy, client):
    for path in ("/v1/models/taxi", "/v1/models/taxi/labels/canary", "/v1/models/taxi/versions/2/metadata"):
        assert proxy.request("GET", path)[:2] == client.request("GET", path)[:2]
    status, body, headers = proxy.request("POST", "/v1/models/taxi:predict", {"instances": [INSTANCE]})
    assert (status, headers["X-Model-Version"]) == (200, "1")
    assert body["predictions"] == [[pytest.approx(p(1), rel=1e-5)]]
    status, body, _ = proxy.request("POST", "/v1/models/taxi/labels/canary:classify",
                                    {"examples": [INSTANCE]})
    assert status == 200 and body["results"][0][1][1] == pytest.approx(p(2), rel=1e-5)


def test_proxy_validates_before_forwarding_and_relays_errors(proxy):
    status, answer, _ = proxy.request("POST", "/v1/models/taxi:predict",
                                      {"instances": [dict(INSTANCE, payment_type="Bitcoin")]})
    assert status == 400 and "payment_type" in answer["error"]
    status, answer, _ = proxy.request("POST", "/v1/models/taxi/versions/7:predict",
                                      {"instances": [INSTANCE]})
    assert status == 404 and "Specific(taxi, 7)" in answer["error"]


def test_sigterm_stops_the_gateway_cleanly(gateway):
    """Runs last: it ends the module's gateway."""
    gateway.process.send_signal(signal.SIGTERM)
    assert gateway.process.wait(timeout=30) == 0
