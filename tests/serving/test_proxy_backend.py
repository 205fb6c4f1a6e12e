"""ProxyBackend against a real gateway standing in for TF Serving (same REST API):
pooled keep-alive connections, a cached version list, models.config re-read
only when it changes."""
import concurrent.futures
import os
import re

import pytest

from serving import models_config
from serving.backends import ProxyBackend
from serving.client import Client
from serving.server import launch
from testing.tiny_model import INSTANCE, gateway_args, gateway_env, push_version
from tests.conftest import TAXI_CONFIG

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, tiny_models):
    root = str(tmp_path_factory.mktemp("upstream"))
    base = os.path.join(root, "serving", "taxi")
    for version in (1, 2):
        push_version(base, version, tiny_models[version])
    models_config.write(os.path.join(root, "serving", "models.config"), [models_config.ModelEntry(
        "taxi", base, versions=(1, 2), labels={"stable": 1})])
    with launch(gateway_args(TAXI_CONFIG, root, "--no_request_log"), env=gateway_env()) as server:
        yield server, root


def status_calls(server):
    """How many status requests the upstream answered (from its /metrics)."""
    with Client(server.base_url) as client:
        text = client.request("GET", "/metrics")[1]
    match = re.search(r'gateway_requests_total\{model="taxi",version="",verb="status",code="200"\} (\d+)', text)
    return int(match.group(1)) if match else 0


def test_versions_are_cached_and_connections_reused(upstream):
    server, root = upstream
    proxy = ProxyBackend(server.base_url, os.path.join(root, "serving", "models.config"), versions_ttl_s=60)
    proxy.start()
    try:
        before = status_calls(server)
        for _ in range(20):
            assert proxy.versions("taxi") == [1, 2]
        assert status_calls(server) == before + 1
        proxy.reload()  # the rollout router's "a version is missing": ask again
        assert proxy.versions("taxi") == [1, 2]
        assert status_calls(server) == before + 2
        for _ in range(20):
            answer = proxy.infer("taxi", 1, "predict", {"instances": [INSTANCE]}, {})
            assert len(answer["predictions"]) == 1
        assert proxy.connections_opened == 1
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: proxy.infer("taxi", 2, "predict", {"instances": [INSTANCE]}, {}),
                                    range(40)))
        assert all(len(a["predictions"]) == 1 for a in answers)
        assert proxy.connections_opened <= 5
    finally:
        proxy.close()


def test_models_config_is_reread_when_it_changes(upstream, tmp_path):
    server, root = upstream
    config = str(tmp_path / "models.config")
    entry = models_config.ModelEntry("taxi", os.path.join(root, "serving", "taxi"), versions=(1, 2),
                                     labels={"stable": 1})
    models_config.write(config, [entry])
    proxy = ProxyBackend(server.base_url, config)
    try:
        assert proxy.model_names() == ["taxi"] and proxy.labels("taxi") == {"stable": 1}
        models_config.write(config, [entry.with_label("canary", 2)])
        assert proxy.labels("taxi") == {"stable": 1, "canary": 2}
        os.remove(config)
        assert proxy.model_names() == [] and proxy.labels("taxi") == {}
    finally:
        proxy.close()


def test_an_unreachable_tf_serving_is_a_503_not_a_crash():
    proxy = ProxyBackend("http://127.0.0.1:9", None, ("taxi",), timeout_s=2)
    with pytest.raises(RuntimeError, match="TF Serving is not reachable at http://127.0.0.1:9"):
        proxy.start()
    from serving.errors import Unavailable
    with pytest.raises(Unavailable, match="did not answer"):
        proxy.versions("taxi")
