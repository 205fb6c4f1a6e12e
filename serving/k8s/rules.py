"""Prometheus alerting rules for the served model, with the thresholds of the config's ``monitoring``.

The same limits ``python -m monitoring check`` holds a span to, for Prometheus
to evaluate continuously over a sliding window (``monitoring.rule_window``):

* the gateway (``serving.metrics``): 5xx share of ``gateway_requests_total``
  and p99 of ``gateway_request_latency_seconds``, per model version, over the
  inference verbs;
* TF Serving in the cluster (its ``/monitoring/prometheus/metrics``, scraped by
  the annotations ``render`` puts on the pods): non-OK share of
  ``:tensorflow:serving:request_count`` and p99 of
  ``:tensorflow:serving:request_latency`` (microseconds);
* the data checks: ``monitoring_alert`` (one gauge per measured test, 1 when
  it crossed its threshold) from the textfile ``python -m monitoring check``
  writes for node_exporter, and a check that stopped running
  (``monitoring_check_timestamp_seconds`` older than two request-log spans).

Rendered twice: a ``PrometheusRule`` (prometheus-operator's custom resource,
``monitoring.coreos.com/v1``) and the same groups as a plain rule file for a
Prometheus configured by ``rule_files``. A metric that is never exported (no
gateway in front of TF Serving) only means its rule never fires.
"""
from __future__ import annotations

from typing import Any, Dict, List

from common.config import PipelineConfig
from common.serving_contract import INFERENCE_VERBS

PROMETHEUS_RULE_API_VERSION = "monitoring.coreos.com/v1"
TF_SERVING_LATENCY_UNIT_MS = 1000.0  # TF Serving's request_latency is in microseconds

Rule = Dict[str, Any]


def _rule(name: str, expr: str, hold: str, severity: str, summary: str, description: str) -> Rule:
    rule: Rule = {"alert": name, "expr": expr}
    if hold:
        rule["for"] = hold
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def _number(value: float) -> str:
    return f"{value:g}"


def health_rules(cfg: PipelineConfig) -> List[Rule]:
    """Error rate and p99 latency of the gateway and of TF Serving."""
    model, limits = cfg.serving.model_name, cfg.monitoring
    window, hold = limits.rule_window, limits.rule_for
    rate, p99 = _number(limits.max_error_rate), _number(limits.max_p99_latency_ms)
    # inference only: status, metadata and feedback calls are not the model's service
    gateway = f'model="{model}",verb=~"{"|".join(INFERENCE_VERBS)}"'
    tf_serving = f'model_name="{model}"'
    return [
        _rule("GatewayErrorRateHigh",
              f'sum by (model, version) (rate(gateway_requests_total{{{gateway},code=~"5.."}}[{window}]))'
              f" / sum by (model, version) (rate(gateway_requests_total{{{gateway}}}[{window}])) > {rate}",
              hold, "critical", f"Gateway 5xx share above {rate} for model {model}",
              "{{ $value | humanizePercentage }} of requests to version {{ $labels.version }} got a 5xx "
              f"answer over {window} (monitoring.max_error_rate: {rate})."),
        _rule("GatewayLatencyP99High",
              f"histogram_quantile(0.99, sum by (model, version, le) "
              f"(rate(gateway_request_latency_seconds_bucket{{{gateway}}}[{window}]))) * 1000 > {p99}",
              hold, "warning", f"Gateway p99 latency above {p99} ms for model {model}",
              "p99 latency of version {{ $labels.version }} is {{ $value | humanize }} ms over "
              f"{window} (monitoring.max_p99_latency_ms: {p99})."),
        _rule("TFServingErrorRateHigh",
              f'sum by (model_name) (rate(:tensorflow:serving:request_count{{{tf_serving},status!="OK"}}'
              f"[{window}])) / sum by (model_name) (rate(:tensorflow:serving:request_count"
              f"{{{tf_serving}}}[{window}])) > {rate}",
              hold, "critical", f"TF Serving error share above {rate} for model {model}",
              "{{ $value | humanizePercentage }} of TF Serving requests failed over "
              f"{window} (monitoring.max_error_rate: {rate})."),
        _rule("TFServingLatencyP99High",
              f"histogram_quantile(0.99, sum by (model_name, le) (rate(:tensorflow:serving:"
              f"request_latency_bucket{{{tf_serving}}}[{window}]))) / {_number(TF_SERVING_LATENCY_UNIT_MS)}"
              f" > {p99}",
              hold, "warning", f"TF Serving p99 latency above {p99} ms for model {model}",
              "TF Serving p99 request latency is {{ $value | humanize }} ms over "
              f"{window} (monitoring.max_p99_latency_ms: {p99})."),
    ]


def data_rules(cfg: PipelineConfig) -> List[Rule]:
    """The data checks' alert flags, and a check that stopped running."""
    model = cfg.serving.model_name
    stale = 2 * cfg.serving.request_log_window_seconds
    return [
        _rule("ServedDataAlert",
              f'max by (model, comparator, feature, measure, version) (monitoring_alert{{model="{model}"}}) > 0',
              "", "warning", f"Monitoring check of model {model} raised an alert",
              "{{ $labels.comparator }} {{ $labels.measure }} of {{ $labels.feature }} (version "
              "{{ $labels.version }}) crossed its threshold in the last span checked; see "
              "alerts.jsonl and `python -m monitoring report`."),
        _rule("MonitoringCheckStale",
              f'time() - max by (model) (monitoring_check_timestamp_seconds{{model="{model}"}}) > {stale}',
              cfg.monitoring.rule_for, "warning", f"No monitoring check of model {model} for {stale} s",
              "The last `python -m monitoring check` ran {{ $value | humanizeDuration }} ago, more than "
              f"two request-log spans (serving.request_log_window_seconds: "
              f"{cfg.serving.request_log_window_seconds})."),
    ]


def rule_groups(cfg: PipelineConfig) -> List[Dict[str, Any]]:
    """The rule groups, as both the PrometheusRule spec and a plain rule file hold them."""
    name = cfg.serving.model_name
    return [{"name": f"{name}-serving-health", "rules": health_rules(cfg)},
            {"name": f"{name}-served-data", "rules": data_rules(cfg)}]


def prometheus_rule(cfg: PipelineConfig, metadata: Dict[str, Any]) -> Dict[str, Any]:
    """The ``PrometheusRule`` custom resource (``metadata`` from ``render``: name, namespace, labels)."""
    return {"apiVersion": PROMETHEUS_RULE_API_VERSION, "kind": "PrometheusRule", "metadata": metadata,
            "spec": {"groups": rule_groups(cfg)}}


def rule_file(cfg: PipelineConfig) -> Dict[str, Any]:
    """A Prometheus ``rule_files`` entry's content."""
    return {"groups": rule_groups(cfg)}
