"""Rollouts through the gateway's admin API and CLI, and the request log.

Versions 1 (stable) and 2 (on disk, not served) of the tiny model. Canary 10 %
must send 10 ± 5 % of 2,000 requests (split by request id) to version 2;
a shadow version answers every request but never changes the answer, and
both answers are logged; promote and rollback switch the stable label; the
request log written meanwhile is read back by TFDV.
"""
import glob
import os
import signal
import subprocess
import sys

import pytest

from serving import models_config, request_log
from serving.client import Client
from serving.server import launch
from testing.tiny_model import ADMIN_TOKEN, INSTANCE, bias_of, gateway_args, gateway_env, probability, push_version
from tests.conftest import TAXI_CONFIG

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ADMIN = "/v1/admin/models/taxi/rollout"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("rollout"))


@pytest.fixture(scope="module")
def gateway(root, tiny_models):
    base = os.path.join(root, "serving", "taxi")
    for version in (1, 2):
        push_version(base, version, tiny_models[version])
    models_config.write(os.path.join(root, "serving", "models.config"), [models_config.ModelEntry(
        "taxi", base, versions=(1,), labels={"stable": 1})])
    with launch(gateway_args(TAXI_CONFIG, root), env=gateway_env()) as server:
        yield server


@pytest.fixture(scope="module")
def client(gateway):
    with Client(gateway.base_url) as c:
        yield c


def p(version, fare=INSTANCE["fare"]):
    return probability(bias_of(version), fare, INSTANCE["payment_type"])


def predict(client, request_id, fare=INSTANCE["fare"]):
    status, body, headers = client.request("POST", "/v1/models/taxi:predict",
                                           {"instances": [dict(INSTANCE, fare=fare)]},
                                           headers={"X-Request-Id": request_id})
    assert status == 200, body
    version = int(headers["X-Model-Version"])
    assert body["predictions"] == [[pytest.approx(p(version, fare), rel=1e-5)]]
    return version


def admin(client, action, **params):
    status, state, _ = client.request("POST", f"{ADMIN}:{action}", params, headers=AUTH)
    assert status == 200, state
    return state


def test_canary_split_is_within_5_points_over_2000_requests(client):
    state = admin(client, "canary", percent=10)
    assert (state["stable"], state["canary"], state["canary_percent"]) == (1, 2, 10.0)
    versions = [predict(client, f"canary-{i}") for i in range(2000)]
    share = versions.count(2) / len(versions) * 100
    assert set(versions) == {1, 2}
    assert 5.0 <= share <= 15.0, share
    # the split is by request id: the same id always lands on the same version
    assert [predict(client, f"canary-{i}") for i in range(50)] == versions[:50]
    assert admin(client, "clear")["canary"] is None


def test_shadow_answers_never_change_the_returned_answer(client):
    state = admin(client, "shadow", version=2)
    assert (state["stable"], state["shadow"]) == (1, 2)
    for i in range(30):
        assert predict(client, f"shadow-{i}", fare=float(i)) == 1
    admin(client, "clear")


def test_promote_then_rollback_restores_the_previous_version(client):
    assert admin(client, "promote", version=2)["stable"] == 2
    assert {predict(client, f"after-promote-{i}") for i in range(20)} == {2}
    state = admin(client, "rollback")
    assert (state["stable"], state["canary"], state["shadow"]) == (1, None, None)
    assert {predict(client, f"after-rollback-{i}") for i in range(20)} == {1}


def test_rollout_errors_name_the_field(client):
    status, answer, _ = client.request("POST", f"{ADMIN}:canary", {"percent": 150}, headers=AUTH)
    assert status == 400 and "percent" in answer["error"]
    status, answer, _ = client.request("POST", f"{ADMIN}:shadow", {"version": 42}, headers=AUTH)
    assert status == 400 and "42" in answer["error"]
    status, answer, _ = client.request("POST", f"{ADMIN}:canary", {"percent": 5}, headers={})
    assert status == 401


def test_cli_rollout_and_predict(gateway, tmp_path):
    env = dict(gateway_env(), PYTHONPATH=REPO)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "serving", *args, "--url", gateway.base_url],
                              env=env, capture_output=True, text=True, timeout=120, cwd=REPO)

    done = cli("rollout", "--config", TAXI_CONFIG, "canary", "20")
    assert done.returncode == 0, done.stderr
    assert '"canary_percent": 20.0' in done.stdout
    assert cli("rollout", "--config", TAXI_CONFIG, "clear").returncode == 0
    rows = tmp_path / "rows.csv"
    rows.write_text(",".join(INSTANCE) + "\n" + ",".join(str(v) for v in INSTANCE.values()) + "\n")
    done = cli("predict", "--config", TAXI_CONFIG, "--csv", str(rows), "--version", "1")
    assert done.returncode == 0, done.stderr
    assert '"predictions"' in done.stdout
    no_token = subprocess.run([sys.executable, "-m", "serving", "rollout", "--config", TAXI_CONFIG,
                               "promote", "--url", gateway.base_url], env=dict(env, SERVING_ADMIN_TOKEN=""),
                              capture_output=True, text=True, timeout=120, cwd=REPO)
    assert no_token.returncode == 2 and "SERVING_ADMIN_TOKEN" in no_token.stderr


def test_request_log_is_read_back_by_tfdv(gateway, root, taxi_config):
    """Runs last: stopping the gateway flushes the log."""
    import tensorflow_data_validation as tfdv

    gateway.process.send_signal(signal.SIGTERM)
    assert gateway.process.wait(timeout=60) == 0
    directory = os.path.join(root, "request_log")
    primary = glob.glob(os.path.join(directory, "span-*", "primary-*.tfrecord"))
    assert primary
    stats = tfdv.generate_statistics_from_tfrecord(
        data_location=os.path.join(directory, "span-*", "primary-*.tfrecord"))
    dataset = stats.datasets[0]
    logged = 2000 + 50 + 30 + 40 + 1  # canary + repeat + shadow + promote/rollback + CLI rows
    assert dataset.num_examples == logged
    names = {f.path.step[0] for f in dataset.features}
    dropped = set(taxi_config.serving.sensitive_features)
    assert {f.name for f in taxi_config.features} - dropped <= names
    assert not dropped & names
    assert request_log.VERSION in names and request_log.OUTPUT in names
    # shadow answers are logged beside the primary ones, one per shadow request
    shadow = [e for span in request_log.list_spans(directory)
              for e in request_log.read_window(directory, span, role="shadow")]
    ids = {e.features.feature[request_log.REQUEST_ID].bytes_list.value[0].decode() for e in shadow}
    assert ids == {f"shadow-{i}" for i in range(30)}
    assert {e.features.feature[request_log.VERSION].int64_list.value[0] for e in shadow} == {2}
