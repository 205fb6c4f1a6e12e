"""The canary analysis of ``python -m monitoring canary`` as an Argo Rollouts AnalysisTemplate.

In the cluster the same verdict is Argo Rollouts' job: a Rollout's canary step
runs an AnalysisRun from this template, which queries Prometheus for the
gateway's per-version metrics (``serving.metrics``, scraped from the pods) and
holds them to the ``rollout_analysis`` thresholds of the config:

* ``canary-requests``: requests the canary answered over the window; below
  ``min_requests`` the measurement is inconclusive (neither condition holds),
  as the local runner's verdict is;
* ``error-rate-increase``: canary 5xx share minus stable 5xx share;
* ``p99-latency-ratio``: canary p99 over stable p99, each floored at
  ``p99_latency_floor_ms``.

Output distance and labelled accuracy need the request log and the feedback
labels, which Prometheus does not hold: they stay with the local runner.
Arguments: ``stable-version`` and ``canary-version`` (the TF Serving versions the
gateway's ``version`` label carries), ``prometheus-address``.
"""
from __future__ import annotations

from typing import Any, Dict, List

from common.config import PipelineConfig
from common.serving_contract import INFERENCE_VERBS

ANALYSIS_API_VERSION = "argoproj.io/v1alpha1"
ANALYSIS_KIND = "AnalysisTemplate"
ARGS = ("stable-version", "canary-version", "prometheus-address")
DEFAULT_PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
INTERVAL = "1m"
MEASUREMENTS = 5  # measurements per metric in one AnalysisRun


def _selector(cfg: PipelineConfig, role: str, extra: str = "") -> str:
    verbs = "|".join(INFERENCE_VERBS)
    return f'model="{cfg.serving.model_name}",version="{{{{args.{role}-version}}}}",verb=~"{verbs}"{extra}'


def _error_share(cfg: PipelineConfig, role: str, window: str) -> str:
    errors = _selector(cfg, role, ',code=~"5.."')
    return (f"(sum(rate(gateway_requests_total{{{errors}}}[{window}])) or vector(0))"
            f" / sum(rate(gateway_requests_total{{{_selector(cfg, role)}}}[{window}]))")


def _p99_ms(cfg: PipelineConfig, role: str, window: str, floor_ms: float) -> str:
    return (f"clamp_min(histogram_quantile(0.99, sum by (le) (rate(gateway_request_latency_seconds_bucket"
            f"{{{_selector(cfg, role)}}}[{window}]))) * 1000, {floor_ms:g})")


def _metric(name: str, query: str, success: str, failure: str = "") -> Dict[str, Any]:
    metric: Dict[str, Any] = {"name": name, "interval": INTERVAL, "count": MEASUREMENTS,
                              "successCondition": success}
    if failure:
        metric["failureCondition"] = failure
    metric["failureLimit"] = 0
    metric["inconclusiveLimit"] = MEASUREMENTS
    metric["provider"] = {"prometheus": {"address": "{{args.prometheus-address}}", "query": query}}
    return metric


def metrics(cfg: PipelineConfig) -> List[Dict[str, Any]]:
    limits, window = cfg.rollout_analysis, cfg.monitoring.rule_window
    requests = f"sum(increase(gateway_requests_total{{{_selector(cfg, 'canary')}}}[{window}]))"
    return [
        _metric("canary-requests", requests, f"result[0] >= {limits.min_requests}", "false"),
        _metric("error-rate-increase",
                f"({_error_share(cfg, 'canary', window)}) - ({_error_share(cfg, 'stable', window)})",
                f"result[0] <= {limits.max_error_rate_increase:g}"),
        _metric("p99-latency-ratio",
                f"{_p99_ms(cfg, 'canary', window, limits.p99_latency_floor_ms)} / "
                f"{_p99_ms(cfg, 'stable', window, limits.p99_latency_floor_ms)}",
                f"result[0] <= {limits.max_p99_latency_ratio:g}"),
    ]


def analysis_template(cfg: PipelineConfig, metadata: Dict[str, Any]) -> Dict[str, Any]:
    """The ``AnalysisTemplate`` (``metadata`` from ``render``: name, namespace, labels)."""
    args: List[Dict[str, Any]] = [{"name": name} for name in ARGS[:2]]
    args.append({"name": ARGS[2], "value": DEFAULT_PROMETHEUS})
    return {"apiVersion": ANALYSIS_API_VERSION, "kind": ANALYSIS_KIND, "metadata": metadata,
            "spec": {"args": args, "metrics": metrics(cfg)}}
