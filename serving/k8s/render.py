"""Kubernetes manifests for real TF Serving, built from the dataset config.

Why plain Python: every value comes from ``PipelineConfig`` (model name,
ports, image tag, batching, storage), and the TF Serving files inside the
ConfigMap come from ``serving.models_config``, the same code the local
gateway reads them with. A template language would be a second source of
truth; dicts can be checked against the Kubernetes schemas in a unit test
(``serving.k8s.validate``).

Two alternatives, each complete on its own (apply one, not both):

* ``tf-serving``: ConfigMap (models.config, batching.config,
  monitoring.config), Deployment running ``tensorflow_model_server`` with
  those files, Service with named REST and gRPC ports.
* ``kserve``: ConfigMap (models.config pointing at KServe's download
  directory) and a ``serving.kserve.io/v1beta1`` InferenceService whose
  predictor is a custom container with the same image and flags, so version
  labels, batching and monitoring behave exactly as in the Deployment.

Beside them, to apply with either: ``monitoring``, a ``PrometheusRule``
alerting on the served model's error rate, p99 latency and data-check alerts
with the thresholds of the config's ``monitoring`` section (``serving.k8s.rules``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import posixpath
from typing import Any, Dict, List, Mapping, Optional

from common.config import ConfigError, PipelineConfig
from common.k8s_grammar import DNS_LABEL, PVC_URI
from serving import models_config
from serving.k8s import analysis, rules

Manifest = Dict[str, Any]

TF_SERVING = "tf-serving"
KSERVE = "kserve"
MONITORING = "monitoring"
CONFIG_DIR = "/etc/tf-serving"  # the ConfigMap, mounted whole so edits propagate
PVC_MODEL_ROOT = "/models"  # a pvc:// model repository is mounted at /models/<model_name>
KSERVE_MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts STORAGE_URI
KSERVE_CONTAINER = "kserve-container"  # the predictor container name KServe expects
KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
MODEL_SERVER = "/usr/bin/tensorflow_model_server"
CREDENTIALS_DIR = "/var/secrets/google"
MODELS_CONFIG = "models.config"
BATCHING_CONFIG = "batching.config"
MONITORING_CONFIG = "monitoring.config"


@dataclasses.dataclass(frozen=True)
class Storage:
    """Where the model repository is, for TF Serving in a pod.

    ``base_path`` goes into models.config; ``claim`` / ``sub_path`` are set
    for a PersistentVolumeClaim, empty for gs:// (read by TF Serving itself).
    """
    uri: str
    base_path: str
    claim: str = ""
    sub_path: str = ""


def resource_name(cfg: PipelineConfig) -> str:
    """The model name as a Kubernetes name (DNS-1123 label): lower case, '_' -> '-'."""
    name = cfg.serving.model_name.lower().replace("_", "-")
    if not DNS_LABEL.fullmatch(name) or len(name) > 40:
        raise ConfigError(
            f"{cfg.source_file}: key 'serving.model_name': expected a name that maps to a Kubernetes name "
            f"(letters, digits, '-', '_', starting and ending with a letter or digit, max 40), "
            f"got {cfg.serving.model_name!r}")
    return name


def storage(cfg: PipelineConfig) -> Storage:
    """``serving.kubernetes.storage_uri`` (or a gs:// push_dir) as a pod sees it."""
    uri = cfg.serving.kubernetes.storage_uri
    if not uri and cfg.serving.push_dir.startswith("gs://"):
        uri = posixpath.join(cfg.serving.push_dir, cfg.serving.model_name)
    if not uri:
        raise ConfigError(
            f"{cfg.source_file}: key 'serving.kubernetes.storage_uri': expected the model repository as the "
            f"cluster sees it, gs://<bucket>/<path> or pvc://<claim>/<path> (serving.push_dir "
            f"{cfg.serving.push_dir!r} is local to this machine), got ''")
    uri = uri.rstrip("/")
    match = PVC_URI.fullmatch(uri)
    if match:
        return Storage(uri=uri, base_path=posixpath.join(PVC_MODEL_ROOT, cfg.serving.model_name),
                       claim=match.group("claim"), sub_path=match.group("path").strip("/"))
    return Storage(uri=uri, base_path=uri)


def labels(cfg: PipelineConfig) -> Dict[str, str]:
    """Recommended app.kubernetes.io labels; the first two also select the pods."""
    return {**selector(cfg),
            "app.kubernetes.io/version": cfg.serving.tf_serving_tag,
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/part-of": cfg.pipeline_name,
            "app.kubernetes.io/managed-by": "serving.k8s"}


def selector(cfg: PipelineConfig) -> Dict[str, str]:
    return {"app.kubernetes.io/name": TF_SERVING, "app.kubernetes.io/instance": resource_name(cfg)}


def app_name(cfg: PipelineConfig) -> str:
    """Deployment/Service name, e.g. ``taxi-tf-serving``."""
    return f"{resource_name(cfg)}-{TF_SERVING}"


def model_entry(cfg: PipelineConfig, base_path: str, stable: Optional[int] = None,
                canary: Optional[int] = None) -> models_config.ModelEntry:
    """The models.config entry: latest version, or exactly stable (+ canary) with those labels.

    Pinning versions is what makes labels safe: TF Serving serves only the
    listed versions, so a new push changes nothing until the labels move.
    """
    if canary is not None and stable is None:
        raise ConfigError("--canary: expected --stable too (a canary is compared with a stable version)")
    entry = models_config.entry_for(cfg, base_path)
    if stable is not None:
        entry = dataclasses.replace(entry, versions=(stable,)).with_label(models_config.STABLE, stable)
    if canary is not None:
        entry = entry.with_label(models_config.CANARY, canary)
    return entry


def config_files(cfg: PipelineConfig, base_path: str, stable: Optional[int] = None,
                 canary: Optional[int] = None) -> Dict[str, str]:
    """The ConfigMap's files, each rendered by ``serving.models_config``."""
    files = {MODELS_CONFIG: models_config.render([model_entry(cfg, base_path, stable, canary)]),
             MONITORING_CONFIG: models_config.render_monitoring()}
    if cfg.serving.batching.enabled:
        files[BATCHING_CONFIG] = models_config.render_batching(cfg.serving.batching)
    return files


def model_server_args(cfg: PipelineConfig, rest_port: int, grpc_port: int, labelled: bool) -> List[str]:
    """tensorflow_model_server flags: every file from the ConfigMap, ports from the config.

    ``--allow_version_labels_for_unavailable_models``: at start-up no version
    is loaded yet, and without it TF Serving rejects a models.config whose
    labels point at versions still loading.
    """
    serving = cfg.serving
    args = [f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_config_file={CONFIG_DIR}/{MODELS_CONFIG}",
            f"--model_config_file_poll_wait_seconds={serving.kubernetes.model_config_poll_seconds}",
            f"--monitoring_config_file={CONFIG_DIR}/{MONITORING_CONFIG}",
            f"--enable_batching={'true' if serving.batching.enabled else 'false'}"]
    if serving.batching.enabled:
        args.append(f"--batching_parameters_file={CONFIG_DIR}/{BATCHING_CONFIG}")
    if labelled:
        args.append("--allow_version_labels_for_unavailable_models=true")
    return args


def prometheus_annotations(port: int) -> Dict[str, str]:
    """The de-facto ``prometheus.io/*`` scrape annotations for TF Serving's metrics path."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
            "prometheus.io/path": models_config.PROMETHEUS_PATH}


def _metadata(cfg: PipelineConfig, name: str, annotations: Optional[Mapping[str, str]] = None) -> Manifest:
    meta: Manifest = {"name": name, "namespace": cfg.serving.kubernetes.namespace, "labels": labels(cfg)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _resources(cfg: PipelineConfig) -> Manifest:
    return {section: dict(values) for section, values in cfg.serving.kubernetes.resources.items() if values}


def _probe(path: str, port: Any, period: int, failures: int, initial_delay: int = 0) -> Manifest:
    probe: Manifest = {"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
                       "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def _security_context() -> Manifest:
    """tensorflow_model_server needs no root, no privilege and no capabilities."""
    return {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}}


def status_path(cfg: PipelineConfig) -> str:
    """TF Serving's REST model status URL (liveness: the server answers for the model).

    It answers 200 while a version is still LOADING, so it cannot tell
    whether the pod can serve yet; ``ready_path`` does.
    """
    return f"/v1/models/{cfg.serving.model_name}"


def ready_path(cfg: PipelineConfig, stable: Optional[int] = None) -> str:
    """The model's REST metadata URL (startup and readiness).

    Metadata needs a loaded servable, so it fails until a version (the stable
    one when pinned) is AVAILABLE: no traffic reaches a pod still loading.
    """
    label = f"/labels/{models_config.STABLE}" if stable is not None else ""
    return f"{status_path(cfg)}{label}/metadata"


def configmap(cfg: PipelineConfig, name: str, base_path: str, stable: Optional[int] = None,
              canary: Optional[int] = None) -> Manifest:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(cfg, name),
            "data": config_files(cfg, base_path, stable, canary)}


def tf_serving_manifests(cfg: PipelineConfig, stable: Optional[int] = None,
                         canary: Optional[int] = None) -> List[Manifest]:
    """ConfigMap, Deployment and Service for ``tensorflow/serving:<tf_serving_tag>``."""
    serving, k8s = cfg.serving, cfg.serving.kubernetes
    where = storage(cfg)
    name = app_name(cfg)
    config_name = f"{name}-config"
    config = configmap(cfg, config_name, where.base_path, stable, canary)
    # models.config is polled, so a label move needs no restart; the other files
    # are read once, so a change to them rolls the pods (this checksum changes).
    static = "".join(f"{key}\n{text}" for key, text in sorted(config["data"].items()) if key != MODELS_CONFIG)
    checksum = hashlib.sha256(static.encode("utf-8")).hexdigest()
    volumes: List[Manifest] = [{"name": "tf-serving-config", "configMap": {"name": config_name}}]
    mounts: List[Manifest] = [{"name": "tf-serving-config", "mountPath": CONFIG_DIR, "readOnly": True}]
    env: List[Manifest] = []
    if where.claim:
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": where.claim, "readOnly": True}})
        mount: Manifest = {"name": "models", "mountPath": where.base_path, "readOnly": True}
        if where.sub_path:
            mount["subPath"] = where.sub_path
        mounts.append(mount)
    elif k8s.credentials_secret:
        volumes.append({"name": "google-credentials", "secret": {"secretName": k8s.credentials_secret}})
        mounts.append({"name": "google-credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
        env.append({"name": "GOOGLE_APPLICATION_CREDENTIALS",
                    "value": posixpath.join(CREDENTIALS_DIR, k8s.credentials_key)})
    container: Manifest = {
        "name": TF_SERVING,
        "image": f"{serving.tf_serving_image}:{serving.tf_serving_tag}",
        "command": [MODEL_SERVER],
        "args": model_server_args(cfg, serving.rest_port, serving.grpc_port, stable is not None),
        "ports": [{"name": "grpc", "containerPort": serving.grpc_port, "protocol": "TCP"},
                  {"name": "http", "containerPort": serving.rest_port, "protocol": "TCP"}],
        "resources": _resources(cfg),
        # Loading a model can take minutes: the startup probe covers it, then
        # liveness and readiness answer quickly.
        "startupProbe": _probe(ready_path(cfg, stable), "http", period=5, failures=60),
        "readinessProbe": _probe(ready_path(cfg, stable), "http", period=10, failures=3),
        "livenessProbe": _probe(status_path(cfg), "http", period=20, failures=3),
        "volumeMounts": mounts,
        "securityContext": _security_context(),
    }
    if env:
        container["env"] = env
    pod_spec: Manifest = {"containers": [container], "volumes": volumes}
    if k8s.service_account:
        pod_spec["serviceAccountName"] = k8s.service_account
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(cfg, name),
        "spec": {
            "replicas": k8s.replicas,
            "selector": {"matchLabels": selector(cfg)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(cfg),
                             "annotations": {**prometheus_annotations(serving.rest_port),
                                             "checksum/tf-serving-config": checksum}},
                "spec": pod_spec,
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _metadata(cfg, name, prometheus_annotations(serving.rest_port)),
        "spec": {"type": "ClusterIP", "selector": selector(cfg),
                 "ports": [{"name": "grpc", "port": serving.grpc_port, "targetPort": "grpc",
                            "protocol": "TCP", "appProtocol": "grpc"},
                           {"name": "http", "port": serving.rest_port, "targetPort": "http",
                            "protocol": "TCP", "appProtocol": "http"}]},
    }
    return [config, deployment, service]


def kserve_manifests(cfg: PipelineConfig, stable: Optional[int] = None,
                     canary: Optional[int] = None) -> List[Manifest]:
    """ConfigMap and InferenceService: KServe downloads STORAGE_URI, our flags serve it.

    A custom predictor container (not KServe's ``tensorflow`` runtime, which
    passes only --model_name/--model_base_path) keeps version labels, batching
    and monitoring identical to the Deployment. Knative exposes one port per
    container, so only REST is served (as ``http1``); use the Deployment for gRPC.
    """
    serving, k8s = cfg.serving, cfg.serving.kubernetes
    uri = storage(cfg).uri
    name = resource_name(cfg)
    config_name = f"{name}-kserve-config"
    config = configmap(cfg, config_name, KSERVE_MODEL_DIR, stable, canary)
    container: Manifest = {
        "name": KSERVE_CONTAINER,
        "image": f"{serving.tf_serving_image}:{serving.tf_serving_tag}",
        "command": [MODEL_SERVER],
        "args": model_server_args(cfg, serving.rest_port, serving.grpc_port, stable is not None),
        "env": [{"name": "STORAGE_URI", "value": uri}],
        "ports": [{"name": "http1", "containerPort": serving.rest_port, "protocol": "TCP"}],
        "resources": _resources(cfg),
        "readinessProbe": _probe(ready_path(cfg, stable), serving.rest_port, period=10, failures=3),
        "livenessProbe": _probe(status_path(cfg), serving.rest_port, period=20, failures=6,
                                initial_delay=60),
        "volumeMounts": [{"name": "tf-serving-config", "mountPath": CONFIG_DIR, "readOnly": True}],
        "securityContext": _security_context(),
    }
    predictor: Manifest = {
        "minReplicas": k8s.replicas,
        "maxReplicas": k8s.max_replicas,
        "containers": [container],
        "volumes": [{"name": "tf-serving-config", "configMap": {"name": config_name}}],
    }
    if k8s.service_account:
        predictor["serviceAccountName"] = k8s.service_account
    inference_service = {
        "apiVersion": KSERVE_API_VERSION, "kind": "InferenceService",
        "metadata": _metadata(cfg, name, prometheus_annotations(serving.rest_port)),
        "spec": {"predictor": predictor},
    }
    return [config, inference_service]


def render(cfg: PipelineConfig, stable: Optional[int] = None,
           canary: Optional[int] = None) -> Dict[str, List[Manifest]]:
    """Both alternatives, by name (``tf-serving``, ``kserve``)."""
    for flag, version in (("--stable", stable), ("--canary", canary)):
        if version is not None and version < 1:
            raise ConfigError(f"{flag}: expected a model version >= 1, got {version}")
    if stable is not None and stable == canary:
        raise ConfigError(f"--canary: expected a version other than the stable one, got {canary}")
    return {TF_SERVING: tf_serving_manifests(cfg, stable, canary),
            KSERVE: kserve_manifests(cfg, stable, canary)}


def monitoring_manifests(cfg: PipelineConfig) -> List[Manifest]:
    """The ``PrometheusRule`` for the served model and the canary's Argo Rollouts
    ``AnalysisTemplate`` (``serving.k8s.analysis``); both apply with either alternative."""
    metadata = _metadata(cfg, f"{resource_name(cfg)}-alerts")
    metadata["labels"]["app.kubernetes.io/component"] = "alerting-rules"
    template = _metadata(cfg, f"{resource_name(cfg)}-canary-analysis")
    template["labels"]["app.kubernetes.io/component"] = "canary-analysis"
    return [rules.prometheus_rule(cfg, metadata), analysis.analysis_template(cfg, template)]
