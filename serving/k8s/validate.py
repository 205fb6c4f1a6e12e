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
predictor's pod part (containers, volumes, ...) with ``V1PodSpec``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from kubernetes import client

from serving.k8s.render import KSERVE_API_VERSION, KSERVE_CONTAINER

# kind -> (apiVersion, client model)
MODELS: Dict[str, Tuple[str, str]] = {
    "ConfigMap": ("v1", "V1ConfigMap"),
    "Deployment": ("apps/v1", "V1Deployment"),
    "Service": ("v1", "V1Service"),
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
    if kind not in MODELS:
        raise ManifestError(f"{where}: kind: expected one of {sorted(MODELS) + ['InferenceService']}")
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
    where = f"InferenceService {(isvc.get('metadata') or {}).get('name', '<unnamed>')}"
    if isvc.get("apiVersion") != KSERVE_API_VERSION:
        raise ManifestError(f"{where}: apiVersion: expected {KSERVE_API_VERSION!r}, got {isvc.get('apiVersion')!r}")
    unknown = sorted(set(isvc) - {"apiVersion", "kind", "metadata", "spec"})
    if unknown:
        raise ManifestError(f"{where}: unknown top-level fields {unknown}")
    _check_metadata(isvc, where)
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
