"""The canary analysis as an Argo Rollouts AnalysisTemplate: the config's thresholds, and a
structural check that rejects what Argo would not run."""
import copy

import pytest

from common.loader import load_config
from serving.k8s import render, validate
from tests.conftest import TAXI_CONFIG

OVERRIDES = ["rollout_analysis.min_requests=250", "rollout_analysis.max_error_rate_increase=0.02",
             "rollout_analysis.max_p99_latency_ratio=1.25", "rollout_analysis.p99_latency_floor_ms=15",
             "monitoring.rule_window=10m"]


@pytest.fixture(scope="module")
def template():
    cfg = load_config(TAXI_CONFIG, OVERRIDES, require_data=False)
    found = [m for m in render.monitoring_manifests(cfg) if m["kind"] == "AnalysisTemplate"]
    assert len(found) == 1
    return found[0]


def test_the_template_holds_the_rollout_analysis_thresholds_of_the_config(template):
    validate.check(template)
    metrics = {m["name"]: m for m in template["spec"]["metrics"]}
    assert metrics["canary-requests"]["successCondition"] == "result[0] >= 250"
    assert metrics["canary-requests"]["failureCondition"] == "false"  # fewer requests: inconclusive
    assert metrics["error-rate-increase"]["successCondition"] == "result[0] <= 0.02"
    assert metrics["p99-latency-ratio"]["successCondition"] == "result[0] <= 1.25"
    latency = metrics["p99-latency-ratio"]["provider"]["prometheus"]["query"]
    assert latency.count("* 1000, 15)") == 2 and "[10m]" in latency
    for metric in metrics.values():
        query = metric["provider"]["prometheus"]["query"]
        assert 'model="taxi"' in query and "{{args.canary-version}}" in query
    errors = metrics["error-rate-increase"]["provider"]["prometheus"]["query"]
    assert "{{args.stable-version}}" in errors and 'code=~"5.."' in errors


def _broken(template, change):
    broken = copy.deepcopy(template)
    change(broken)
    return broken


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update(apiVersion="argoproj.io/v1"), "apiVersion"),
    (lambda t: t["spec"]["metrics"][0].update(intervall="1m"), "unknown fields ['intervall']"),
    (lambda t: t["spec"]["metrics"][0].update(interval="soon"), "not a Prometheus duration"),
    (lambda t: t["spec"]["metrics"][1].update(name="canary-requests"), "used by two metrics"),
    (lambda t: t["spec"]["args"].pop(0), "uses args.stable-version"),
    (lambda t: t["spec"]["metrics"][2]["provider"]["prometheus"].update(query="sum(rate(x[5m])"), "unclosed"),
    (lambda t: t["spec"]["metrics"][0].update(provider={"web": {}}), "expected exactly 'prometheus'"),
    (lambda t: t["spec"]["metrics"][0].update(count="5"), "expected int"),
])
def test_the_check_rejects_what_argo_would_not_run(template, change, message):
    with pytest.raises(validate.ManifestError) as err:
        validate.check(_broken(template, change))
    assert message in str(err.value) and "AnalysisTemplate taxi-canary-analysis" in str(err.value)
