"""One contract: the gateway accepts what its OpenAPI document allows and refuses the rest.

A gateway over the tiny taxi model (versions 1 = stable, 2 = canary), its
document generated from the same schema rules the validator enforces: every
schemathesis check (positive data accepted, negative data rejected, status
codes, content types, headers and response bodies as documented, 405s with
``Allow``, admin auth not ignored) runs against the real process. The
document's own facts (required and optional features, types, ranges, string
domains, instances/examples required) and the cases behind them (``{}``,
empty lists, omitted or null optional features, huge integers, lone
surrogates) are checked by name below.
"""
import json
import os

import hypothesis
import pytest
import schemathesis

from serving import models_config
from serving.client import Client
from serving.server import launch
from testing.tiny_model import INSTANCE, bias_of, gateway_env, probability, push_version
from tests.conftest import TAXI_CONFIG

pytestmark = pytest.mark.integration

MODEL = "taxi"
MAX_ROWS = 8
OPTIONAL = ("company", "trip_seconds", "pickup_latitude", "pickup_longitude", "dropoff_latitude",
            "dropoff_longitude", "pickup_community_area", "dropoff_community_area")
REQUIRED = ("fare", "payment_type", "trip_miles", "trip_start_day", "trip_start_hour",
            "trip_start_month", "trip_start_timestamp")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, tiny_models):
    root = str(tmp_path_factory.mktemp("contract"))
    base = os.path.join(root, "serving", MODEL)
    for version in (1, 2):
        push_version(base, version, tiny_models[version])
    models_config.write(os.path.join(root, "serving", "models.config"), [models_config.ModelEntry(
        MODEL, base, versions=(1, 2), labels={"stable": 1, "canary": 2})])
    args = ["--config", TAXI_CONFIG, "--no_request_log", "--set", f"serving.push_dir={root}/serving",
            "--set", f"serving.max_batch_rows={MAX_ROWS}"]
    with launch(args, env=gateway_env()) as server:
        yield server


@pytest.fixture(scope="module")
def client(gateway):
    with Client(gateway.base_url) as c:
        yield c


@pytest.fixture(scope="module")
def document(client):
    status, doc, _ = client.request("GET", "/openapi.json")
    assert status == 200
    return doc


# ------------------------------------------------------------------ the document

def test_the_document_marks_required_and_optional_features_from_the_schema(document):
    schemas = document["components"]["schemas"]
    instance = schemas["Instance"]
    assert sorted(instance["required"]) == sorted(REQUIRED)
    assert set(instance["properties"]) == set(REQUIRED) | set(OPTIONAL)
    assert instance["additionalProperties"] is False  # 'tips' (not in SERVING) and typos are refused
    for name in OPTIONAL:
        assert instance["properties"][name]["nullable"] is True, name
    for name in REQUIRED:
        assert "nullable" not in instance["properties"][name], name
    fare, hour = instance["properties"]["fare"]["anyOf"][0], instance["properties"]["trip_start_hour"]["anyOf"][0]
    assert fare == {"type": "number", "minimum": 0.0, "maximum": 10000.0}
    assert hour == {"type": "integer", "minimum": 0.0, "maximum": 23.0}
    payment = instance["properties"]["payment_type"]["anyOf"][0]
    assert payment["type"] == "string" and "Cash" in payment["enum"] and "Bitcoin" not in payment["enum"]
    assert schemas["PredictRequest"]["required"] == ["instances"]
    assert schemas["ExamplesRequest"]["required"] == ["examples"]
    for name, key in (("PredictRequest", "instances"), ("ExamplesRequest", "examples")):
        rows = schemas[name]["properties"][key]
        assert (rows["minItems"], rows["maxItems"]) == (1, MAX_ROWS)
    label = document["paths"]["/v1/models/{model}/labels/{label}"]["get"]["parameters"][1]
    assert label["schema"]["enum"] == ["canary", "stable"]


@pytest.mark.parametrize("path, body, named", [
    ("/v1/models/taxi:predict", {}, "Missing 'inputs' or 'instances' key"),
    ("/v1/models/taxi:predict", {"instances": []}, "'instances' must be a non-empty list"),
    ("/v1/models/taxi:classify", {}, "'examples'"),
    ("/v1/models/taxi:regress", {"examples": []}, "'examples'"),
])
def test_bodies_the_document_forbids_are_400_as_in_tf_serving(client, path, body, named):
    status, answer, _ = client.request("POST", path, body)
    assert status == 400 and named in answer["error"]


# ------------------------------------------------------------------ optional features

def p(version, instance=INSTANCE):
    return probability(bias_of(version), instance["fare"], instance["payment_type"])


@pytest.mark.parametrize("verb", ["predict", "classify"])
def test_optional_features_may_be_left_out_or_null(client, verb):
    """The model sees them as missing (Transform imputes them, as in training); the tiny
    model's answer does not depend on them, so it equals the complete row's."""
    left_out = {k: v for k, v in INSTANCE.items() if k not in OPTIONAL}
    nulls = dict(INSTANCE, **{name: None for name in OPTIONAL})
    empty = dict(INSTANCE, company=[], trip_seconds=[])
    key = "instances" if verb == "predict" else "examples"
    status, body, headers = client.request("POST", f"/v1/models/taxi/versions/2:{verb}",
                                           {key: [INSTANCE, left_out, nulls, empty]})
    assert status == 200, body
    if verb == "predict":
        assert body["predictions"] == [[pytest.approx(p(2), rel=1e-5)]] * 4
        assert headers["X-Model-Version"] == "2"
    else:
        assert [r[1][1] for r in body["results"]] == [pytest.approx(p(2), rel=1e-5)] * 4


@pytest.mark.parametrize("row, named", [
    (dict(INSTANCE, fare=None), "fare"),                     # required: null is not missing
    ({k: v for k, v in INSTANCE.items() if k != "trip_miles"}, "trip_miles"),
    (dict(INSTANCE, compnay="typo"), "compnay"),             # a misspelt optional feature
    (dict(INSTANCE, company={"b64": "not base64!"}), "company"),
])
def test_required_features_and_unknown_names_are_still_refused(client, row, named):
    for verb, key in (("predict", "instances"), ("classify", "examples")):
        status, answer, _ = client.request("POST", f"/v1/models/taxi:{verb}", {key: [row]})
        assert status == 400 and named in answer["error"], (verb, answer)


def test_a_bad_context_value_is_refused_even_when_every_example_overrides_it(client):
    status, answer, _ = client.request("POST", "/v1/models/taxi:classify",
                                       {"context": {"fare": "cheap"}, "examples": [INSTANCE]})
    assert status == 400 and "'context'" in answer["error"] and "fare" in answer["error"]


# ------------------------------------------------------------------ no 500s

HUGE = "1" + "0" * 400


@pytest.mark.parametrize("raw, named", [
    (json.dumps({"instances": [dict(INSTANCE, trip_seconds=0)]}).replace(
        '"trip_seconds": 0', f'"trip_seconds": {HUGE}'), "trip_seconds"),
    (json.dumps({"instances": [dict(INSTANCE, fare=0)]}).replace('"fare": 0', f'"fare": -{HUGE * 12}'),
     "fare"),
    (json.dumps({"instances": [dict(INSTANCE, trip_seconds=2 ** 70)]}), "trip_seconds"),
    (json.dumps({"instances": [dict(INSTANCE, company="\ud800")]}), "instances[0].company"),
    (json.dumps({"examples": [{"\udfff": 1}]}), "examples[0]"),
    (json.dumps({"instances": [dict(INSTANCE, fare=float("nan"))]}), "fare"),
    ('{"instances": [' + "[" * 5000 + "]" * 5000 + "]}", "nested"),
])
def test_anything_the_json_parser_accepts_is_a_4xx_naming_the_field(client, raw, named):
    for verb in ("predict", "classify"):
        status, answer, _ = client.request("POST", f"/v1/models/taxi:{verb}", raw=raw.encode())
        assert 400 <= status < 500 and list(answer) == ["error"], (verb, answer)
        if verb == "predict" or "examples" in raw:
            assert named in answer["error"], (verb, answer)


def test_405_names_the_allowed_method(client):
    for method, path, allowed in (("POST", "/v1/models/taxi", "GET"),
                                  ("GET", "/v1/models/taxi:predict", "POST"),
                                  ("DELETE", "/healthz", "GET")):
        status, answer, headers = client.request(method, path)
        assert (status, headers.get("Allow")) == (405, allowed), answer


# ------------------------------------------------------------------ every schemathesis check

schemathesis.checks.load_all_checks()
ALL_CHECKS = [check for check in schemathesis.checks.CHECKS.get_all()
              if not schemathesis.checks.is_check_class(check)]


def test_all_checks_means_every_registered_check():
    names = {check.__name__ for check in ALL_CHECKS}
    assert {"not_a_server_error", "positive_data_acceptance", "negative_data_rejection",
            "status_code_conformance", "content_type_conformance", "response_schema_conformance",
            "response_headers_conformance", "unsupported_method", "ignored_auth"} <= names


@pytest.fixture
def api_schema(gateway):
    return schemathesis.openapi.from_url(gateway.base_url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.settings(max_examples=25, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_every_schemathesis_check_passes(case):
    """No token is given: the admin operations must then answer 401 to anything."""
    case.call_and_validate(checks=ALL_CHECKS)
