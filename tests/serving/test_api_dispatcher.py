"""serving.api.dispatcher in process (no sockets): the gateway ``build_gateway``
makes, over versions 1 (stable) and 2 of the tiny model, with rollouts on.

URL dispatch, methods, request ids and metrics, and rollout errors answered
once: the same unknown version is a 404 in a request and a 400 in an admin
change. The HTTP behaviour end to end is in test_server.py.
"""
import json
import os

import pytest

from serving import models_config
from serving.api.dispatcher import Gateway
from serving.server import GatewaySettings, build_gateway
from testing.tiny_model import ADMIN_TOKEN, INSTANCE, push_version

TOKEN_ENV = "GATEWAY_DISPATCHER_TEST_TOKEN"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, tiny_models):
    root = str(tmp_path_factory.mktemp("dispatcher"))
    base = os.path.join(root, "taxi")
    for version in (1, 2):
        push_version(base, version, tiny_models[version])
    config = os.path.join(root, "models.config")
    models_config.write(config, [models_config.ModelEntry("taxi", base, versions=(1,),
                                                          labels={"stable": 1})])
    settings = GatewaySettings(model_name="taxi", model_base_path=base, models_config=config,
                               admin_token_env=TOKEN_ENV, poll_interval_s=0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_ENV, ADMIN_TOKEN)
        built = build_gateway(settings)
    yield built
    built.close()
    built.backend.close()


def call(gateway: Gateway, method, path, body=None, headers=None):
    raw = b"" if body is None else json.dumps(body).encode()
    response = gateway.handle(method, path, headers or {}, raw)
    text = response.body.decode()
    return response.status, json.loads(text) if response.content_type == "application/json" else text, \
        response.headers


@pytest.mark.parametrize("method, path, status, message", [
    ("GET", "/nope", 404, "Malformed request: GET /nope"),
    ("GET", "/v1/models/taxi:predict", 405, "use POST"),
    ("POST", "/v1/models/taxi", 405, "use GET"),
    ("POST", "/healthz", 405, "use GET"),
    ("GET", "/v1/models/other", 404, "Latest(other)"),
    ("POST", "/v1/models/taxi:explain", 404, "unknown verb ':explain'"),
    ("GET", "/v1/admin/models/taxi/rollout", 401, "Authorization"),
])
def test_unknown_urls_methods_and_callers(gateway, method, path, status, message):
    code, body, headers = call(gateway, method, path, {"instances": [INSTANCE]} if method == "POST" else None)
    assert code == status and list(body) == ["error"] and message in body["error"]
    assert headers["X-Request-Id"]


def test_routes_to_stable_and_keeps_a_valid_request_id(gateway):
    code, body, headers = call(gateway, "POST", "/v1/models/taxi:predict?x=1", {"instances": [INSTANCE]},
                               {"X-Request-Id": "abc-1"})
    assert code == 200 and len(body["predictions"]) == 1
    assert (headers["X-Model-Version"], headers["X-Request-Id"]) == ("1", "abc-1")
    assert call(gateway, "GET", "/healthz")[0] == 200


def test_a_missing_version_is_404_in_a_request_and_400_in_an_admin_change(gateway):
    code, body, _ = call(gateway, "POST", "/v1/models/taxi/versions/9:predict", {"instances": [INSTANCE]})
    assert (code, body) == (404, {"error": "Servable not found for request: Specific(taxi, 9)"})
    code, body, _ = call(gateway, "POST", "/v1/models/taxi/labels/blue:predict", {"instances": [INSTANCE]})
    assert code == 400 and body["error"].startswith("Unrecognized servable version label: blue (label:")
    code, body, _ = call(gateway, "POST", "/v1/admin/models/taxi/rollout:shadow", {"version": 9}, AUTH)
    assert code == 400 and body["error"].startswith("version: model 'taxi' has no version 9 on disk")
    code, body, _ = call(gateway, "POST", "/v1/admin/models/taxi/rollout:canary", {"percent": 150}, AUTH)
    assert code == 400 and body["error"].startswith("percent: expected a number in [0, 100]")


def test_admin_actions_reload_the_backend_before_answering(gateway):
    code, state, _ = call(gateway, "POST", "/v1/admin/models/taxi/rollout:canary",
                          {"version": 2, "percent": 100}, AUTH)
    assert (code, state["canary"], state["canary_percent"]) == (200, 2, 100.0)
    assert 2 in gateway.backend.versions("taxi")
    assert call(gateway, "POST", "/v1/models/taxi:predict", {"instances": [INSTANCE]})[2][
        "X-Model-Version"] == "2"
    assert call(gateway, "POST", "/v1/admin/models/taxi/rollout:clear", None, AUTH)[1]["canary"] is None


def test_metrics_label_model_api_calls_but_not_made_up_versions(gateway):
    call(gateway, "POST", "/v1/models/taxi/versions/1:predict", {"instances": [INSTANCE]})
    call(gateway, "POST", "/v1/models/taxi/versions/77:predict", {"instances": [INSTANCE]})
    code, text, headers = call(gateway, "GET", "/metrics")
    assert code == 200
    assert 'gateway_requests_total{model="taxi",version="1",verb="predict",code="200"}' in text
    assert 'gateway_request_errors_total{model="taxi",version="",verb="predict",code="404"}' in text
    assert 'version="77"' not in text


@pytest.mark.parametrize("labels", [None, {}])
def test_reading_the_rollout_status_writes_nothing(tmp_path, tiny_models, labels):
    """GET .../rollout is a read: with no models.config (labels None) or one without a
    stable label, it reports the version routing would pick but pins nothing."""
    base = str(tmp_path / "taxi")
    for version in (1, 2):
        push_version(base, version, tiny_models[version])
    config = tmp_path / "models.config"
    if labels is not None:
        models_config.write(str(config), [models_config.ModelEntry("taxi", base, labels=labels)])
    before = (config.read_bytes(), os.stat(config).st_mtime_ns) if config.exists() else None
    settings = GatewaySettings(model_name="taxi", model_base_path=base, models_config=str(config),
                               admin_token_env=TOKEN_ENV, poll_interval_s=0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_ENV, ADMIN_TOKEN)
        gateway = build_gateway(settings)
    try:
        for _ in range(3):
            code, state, _ = call(gateway, "GET", "/v1/admin/models/taxi/rollout", headers=AUTH)
            assert (code, state["stable"], state["canary"], state["history"]) == (200, 2, None, [])
    finally:
        gateway.close()
        gateway.backend.close()
    after = (config.read_bytes(), os.stat(config).st_mtime_ns) if config.exists() else None
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["taxi"] + (["models.config"] if labels is not None else []))
