"""Manifests checked against the Kubernetes API schemas, with no cluster.

Why: ``kubectl apply`` is the first place a typo (``containerport``), a wrong
type (a port as a string) or a missing required field would otherwise show
up, and there is no cluster here. The installed ``kubernetes`` client carries
the API's OpenAPI models: each object is deserialized into its typed model
(required fields enforced by client-side validation, values converted to the
declared types) and serialized back; anything the schema does not know is
dropped on the way, and anything of the wrong type comes back changed, so the
round trip must give back exactly the input.

KServe's InferenceService is a custom resource the client does not model:
its envelope and ``spec.predictor`` extension fields are checked here, and the
predictor's pod part (containers, volumes, ...) with ``V1PodSpec``. So is
prometheus-operator's PrometheusRule: its envelope, and its rule groups by
Prometheus' rule-file grammar (``check_rule_groups``, also used for the plain
rule file).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from kubernetes import client

from common.checks.monitoring import PROMETHEUS_DURATION
from serving.k8s.analysis import ANALYSIS_API_VERSION, ANALYSIS_KIND
from serving.k8s.render import KSERVE_API_VERSION, KSERVE_CONTAINER
from serving.k8s.rules import PROMETHEUS_RULE_API_VERSION

# kind -> (apiVersion, client model)
MODELS: Dict[str, Tuple[str, str]] = {
    "ConfigMap": ("v1", "V1ConfigMap"),
    "Deployment": ("apps/v1", "V1Deployment"),
    "Service": ("v1", "V1Service"),
    "CronJob": ("batch/v1", "V1CronJob"),  # the monitoring job (kubeflow.schedule)
}
# KServe v1beta1 ComponentExtensionSpec fields (inlined into PredictorSpec next
# to the PodSpec fields) and the JSON types they take.
KSERVE_PREDICTOR_EXTENSION: Dict[str, type] = {
    "minReplicas": int, "maxReplicas": int, "scaleTarget": int, "scaleMetric": str,
    "containerConcurrency": int, "timeout": int, "canaryTrafficPercent": int,
    "logger": dict, "batcher": dict, "labels": dict, "annotations": dict, "deploymentStrategy": dict,
}
# Model-serving runtimes a PredictorSpec may name instead of containers.
KSERVE_PREDICTOR_RUNTIMES = ("model", "tensorflow", "sklearn", "xgboost", "pytorch", "triton", "onnx",
                             "pmml", "lightgbm", "paddle", "huggingface")


class ManifestError(ValueError):
    """A manifest does not match the Kubernetes schema; the message names the object and field."""


_API = client.ApiClient()


def check_model(obj: Mapping[str, Any], model: str, where: str) -> Any:
    """``obj`` as the typed client ``model``; fails on unknown, mistyped or missing fields."""
    try:
        typed = _API._ApiClient__deserialize(obj, model)  # the client's own OpenAPI deserializer
    except (ValueError, TypeError, AttributeError) as error:
        raise ManifestError(f"{where}: not a valid {model}: {error}") from None
    back = _API.sanitize_for_serialization(typed)
    differences = _diff(obj, back, "")
    if differences:
        raise ManifestError(f"{where}: not a valid {model}: " + "; ".join(differences[:5]))
    return typed


def check(manifest: Mapping[str, Any]) -> None:
    """One manifest (a built-in kind above, or a KServe InferenceService)."""
    kind = manifest.get("kind")
    name = (manifest.get("metadata") or {}).get("name", "<unnamed>")
    where = f"{kind} {name}"
    if kind == "InferenceService":
        check_inference_service(manifest)
        return
    if kind == "PrometheusRule":
        check_prometheus_rule(manifest)
        return
    if kind == ANALYSIS_KIND:
        check_analysis_template(manifest)
        return
    if kind not in MODELS:
        raise ManifestError(f"{where}: kind: expected one of "
                            f"{sorted(MODELS) + ['InferenceService', 'PrometheusRule', ANALYSIS_KIND]}")
    api_version, model = MODELS[kind]
    if manifest.get("apiVersion") != api_version:
        raise ManifestError(f"{where}: apiVersion: expected {api_version!r}, got {manifest.get('apiVersion')!r}")
    _check_metadata(manifest, where)
    check_model(manifest, model, where)


def check_all(manifests: Sequence[Mapping[str, Any]]) -> None:
    for manifest in manifests:
        check(manifest)


def check_inference_service(isvc: Mapping[str, Any]) -> None:
    """Envelope, predictor extension fields, and the predictor's pod spec as a V1PodSpec."""
    where = _check_custom_envelope(isvc, "InferenceService", KSERVE_API_VERSION)
    spec = isvc.get("spec")
    if not isinstance(spec, Mapping) or "predictor" not in spec:
        raise ManifestError(f"{where}: spec.predictor: required")
    unknown = sorted(set(spec) - {"predictor", "transformer", "explainer"})
    if unknown:
        raise ManifestError(f"{where}: spec: unknown fields {unknown}")
    predictor = spec["predictor"]
    if not isinstance(predictor, Mapping):
        raise ManifestError(f"{where}: spec.predictor: expected a mapping")
    for key, kind in KSERVE_PREDICTOR_EXTENSION.items():
        if key in predictor and (not isinstance(predictor[key], kind) or isinstance(predictor[key], bool)):
            raise ManifestError(f"{where}: spec.predictor.{key}: expected {kind.__name__}, got {predictor[key]!r}")
    if predictor.get("minReplicas", 0) < 0 or predictor.get("maxReplicas", 0) < predictor.get("minReplicas", 0):
        raise ManifestError(f"{where}: spec.predictor: expected 0 <= minReplicas <= maxReplicas")
    runtimes = [key for key in KSERVE_PREDICTOR_RUNTIMES if key in predictor]
    pod = {k: v for k, v in predictor.items() if k not in KSERVE_PREDICTOR_EXTENSION and k not in runtimes}
    if runtimes:
        raise ManifestError(f"{where}: spec.predictor: expected a custom container, got runtime {runtimes}")
    containers = pod.get("containers") or []
    if not containers or containers[0].get("name") != KSERVE_CONTAINER:
        raise ManifestError(f"{where}: spec.predictor.containers[0].name: expected {KSERVE_CONTAINER!r}")
    if not any(env.get("name") == "STORAGE_URI" for env in containers[0].get("env", [])):
        raise ManifestError(f"{where}: spec.predictor.containers[0].env: expected STORAGE_URI (the model location)")
    check_model(pod, "V1PodSpec", f"{where}: spec.predictor")


# Prometheus rule-file grammar (prometheus/model/rulefmt): the keys a group and a rule may have.
RULE_GROUP_KEYS = {"name": str, "rules": list, "interval": str, "limit": int}
ALERTING_RULE_KEYS = {"alert": str, "expr": str, "for": str, "keep_firing_for": str, "labels": dict,
                      "annotations": dict}
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _check_custom_envelope(manifest: Mapping[str, Any], kind: str, api_version: str) -> str:
    """A custom resource's apiVersion, top-level fields and metadata; returns "<kind> <name>"."""
    where = f"{kind} {(manifest.get('metadata') or {}).get('name', '<unnamed>')}"
    if manifest.get("apiVersion") != api_version:
        raise ManifestError(f"{where}: apiVersion: expected {api_version!r}, got {manifest.get('apiVersion')!r}")
    unknown = sorted(set(manifest) - {"apiVersion", "kind", "metadata", "spec"})
    if unknown:
        raise ManifestError(f"{where}: unknown top-level fields {unknown}")
    _check_metadata(manifest, where)
    return where


def check_prometheus_rule(rule: Mapping[str, Any]) -> None:
    """prometheus-operator's PrometheusRule: envelope, metadata, and ``spec.groups``."""
    where = _check_custom_envelope(rule, "PrometheusRule", PROMETHEUS_RULE_API_VERSION)
    spec = rule.get("spec")
    if not isinstance(spec, Mapping) or sorted(spec) != ["groups"]:
        raise ManifestError(f"{where}: spec: expected exactly 'groups', got {spec!r:.80}")
    check_rule_groups(spec["groups"], f"{where}: spec")


ANALYSIS_ARG_KEYS = {"name": str, "value": str}
ANALYSIS_METRIC_KEYS = {"name": str, "interval": str, "initialDelay": str, "count": int,
                        "successCondition": str, "failureCondition": str, "failureLimit": int,
                        "inconclusiveLimit": int, "consecutiveErrorLimit": int, "provider": dict}
ARG_REFERENCE = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


def check_analysis_template(template: Mapping[str, Any]) -> None:
    """Argo Rollouts' AnalysisTemplate: envelope, args, and metrics with a Prometheus provider
    whose query is well formed and names only declared args."""
    where = _check_custom_envelope(template, ANALYSIS_KIND, ANALYSIS_API_VERSION)
    spec = template.get("spec")
    _check_keys(spec, {"args": list, "metrics": list, "dryRun": list, "measurementRetention": list},
                ("metrics",), f"{where}: spec")
    declared = set()
    for a, arg in enumerate(spec.get("args", [])):
        _check_keys(arg, ANALYSIS_ARG_KEYS, ("name",), f"{where}: spec.args[{a}]")
        declared.add(arg["name"])
    if not spec["metrics"]:
        raise ManifestError(f"{where}: spec.metrics: expected at least one metric")
    names = set()
    for m, metric in enumerate(spec["metrics"]):
        at = f"{where}: spec.metrics[{m}]"
        _check_keys(metric, ANALYSIS_METRIC_KEYS, ("name", "provider"), at)
        if metric["name"] in names:
            raise ManifestError(f"{at}.name: {metric['name']!r} is used by two metrics")
        names.add(metric["name"])
        for key in ("interval", "initialDelay"):
            if key in metric:
                _check_duration(metric[key], f"{at}.{key}")
        for key in ("successCondition", "failureCondition"):
            if key in metric:
                _check_expression(metric[key], f"{at}.{key}")
        provider = metric["provider"].get("prometheus")
        if sorted(metric["provider"]) != ["prometheus"]:
            raise ManifestError(f"{at}.provider: expected exactly 'prometheus', got {sorted(metric['provider'])}")
        _check_keys(provider, {"address": str, "query": str, "timeout": int}, ("address", "query"),
                    f"{at}.provider.prometheus")
        for key in ("address", "query"):
            for name in ARG_REFERENCE.findall(provider[key]):
                if name not in declared:
                    raise ManifestError(f"{at}.provider.prometheus.{key}: uses args.{name}, "
                                        f"not among spec.args {sorted(declared)}")
        _check_expression(ARG_REFERENCE.sub("0", provider["query"]), f"{at}.provider.prometheus.query")


def check_rule_groups(groups: Any, where: str) -> None:
    """Rule groups as Prometheus loads them: typed keys, unique names, valid durations,
    balanced expressions, label names Prometheus accepts."""
    if not isinstance(groups, list) or not groups:
        raise ManifestError(f"{where}.groups: expected a non-empty list")
    names = set()
    for g, group in enumerate(groups):
        at = f"{where}.groups[{g}]"
        _check_keys(group, RULE_GROUP_KEYS, ("name", "rules"), at)
        if group["name"] in names:
            raise ManifestError(f"{at}.name: {group['name']!r} is used by two groups")
        names.add(group["name"])
        if "interval" in group:
            _check_duration(group["interval"], f"{at}.interval")
        if not group["rules"]:
            raise ManifestError(f"{at}.rules: expected at least one rule")
        for r, rule in enumerate(group["rules"]):
            _check_alerting_rule(rule, f"{at}.rules[{r}]")


def _check_alerting_rule(rule: Any, at: str) -> None:
    _check_keys(rule, ALERTING_RULE_KEYS, ("alert", "expr"), at)
    if not METRIC_NAME.fullmatch(rule["alert"]):
        raise ManifestError(f"{at}.alert: {rule['alert']!r} is not a valid alert name")
    _check_expression(rule["expr"], f"{at}.expr")
    for key in ("for", "keep_firing_for"):
        if key in rule:
            _check_duration(rule[key], f"{at}.{key}")
    for key in ("labels", "annotations"):
        for name, value in rule.get(key, {}).items():
            if not isinstance(name, str) or not LABEL_NAME.fullmatch(name) or not isinstance(value, str):
                raise ManifestError(f"{at}.{key}.{name}: expected a label name mapped to a string, "
                                    f"got {value!r}")


def _check_keys(obj: Any, allowed: Mapping[str, type], required: Sequence[str], at: str) -> None:
    if not isinstance(obj, Mapping):
        raise ManifestError(f"{at}: expected a mapping, got {obj!r:.60}")
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise ManifestError(f"{at}: unknown fields {unknown} (expected some of {sorted(allowed)})")
    for key in required:
        if key not in obj:
            raise ManifestError(f"{at}.{key}: required")
    for key, kind in allowed.items():
        if key in obj and (not isinstance(obj[key], kind) or isinstance(obj[key], bool)):
            raise ManifestError(f"{at}.{key}: expected {kind.__name__}, got {obj[key]!r:.60}")


def _check_duration(value: str, at: str) -> None:
    if not PROMETHEUS_DURATION.fullmatch(value):
        raise ManifestError(f"{at}: {value!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")


def _check_expression(expr: str, at: str) -> None:
    """Non-empty, quotes closed, brackets balanced and nested (outside quoted strings)."""
    if not expr.strip():
        raise ManifestError(f"{at}: expected a PromQL expression, got an empty string")
    closing = {")": "(", "]": "[", "}": "{"}
    stack: List[str] = []
    quote = ""
    for position, char in enumerate(expr):
        if quote:
            if char == quote and expr[position - 1] != "\\":
                quote = ""
            continue
        if char in "\"'`":
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in closing:
            if not stack or stack.pop() != closing[char]:
                raise ManifestError(f"{at}: unbalanced {char!r} at position {position} of {expr!r}")
    if quote or stack:
        raise ManifestError(f"{at}: unclosed {quote or stack[-1]!r} in {expr!r}")


def _check_metadata(manifest: Mapping[str, Any], where: str) -> None:
    meta = manifest.get("metadata")
    if not isinstance(meta, Mapping) or not meta.get("name"):
        raise ManifestError(f"{where}: metadata.name: required")
    check_model(meta, "V1ObjectMeta", f"{where}: metadata")


def _diff(sent: Any, back: Any, path: str) -> List[str]:
    """Where ``back`` (after the schema round trip) differs from ``sent``."""
    if isinstance(sent, Mapping):
        if not isinstance(back, Mapping):
            return [f"{path or '<root>'}: expected an object, the schema has {type(back).__name__}"]
        def at(key: str) -> str:
            return f"{path}.{key}" if path else key

        out = [f"{at(key)}: unknown field" for key in sent if key not in back]
        out += [f"{at(key)}: not in the input" for key in back if key not in sent]
        for key in sent:
            if key in back:
                out += _diff(sent[key], back[key], at(key))
        return out
    if isinstance(sent, (list, tuple)):
        if not isinstance(back, (list, tuple)) or len(back) != len(sent):
            return [f"{path}: expected a list"]
        return [d for i, (a, b) in enumerate(zip(sent, back)) for d in _diff(a, b, f"{path}[{i}]")]
    if type(sent) is not type(back) or sent != back:
        return [f"{path}: {sent!r} ({type(sent).__name__}) does not match the schema type "
                f"(read back as {back!r})"]
    return []
