"""Typed, validated dataset configuration: the one source of truth for a run.

A dataset is a YAML file (``configs/<name>.yaml``), not code. ``load_config``
turns it into a frozen ``PipelineConfig``; every mistake (unknown key, wrong
type, missing file, impossible value) fails here, before any component runs,
with a message naming the file, the dotted key and what was expected.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import json
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Literal, Mapping, Optional, Sequence, Tuple

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI_DEFAULT = "tfx:chicago_taxi"  # data.path value meaning "the CSV inside tfx"

FeatureKind = Literal["numeric", "categorical", "bucketized", "timestamp"]
FeatureDtype = Literal["float", "int", "string"]


class ConfigError(ValueError):
    """A configuration value is wrong; the message names file, key and expectation."""


@dataclass(frozen=True)
class FeatureConfig:
    """One raw input column and how Transform turns it into model inputs."""
    name: str
    kind: FeatureKind
    dtype: FeatureDtype
    # numeric: log1p before the z-score, for heavy-tailed amounts (fares, miles).
    log1p: bool = False
    # categorical: keep the top_k most frequent values seen at least
    # frequency_threshold times; everything else hashes into oov_buckets.
    top_k: int = 1000
    frequency_threshold: int = 5
    oov_buckets: int = 1
    # categorical ints in 0..max_value (hours, area codes): used as ids directly,
    # with no vocabulary to compute; out-of-range and missing values get their own id.
    max_value: int = 0
    # bucketized: quantile buckets over the training data.
    buckets: int = 10
    # timestamp: which calendar parts to derive from epoch seconds.
    parts: Tuple[Literal["hour", "weekday", "month"], ...] = ("hour", "weekday")


@dataclass(frozen=True)
class LabelConfig:
    """How the training label is derived from raw columns.

    ``ratio_threshold``: label = column > fraction * denominator (taxi's big
    tipper). ``column``: an integer 0..n-1 column used as is. ``classes``: a
    string column mapped to class ids, optionally folded to binary.
    """
    name: str
    kind: Literal["ratio_threshold", "column", "classes"]
    column: str
    denominator: Optional[str] = None
    fraction: float = 0.0
    classes: Tuple[str, ...] = ()
    positive_classes: Tuple[str, ...] = ()  # non-empty: fold classes to binary


@dataclass(frozen=True)
class DataConfig:
    """Where the data lives and how it is split (hash buckets per split)."""
    path: str = TAXI_DEFAULT
    format: Literal["csv"] = "csv"
    splits: Mapping[str, int] = field(default_factory=lambda: {"train": 8, "eval": 2})
    excluded_columns: Tuple[str, ...] = ()
    seed: int = 42


@dataclass(frozen=True)
class TunerConfig:
    """KerasTuner budget; ``enabled: false`` reuses the last best hyperparameters."""
    enabled: bool = True
    max_trials: int = 3
    trial_steps: int = 300
    learning_rates: Tuple[float, ...] = (0.003, 0.01)
    hidden_units: Tuple[int, ...] = (64, 128)
    num_layers: Tuple[int, ...] = (2, 3)


@dataclass(frozen=True)
class TrainerConfig:
    """Training budget and default hyperparameters (used when not tuned)."""
    train_steps: int = 2000
    eval_steps: int = 50
    batch_size: int = 128
    learning_rate: float = 0.003
    hidden_units: int = 128
    num_layers: int = 2
    embedding_dim: int = 8
    dropout: float = 0.1
    early_stopping_patience: int = 3
    seed: int = 42


@dataclass(frozen=True)
class EvaluationConfig:
    """TFMA metrics gate: absolute floors and no regression vs the last blessed model."""
    min_auc: float = 0.5
    min_accuracy: float = 0.0
    max_auc_regression: float = 0.01
    slices: Tuple[Tuple[str, ...], ...] = ()
    baseline_features: Tuple[str, ...] = ()  # candidates for the one-feature rule


@dataclass(frozen=True)
class BatchingConfig:
    """Server-side batching, with TF Serving's own parameter names and meaning.

    One definition feeds both the local gateway and real TF Serving's
    ``--batching_parameters_file`` (rendered by ``serving.models_config``).
    """
    enabled: bool = True
    max_batch_size: int = 128
    batch_timeout_micros: int = 1000
    max_enqueued_batches: int = 100
    num_batch_threads: int = 2


@dataclass(frozen=True)
class KubernetesConfig:
    """Real TF Serving in a cluster: what ``python -m serving.k8s`` renders.

    ``storage_uri`` is the model base path as the cluster sees it (the pushed
    ``<push_dir>/<model_name>/<version>/`` tree, copied or pushed there):
    ``gs://bucket/path`` (TF Serving and KServe read it directly) or
    ``pvc://<claim>/<path in the claim>`` (KServe's own notation). Empty means
    ``<push_dir>/<model_name>`` when ``serving.push_dir`` is a gs:// URI.
    """
    namespace: str = "default"
    replicas: int = 2  # Deployment replicas; KServe minReplicas
    max_replicas: int = 4  # KServe maxReplicas (request-based autoscaling)
    storage_uri: str = ""
    # gs:// access: a Workload Identity service account, or a Secret holding a
    # service-account key file (mounted, GOOGLE_APPLICATION_CREDENTIALS points to it).
    service_account: str = ""
    credentials_secret: str = ""
    credentials_key: str = "key.json"
    # TF Serving re-reads models.config this often: label moves need no restart.
    model_config_poll_seconds: int = 30
    # Kubernetes quantities as strings, e.g. {requests: {cpu: "1", memory: 2Gi}}.
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: {
        "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}})


@dataclass(frozen=True)
class ServingConfig:
    """Where blessed models go, how they are validated before the push, and served."""
    model_name: str = "model"
    push_dir: str = "runs/serving"
    infra_validation: Literal["local", "docker", "kubernetes"] = "local"
    canary_requests: int = 20
    latency_budget_ms: float = 500.0
    tf_serving_image: str = "tensorflow/serving"
    tf_serving_tag: str = "2.16.1"
    rest_port: int = 8501
    grpc_port: int = 8500
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    # Gateway limits: larger bodies get 413, larger batches 400.
    max_request_bytes: int = 1_048_576
    max_batch_rows: int = 1024
    # Rollout changes (canary, shadow, promote, rollback) need this token.
    admin_token_env: str = "SERVING_ADMIN_TOKEN"
    # Served traffic, logged as tf.Example TFRecords per time window (a data span).
    request_log_dir: str = "runs/request_log"
    request_log_window_seconds: int = 3600
    # Raw features never written to the request log as they are: dropped or hashed.
    sensitive_features: Mapping[str, Literal["drop", "hash"]] = field(default_factory=dict)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    # TFLite + TF.js exports beside the SavedModel (trainer/edge_export.py); turn off
    # for a dataset whose feature kinds the edge runtimes cannot run.
    edge_exports: bool = True


@dataclass(frozen=True)
class BeamConfig:
    """Beam runner and its arguments; the local runner always uses DirectRunner."""
    runner: Literal["direct", "dataflow", "flink", "spark"] = "direct"
    direct_running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = "in_memory"
    direct_num_workers: int = 1
    extra_args: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class KubeflowConfig:
    """What the compiled Kubeflow Pipelines v2 spec needs."""
    image: str = "ghcr.io/example/tfx-pipeline:latest"
    pipeline_root: str = "gs://example-bucket/tfx"
    output_file: str = "build/kubeflow/pipeline.json"


@dataclass(frozen=True)
class PipelineConfig:
    """The whole run, as validated from one dataset file."""
    name: str
    schema: str
    label: LabelConfig
    features: Tuple[FeatureConfig, ...]
    data: DataConfig = field(default_factory=DataConfig)
    tuner: TunerConfig = field(default_factory=TunerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    beam: BeamConfig = field(default_factory=BeamConfig)
    kubeflow: KubeflowConfig = field(default_factory=KubeflowConfig)
    run_dir: str = "runs"
    source_file: str = ""

    @property
    def pipeline_name(self) -> str:
        """Kubeflow v2 accepts only [a-z0-9-] names; the same name is used locally."""
        return f"{self.name}-pipeline"

    @property
    def num_classes(self) -> int:
        """2 for binary labels, len(classes) for multi-class ones."""
        if self.label.kind == "classes" and not self.label.positive_classes:
            return len(self.label.classes)
        return 2

    @property
    def data_path(self) -> str:
        """The data directory, resolving the taxi default inside the tfx package."""
        if self.data.path == TAXI_DEFAULT:
            return taxi_data_dir()
        return resolve_path(self.data.path)

    @property
    def schema_path(self) -> str:
        return resolve_path(self.schema)

    @property
    def push_dir(self) -> str:
        """``<push_dir>/<model_name>``: TF Serving's model base path."""
        return os.path.join(resolve_path(self.serving.push_dir), self.serving.model_name)

    def custom_config(self) -> Dict[str, Any]:
        """The JSON-safe slice of the config that Transform/Tuner/Trainer code needs."""
        return {"pipeline_config": to_dict(self)}


def taxi_data_dir() -> str:
    """The directory of the Chicago taxi CSV that ships inside the tfx package."""
    import tfx  # imported lazily: config validation should not need TFX

    return os.path.join(os.path.dirname(tfx.__file__), "examples",
                        "chicago_taxi_pipeline", "data", "simple")


def resolve_path(path: str) -> str:
    """A config path resolved against the repo root; URIs (gs://...) unchanged."""
    if "://" in path:
        return path
    return os.path.normpath(os.path.join(REPO_ROOT, os.path.expanduser(path)))


# --------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------

def load_config(path: str, overrides: Sequence[str] = ()) -> PipelineConfig:
    """Reads, overrides (``a.b=value``) and validates a dataset config file."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    for override in overrides:
        _apply_override(raw, override, path)
    raw["source_file"] = os.path.abspath(path)
    config = _build(PipelineConfig, raw, path, "")
    _check_semantics(config, path)
    return config


def config_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> PipelineConfig:
    """Validates an already-parsed config (used by components that receive it as JSON)."""
    config = _build(PipelineConfig, dict(raw), source, "")
    _check_semantics(config, source)
    return config


def to_dict(config: Any) -> Dict[str, Any]:
    """A JSON-safe dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _apply_override(raw: Dict[str, Any], override: str, path: str) -> None:
    if "=" not in override:
        raise ConfigError(f"{path}: override {override!r}: expected KEY=VALUE, e.g. trainer.train_steps=200")
    key, value = override.split("=", 1)
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: override {key!r}: {part!r} is not a section")
    node[parts[-1]] = yaml.safe_load(value)


def _build(cls: type, raw: Any, path: str, prefix: str) -> Any:
    where = prefix or "<top level>"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: key '{where}': expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"{path}: key '{key}': unknown key; expected one of {sorted(fields)}")
    values = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{path}: key '{key}': required but missing")
            continue
        values[name] = _convert(hints[name], raw[name], path, key)
    return cls(**values)


def _convert(hint: Any, value: Any, path: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, key)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, path, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: key '{key}': expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: key '{key}': expected a list, got {value!r}")
        item = args[0]
        return tuple(_convert(item, v, path, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: key '{key}': expected a mapping, got {value!r}")
        vt = args[1]
        return {str(k): _convert(vt, v, path, f"{key}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: key '{key}': expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: key '{key}': expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: key '{key}': expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: key '{key}': expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint} for {key}")


def _check_semantics(cfg: PipelineConfig, path: str) -> None:
    """Cross-field rules that types alone cannot express."""
    def fail(key: str, expected: str, got: Any) -> None:
        raise ConfigError(f"{path}: key '{key}': expected {expected}, got {got!r}")

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,100}", cfg.name):
        fail("name", "lower-case letters, digits and '-' (Kubeflow pipeline names)", cfg.name)
    names = [f.name for f in cfg.features]
    if not names:
        fail("features", "at least one feature", [])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        fail("features", "unique feature names", dupes)
    if cfg.label.column in names:
        fail("label.column", "a column that is not also a feature (label leakage)", cfg.label.column)
    for i, f in enumerate(cfg.features):
        if f.name in cfg.data.excluded_columns:
            fail(f"features[{i}].name", "a column not listed in data.excluded_columns", f.name)
        if f.kind in ("numeric", "bucketized", "timestamp") and f.dtype == "string":
            fail(f"features[{i}].dtype", f"int or float for a {f.kind} feature", f.dtype)
        if f.buckets < 2:
            fail(f"features[{i}].buckets", "at least 2", f.buckets)
        if f.max_value and (f.kind != "categorical" or f.dtype != "int"):
            fail(f"features[{i}].max_value", "only on categorical int features", f.max_value)
        if f.top_k < 1 or f.oov_buckets < 1:
            fail(f"features[{i}].top_k/oov_buckets", "positive integers", (f.top_k, f.oov_buckets))
    if cfg.label.kind == "ratio_threshold" and not cfg.label.denominator:
        fail("label.denominator", "a column name for a ratio_threshold label", None)
    if cfg.label.kind == "classes" and len(cfg.label.classes) < 2:
        fail("label.classes", "at least two class names", list(cfg.label.classes))
    unknown_pos = set(cfg.label.positive_classes) - set(cfg.label.classes)
    if unknown_pos:
        fail("label.positive_classes", f"names from label.classes {list(cfg.label.classes)}",
             sorted(unknown_pos))
    if set(cfg.data.splits) != {"train", "eval"}:
        fail("data.splits", "exactly the splits 'train' and 'eval'", sorted(cfg.data.splits))
    for split, buckets in cfg.data.splits.items():
        if buckets < 1:
            fail(f"data.splits.{split}", "a positive number of hash buckets", buckets)
    for key in ("train_steps", "eval_steps", "batch_size", "hidden_units", "num_layers",
                "embedding_dim"):
        if getattr(cfg.trainer, key) < 1:
            fail(f"trainer.{key}", "a positive integer", getattr(cfg.trainer, key))
    if not 0 < cfg.trainer.learning_rate < 1:
        fail("trainer.learning_rate", "a number between 0 and 1", cfg.trainer.learning_rate)
    if not 0 <= cfg.trainer.dropout < 1:
        fail("trainer.dropout", "a number in [0, 1)", cfg.trainer.dropout)
    if cfg.tuner.max_trials < 1 or cfg.tuner.trial_steps < 1:
        fail("tuner.max_trials/trial_steps", "positive integers",
             (cfg.tuner.max_trials, cfg.tuner.trial_steps))
    for i, s in enumerate(cfg.evaluation.slices):
        for col in s:
            if col not in names:
                fail(f"evaluation.slices[{i}]", f"feature names from {names}", col)
    for col in cfg.evaluation.baseline_features:
        if col not in names:
            fail("evaluation.baseline_features", f"feature names from {names}", col)
    for key in ("min_auc", "min_accuracy"):
        v = getattr(cfg.evaluation, key)
        if not 0 <= v <= 1:
            fail(f"evaluation.{key}", "a number in [0, 1]", v)
    batching = cfg.serving.batching
    if batching.max_batch_size < 1 or batching.num_batch_threads < 1 or batching.max_enqueued_batches < 1:
        fail("serving.batching", "max_batch_size, num_batch_threads and max_enqueued_batches >= 1",
             (batching.max_batch_size, batching.num_batch_threads, batching.max_enqueued_batches))
    if batching.batch_timeout_micros < 0:
        fail("serving.batching.batch_timeout_micros", "a non-negative integer", batching.batch_timeout_micros)
    if cfg.serving.max_request_bytes < 1024 or cfg.serving.max_batch_rows < 1:
        fail("serving.max_request_bytes/max_batch_rows", "at least 1024 bytes and 1 row",
             (cfg.serving.max_request_bytes, cfg.serving.max_batch_rows))
    if cfg.serving.request_log_window_seconds < 1:
        fail("serving.request_log_window_seconds", "a positive number of seconds", cfg.serving.request_log_window_seconds)
    known = {f.name for f in cfg.features}
    for name in cfg.serving.sensitive_features:
        if name not in known:
            fail(f"serving.sensitive_features.{name}", f"one of the features {sorted(known)}", name)
    for key, port in (("serving.rest_port", cfg.serving.rest_port), ("serving.grpc_port", cfg.serving.grpc_port)):
        if not 1 <= port <= 65535:
            fail(key, "a TCP port 1..65535", port)
    if not cfg.serving.model_name.replace("_", "").replace("-", "").isalnum():
        fail("serving.model_name", "letters, digits, '-' and '_' only", cfg.serving.model_name)
    _check_kubernetes(cfg.serving.kubernetes, fail)
    if cfg.data.path != TAXI_DEFAULT and "://" not in cfg.data.path and not os.path.isdir(cfg.data_path):
        fail("data.path", f"an existing directory of {cfg.data.format.upper()} files "
             f"(resolved to {cfg.data_path})", cfg.data.path)
    if not os.path.isfile(cfg.schema_path):
        fail("schema", f"an existing schema.pbtxt (resolved to {cfg.schema_path})", cfg.schema)


# Kubernetes names and quantities (the API server's own grammar).
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_QUANTITY = re.compile(r"([+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))((?:[KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?")
_QUANTITY_SCALE = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                   "P": 1e15, "E": 1e18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40,
                   "Pi": 2 ** 50, "Ei": 2 ** 60}
_RESOURCE_NAME = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
PVC_URI = re.compile(r"pvc://(?P<claim>[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)(?P<path>(/[^/]+)*)/?")


def parse_quantity(text: str) -> Optional[float]:
    """A Kubernetes quantity ("500m", "2Gi", "1e3") as a number; None if malformed."""
    match = _QUANTITY.fullmatch(text)
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    if suffix not in _QUANTITY_SCALE:  # decimal exponent, e.g. 1e3
        return float(number + suffix)
    return float(number) * _QUANTITY_SCALE[suffix]


def _check_kubernetes(k8s: KubernetesConfig, fail: Any) -> None:
    """serving.kubernetes: names the API server accepts, positive sizes, sane resources."""
    prefix = "serving.kubernetes"
    if not DNS_LABEL.fullmatch(k8s.namespace):
        fail(f"{prefix}.namespace", "a DNS-1123 label (lower-case letters, digits, '-', max 63)", k8s.namespace)
    for key in ("service_account", "credentials_secret"):
        value = getattr(k8s, key)
        if value and not DNS_SUBDOMAIN.fullmatch(value):
            fail(f"{prefix}.{key}", "empty or a DNS-1123 subdomain (lower-case letters, digits, '-', '.')", value)
    if not re.fullmatch(r"[-._A-Za-z0-9]+", k8s.credentials_key):
        fail(f"{prefix}.credentials_key", "a Secret key (letters, digits, '-', '_', '.')", k8s.credentials_key)
    if k8s.replicas < 1:
        fail(f"{prefix}.replicas", "a positive integer", k8s.replicas)
    if k8s.max_replicas < k8s.replicas:
        fail(f"{prefix}.max_replicas", f"at least serving.kubernetes.replicas ({k8s.replicas})", k8s.max_replicas)
    if k8s.model_config_poll_seconds < 1:
        fail(f"{prefix}.model_config_poll_seconds", "a positive number of seconds", k8s.model_config_poll_seconds)
    uri = k8s.storage_uri
    if uri and not (re.fullmatch(r"gs://[a-z0-9][-_.a-z0-9]*[a-z0-9](/[^/]+)*/?", uri) or PVC_URI.fullmatch(uri)):
        fail(f"{prefix}.storage_uri", "empty, gs://<bucket>/<path> or pvc://<claim>/<path>", uri)
    for section, quantities in k8s.resources.items():
        if section not in ("requests", "limits"):
            fail(f"{prefix}.resources.{section}", "'requests' or 'limits'", section)
        for name, quantity in quantities.items():
            key = f"{prefix}.resources.{section}.{name}"
            if not _RESOURCE_NAME.fullmatch(name):
                fail(key, "a resource name such as cpu, memory or nvidia.com/gpu", name)
            if parse_quantity(quantity) is None:
                fail(key, "a Kubernetes quantity such as '500m', '2' or '4Gi'", quantity)
    requests, limits = k8s.resources.get("requests", {}), k8s.resources.get("limits", {})
    for name in sorted(set(requests) & set(limits)):
        if parse_quantity(requests[name]) > parse_quantity(limits[name]):
            fail(f"{prefix}.resources.requests.{name}",
                 f"at most the limit {limits[name]!r} (Kubernetes rejects requests above limits)", requests[name])
