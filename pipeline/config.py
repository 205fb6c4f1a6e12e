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
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI_DEFAULT = "tfx:chicago_taxi"  # data.path value meaning "the CSV inside tfx"

FeatureKind = Literal["numeric", "categorical", "bucketized", "timestamp",
                      "text", "multi_categorical", "label_prior"]
FeatureDtype = Literal["float", "int", "string"]


class ConfigError(ValueError):
    """A configuration value is wrong; the message names file, key and expectation."""


@dataclass(frozen=True)
class FeatureConfig:
    """One model feature: a raw input column and how Transform turns it into model inputs."""
    name: str
    kind: FeatureKind
    dtype: FeatureDtype
    # The raw column read (default: ``name``); lets two features derive from one
    # column, e.g. a speaker vocabulary and the speaker's label prior.
    source: str = ""
    # Leaks the label (e.g. counts that include the row's own label): used only
    # by the audit variant (top-level ``leaky: true``), never by the honest model.
    leaky: bool = False
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
    # text: lower-cased, punctuation stripped, split on whitespace; a vocabulary of
    # the top_k tokens and word n-grams (sizes in ngrams) seen frequency_threshold
    # times; the first max_tokens ids per row, 0 = padding.
    ngrams: Tuple[int, ...] = (1,)
    max_tokens: int = 64
    # multi_categorical: values split on separator (also inside one value, so a
    # serving request may send "a,b"); the first max_tokens ids, 0 = padding.
    separator: str = ","
    # label_prior: the label distribution of this column's value (e.g. a speaker's
    # record) from the training split only; training rows (recognised by the hash
    # of fold_key) see out-of-fold counts over ``folds`` folds; smoothed towards the
    # overall distribution with ``smoothing`` pseudo-counts.
    fold_key: str = ""
    folds: int = 5
    smoothing: float = 10.0

    @property
    def column(self) -> str:
        """The raw column this feature reads."""
        return self.source or self.name


@dataclass(frozen=True)
class ColumnConfig:
    """One column of a headerless file (``data.format: tsv``), in file order."""
    name: str
    dtype: FeatureDtype
    # non-empty: the field holds several values joined by this separator
    separator: str = ""


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
    positive_classes: Tuple[str, ...] = ()  # the classes that count as positive in binary figures
    # With positive_classes: train on the binary fold (true), or on all classes
    # and fold only for reporting binary accuracy (false).
    fold_to_binary: bool = True

    @property
    def is_binary_fold(self) -> bool:
        return self.kind == "classes" and bool(self.positive_classes) and self.fold_to_binary

    @property
    def positive_class_ids(self) -> List[int]:
        """Class ids of ``positive_classes`` (the binary fold of a multi-class label)."""
        return [self.classes.index(c) for c in self.positive_classes]


@dataclass(frozen=True)
class DataConfig:
    """Where the data lives and how it is split.

    ``csv``: files with a header, split by hash buckets (``splits``). ``tsv``:
    headerless tab-separated files whose columns are named by ``columns``, with
    predefined splits from ``files`` (train, eval, and test only when given).
    """
    path: str = TAXI_DEFAULT
    # an environment variable that, when set, replaces ``path`` (data that must
    # stay outside the repository, e.g. under a research-only licence)
    path_env: str = ""
    format: Literal["csv", "tsv"] = "csv"
    splits: Mapping[str, int] = field(default_factory=lambda: {"train": 8, "eval": 2})
    files: Mapping[str, str] = field(default_factory=dict)
    columns: Tuple[ColumnConfig, ...] = ()
    excluded_columns: Tuple[str, ...] = ()
    seed: int = 42


@dataclass(frozen=True)
class ClaimNeighboursConfig:
    """The claim-neighbour record (``components.claim_neighbours``): a string column
    derived from ``text`` by the ClaimNeighbours component, which a feature reads.

    Each row gets the labels of its ``k`` nearest training statements (sentence-
    encoder cosine), each repeated in proportion to its softmax weight
    (``temperature``) out of ``repeats``, and a token for the best similarity;
    training rows see only statements of other folds (``folds``, by text hash).
    """
    column: str = ""          # the derived column; empty: no record
    text: str = ""            # the raw text column encoded
    k: int = 10
    temperature: float = 20.0
    repeats: int = 10
    folds: int = 5


@dataclass(frozen=True)
class TunerConfig:
    """KerasTuner budget; ``enabled: false`` reuses the last best hyperparameters,
    or, with ``reuse_last: false``, trains with the trainer section's own values
    (a config whose hyperparameters were chosen outside the pipeline)."""
    enabled: bool = True
    reuse_last: bool = True
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
    # Share of a bag's ids (text tokens, multi-valued categories) each training row
    # forgets (word dropout; trainer.model.BagMean). Inference keeps every id.
    token_dropout: float = 0.0
    # Momentum of an exponential moving average of the weights that replaces them
    # when training ends (0: off; e.g. 0.99 averages about the last 100 steps).
    weight_averaging: float = 0.0
    # Members (seeds seed, seed + 1, ...) trained and fused into one model whose
    # logits are their mean, with a single member's graph (trainer.ensemble).
    ensemble_size: int = 1
    # Epochs without a better eval loss before training stops and the best epoch's
    # weights return. 0: no early stopping, train_steps exactly; then the eval split
    # picks nothing (use it when the eval split is the one the figures are reported on).
    early_stopping_patience: int = 3
    seed: int = 42
    # Train for requests that carry only some features (a browser page has no
    # speaker metadata): this share of training rows, drawn with ``seed``, sees
    # every feature outside feature_dropout_keep as missing.
    feature_dropout_share: float = 0.0
    feature_dropout_keep: Tuple[str, ...] = ()
    # Multi-class labels with label.positive_classes: add this weight x the binary
    # cross-entropy of the folded probability to the loss (trainer.model.FoldedCrossEntropy).
    fold_loss_weight: float = 0.0


@dataclass(frozen=True)
class EvaluationConfig:
    """TFMA metrics gate: absolute floors and no regression vs the last blessed model."""
    min_auc: float = 0.5
    min_accuracy: float = 0.0
    max_auc_regression: float = 0.01
    # feature names, or extra slice keys a feature kind emits (label_prior: <name>_seen)
    slices: Tuple[Tuple[str, ...], ...] = ()
    baseline_features: Tuple[str, ...] = ()  # candidates for the one-feature rule
    # Error analysis: false-positive/negative rates per value of these features.
    fairness_features: Tuple[str, ...] = ()
    # Also score the model with only these features present (e.g. the text alone).
    reduced_features: Tuple[str, ...] = ()
    # A string feature for the TF-IDF logistic-regression baseline ("" = none).
    text_baseline_feature: str = ""


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
    claim_neighbours: ClaimNeighboursConfig = field(default_factory=ClaimNeighboursConfig)
    tuner: TunerConfig = field(default_factory=TunerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    beam: BeamConfig = field(default_factory=BeamConfig)
    kubeflow: KubeflowConfig = field(default_factory=KubeflowConfig)
    run_dir: str = "runs"
    # The leakage-audit variant: also use the features marked ``leaky: true``.
    leaky: bool = False
    source_file: str = ""

    @property
    def pipeline_name(self) -> str:
        """Kubeflow v2 accepts only [a-z0-9-] names; the same name is used locally."""
        return f"{self.name}-pipeline"

    @property
    def num_classes(self) -> int:
        """2 for binary labels, len(classes) for multi-class ones."""
        return len(self.class_names)

    @property
    def class_names(self) -> List[str]:
        """Display names of the model's output classes, in output order."""
        if self.label.kind == "classes" and not self.label.is_binary_fold:
            return list(self.label.classes)
        return [f"not {self.label.name}", self.label.name]

    @property
    def data_path(self) -> str:
        """The data directory: ``$<path_env>`` when set, the taxi default inside
        the tfx package, else ``path`` resolved against the repo."""
        if self.data.path_env and os.environ.get(self.data.path_env):
            return resolve_path(os.environ[self.data.path_env])
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

    def transform_custom_config(self) -> Dict[str, Any]:
        """The config as Transform sees it: only what its graph depends on (data,
        label, features). Training, evaluation and serving settings are reset, so
        changing them keeps Transform's cached execution (minutes on real data)."""
        essential = dataclasses.replace(
            self, tuner=TunerConfig(), trainer=TrainerConfig(), evaluation=EvaluationConfig(),
            serving=ServingConfig(), beam=BeamConfig(), kubeflow=KubeflowConfig(), run_dir="runs",
            source_file="")
        return {"pipeline_config": to_dict(essential)}


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

def load_config(path: str, overrides: Sequence[str] = (), require_data: bool = True) -> PipelineConfig:
    """Reads, overrides (``a.b=value``) and validates a dataset config file.

    ``require_data=False`` is for callers that never read the training data
    (the serving gateway, manifests, the extension bundler): a serving host
    has the model repository, not the dataset.

    A file may start from another one (``extends: liar.yaml``, relative to its
    own directory): mappings are merged key by key, anything else is replaced,
    so a variant (binary labels, the leaky audit) is a few lines, not a copy.
    """
    raw = _read_yaml(path, seen=())
    for override in overrides:
        _apply_override(raw, override, path)
    raw["source_file"] = os.path.abspath(path)
    config = _build(PipelineConfig, raw, path, "")
    _check_semantics(config, path, require_data)
    return _without_inactive_features(config)


def _read_yaml(path: str, seen: Tuple[str, ...]) -> Dict[str, Any]:
    if not os.path.isfile(path):
        where = f" (extended by {seen[-1]})" if seen else ""
        raise ConfigError(f"{path}: config file not found{where}")
    if os.path.abspath(path) in seen:
        raise ConfigError(f"{path}: key 'extends': a cycle through {list(seen)}")
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: key 'extends': expected a config file name, got {parent!r}")
    base = _read_yaml(os.path.join(os.path.dirname(os.path.abspath(path)), parent),
                      seen + (os.path.abspath(path),))
    return _merge(base, raw)


def _merge(base: Dict[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _without_inactive_features(config: PipelineConfig) -> PipelineConfig:
    """The honest model never sees features marked ``leaky`` (unless ``leaky: true``)."""
    if config.leaky:
        return config
    return dataclasses.replace(config, features=tuple(f for f in config.features if not f.leaky))


def config_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> PipelineConfig:
    """Validates an already-parsed config (used by components that receive it as JSON)."""
    config = _build(PipelineConfig, dict(raw), source, "")
    _check_semantics(config, source)
    return _without_inactive_features(config)


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


def _repeated(names: Sequence[str]) -> List[str]:
    return sorted({n for n in names if names.count(n) > 1})


def _check_semantics(cfg: PipelineConfig, path: str, require_data: bool = True) -> None:
    """Cross-field rules that types alone cannot express."""
    def fail(key: str, expected: str, got: Any) -> None:
        raise ConfigError(f"{path}: key '{key}': expected {expected}, got {got!r}")

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,100}", cfg.name):
        fail("name", "lower-case letters, digits and '-' (Kubeflow pipeline names)", cfg.name)
    names = [f.name for f in cfg.features]
    if not names:
        fail("features", "at least one feature", [])
    repeated = _repeated(names)
    if repeated:
        fail("features", "unique feature names", repeated)
    if cfg.label.column in names or cfg.label.column in {f.column for f in cfg.features}:
        fail("label.column", "a column that is not also a feature (label leakage)", cfg.label.column)
    for i, f in enumerate(cfg.features):
        _check_feature(cfg, f, f"features[{i}]", names, fail)
    if cfg.label.kind == "ratio_threshold" and not cfg.label.denominator:
        fail("label.denominator", "a column name for a ratio_threshold label", None)
    if cfg.label.kind == "classes" and len(cfg.label.classes) < 2:
        fail("label.classes", "at least two class names", list(cfg.label.classes))
    unknown_pos = set(cfg.label.positive_classes) - set(cfg.label.classes)
    if unknown_pos:
        fail("label.positive_classes", f"names from label.classes {list(cfg.label.classes)}",
             sorted(unknown_pos))
    _check_data(cfg, fail, require_data)
    for key in ("train_steps", "eval_steps", "batch_size", "hidden_units", "num_layers",
                "embedding_dim", "ensemble_size"):
        if getattr(cfg.trainer, key) < 1:
            fail(f"trainer.{key}", "a positive integer", getattr(cfg.trainer, key))
    if not 0 < cfg.trainer.learning_rate < 1:
        fail("trainer.learning_rate", "a number between 0 and 1", cfg.trainer.learning_rate)
    for key in ("dropout", "token_dropout", "weight_averaging"):
        if not 0 <= getattr(cfg.trainer, key) < 1:
            fail(f"trainer.{key}", "a number in [0, 1)", getattr(cfg.trainer, key))
    # Keras starts the average at the initial weights, without bias correction.
    if cfg.trainer.weight_averaging ** cfg.trainer.train_steps > 0.01:
        fail("trainer.weight_averaging", "a momentum whose average forgets the initial weights "
             f"within trainer.train_steps ({cfg.trainer.train_steps}): momentum^train_steps <= 0.01",
             cfg.trainer.weight_averaging)
    if cfg.trainer.fold_loss_weight < 0:
        fail("trainer.fold_loss_weight", "a weight >= 0", cfg.trainer.fold_loss_weight)
    if cfg.trainer.fold_loss_weight and (cfg.num_classes < 3 or not cfg.label.positive_classes):
        fail("trainer.fold_loss_weight", "0 unless the model trains on several classes "
             "with label.positive_classes and label.fold_to_binary: false", cfg.trainer.fold_loss_weight)
    if cfg.trainer.early_stopping_patience < 0:
        fail("trainer.early_stopping_patience", "0 (off) or a positive number of epochs",
             cfg.trainer.early_stopping_patience)
    if cfg.tuner.max_trials < 1 or cfg.tuner.trial_steps < 1:
        fail("tuner.max_trials/trial_steps", "positive integers",
             (cfg.tuner.max_trials, cfg.tuner.trial_steps))
    slice_keys = names + [key for f in cfg.features for key in extra_slice_keys(f)]
    for i, s in enumerate(cfg.evaluation.slices):
        for col in s:
            if col not in slice_keys:
                fail(f"evaluation.slices[{i}]", f"feature names or slice keys from {slice_keys}", col)
    for key in ("baseline_features", "fairness_features", "reduced_features"):
        for col in getattr(cfg.evaluation, key):
            if col not in names:
                fail(f"evaluation.{key}", f"feature names from {names}", col)
    text_names = [f.name for f in cfg.features if f.kind == "text"]
    if cfg.evaluation.text_baseline_feature and cfg.evaluation.text_baseline_feature not in text_names:
        fail("evaluation.text_baseline_feature", f"the name of a text feature {text_names}",
             cfg.evaluation.text_baseline_feature)
    if cfg.evaluation.text_baseline_feature and cfg.label.kind != "classes":
        fail("evaluation.text_baseline_feature", "a 'classes' label (the baselines score class names)",
             cfg.label.kind)
    if not 0 <= cfg.trainer.feature_dropout_share < 1:
        fail("trainer.feature_dropout_share", "a number in [0, 1)", cfg.trainer.feature_dropout_share)
    for col in cfg.trainer.feature_dropout_keep:
        if col not in names:
            fail("trainer.feature_dropout_keep", f"feature names from {names}", col)
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


def extra_slice_keys(f: FeatureConfig) -> Tuple[str, ...]:
    """Slice keys a feature kind emits besides its name (TFMA slices transformed outputs too)."""
    return (f"{f.name}_seen",) if f.kind == "label_prior" else ()


_STRING_KINDS = ("text", "multi_categorical", "label_prior")


def _check_feature(cfg: PipelineConfig, f: FeatureConfig, key: str, names, fail) -> None:
    if f.column in cfg.data.excluded_columns:
        fail(f"{key}.name", "a column not listed in data.excluded_columns", f.column)
    if f.kind in ("numeric", "bucketized", "timestamp") and f.dtype == "string":
        fail(f"{key}.dtype", f"int or float for a {f.kind} feature", f.dtype)
    if f.kind in _STRING_KINDS and f.dtype != "string":
        fail(f"{key}.dtype", f"string for a {f.kind} feature", f.dtype)
    if f.buckets < 2:
        fail(f"{key}.buckets", "at least 2", f.buckets)
    if f.max_value and (f.kind != "categorical" or f.dtype != "int"):
        fail(f"{key}.max_value", "only on categorical int features", f.max_value)
    if f.top_k < 1 or f.oov_buckets < 1:
        fail(f"{key}.top_k/oov_buckets", "positive integers", (f.top_k, f.oov_buckets))
    if f.max_tokens < 1:
        fail(f"{key}.max_tokens", "a positive integer", f.max_tokens)
    if not f.ngrams or any(n < 1 for n in f.ngrams):
        fail(f"{key}.ngrams", "a non-empty list of n-gram sizes >= 1", list(f.ngrams))
    if f.kind == "multi_categorical" and not f.separator:
        fail(f"{key}.separator", "a non-empty separator", f.separator)
    if f.kind == "label_prior":
        if cfg.label.kind != "classes":
            fail(f"{key}.kind", "label_prior only with a 'classes' label", cfg.label.kind)
        columns = {g.column: g for g in cfg.features if not g.leaky or g is f}
        if f.fold_key not in columns or columns[f.fold_key].dtype != "string":
            fail(f"{key}.fold_key", f"the raw column of a string feature {sorted(columns)} "
                 "(it identifies training rows, also at serving time)", f.fold_key)
        if f.folds < 2:
            fail(f"{key}.folds", "at least 2", f.folds)
        if f.smoothing <= 0:
            fail(f"{key}.smoothing", "a positive number", f.smoothing)


def _check_claim_neighbours(cfg: PipelineConfig, dtypes: Mapping[str, str], fail) -> None:
    nb = cfg.claim_neighbours
    if not nb.column:
        return
    if dtypes.get(nb.text) != "string":
        fail("claim_neighbours.text", f"a string column from data.columns {sorted(dtypes)}", nb.text)
    if cfg.label.kind != "classes":
        fail("label.kind", "'classes' (the record is made of class names)", cfg.label.kind)
    for key in ("k", "repeats"):
        if getattr(nb, key) < 1:
            fail(f"claim_neighbours.{key}", "a positive integer", getattr(nb, key))
    if nb.folds < 2:
        fail("claim_neighbours.folds", "at least 2 folds (training rows read other folds)", nb.folds)
    if nb.temperature <= 0:
        fail("claim_neighbours.temperature", "a positive number", nb.temperature)
    if not any(f.column == nb.column for f in cfg.features):
        fail("claim_neighbours.column", "the column of a feature (else the record is made and unused)",
             nb.column)


def _check_data(cfg: PipelineConfig, fail, require_data: bool) -> None:
    data = cfg.data
    exists = data.path == TAXI_DEFAULT or "://" in data.path or os.path.isdir(cfg.data_path)
    if require_data and not exists:
        env = f" or ${data.path_env}" if data.path_env else ""
        fail("data.path", f"an existing directory of {data.format.upper()} files{env} "
             f"(resolved to {cfg.data_path})", data.path)
    if data.format == "csv":
        if set(data.splits) != {"train", "eval"}:
            fail("data.splits", "exactly the splits 'train' and 'eval'", sorted(data.splits))
        for split, buckets in data.splits.items():
            if buckets < 1:
                fail(f"data.splits.{split}", "a positive number of hash buckets", buckets)
        if data.files or data.columns:
            fail("data.files", "no files or columns for csv (the header names the columns)",
                 sorted(data.files))
        return
    if not {"train", "eval"} <= set(data.files) or not set(data.files) <= {"train", "eval", "test"}:
        fail("data.files", "file names for the splits train and eval (and optionally test)",
             dict(data.files))
    for split, name in data.files.items():
        if require_data and "://" not in cfg.data_path and not os.path.isfile(os.path.join(cfg.data_path, name)):
            fail(f"data.files.{split}", f"a file in {cfg.data_path}", name)
    columns = [c.name for c in data.columns]
    if not columns:
        fail("data.columns", "the names and dtypes of the file's columns, in order", [])
    repeated = _repeated(columns)
    if repeated:
        fail("data.columns", "unique column names", repeated)
    file_dtypes = {c.name: c.dtype for c in data.columns}
    derived = cfg.claim_neighbours.column
    if derived in file_dtypes:
        fail("claim_neighbours.column", f"a new column name, not one of data.columns {columns}", derived)
    # the derived column is made by the ClaimNeighbours component; features may read it
    dtypes = {**file_dtypes, derived: "string"} if derived else file_dtypes
    for i, f in enumerate(cfg.features):
        if f.column not in dtypes:
            fail(f"features[{i}].name", f"a column from data.columns {columns}", f.column)
        if dtypes[f.column] != f.dtype:
            fail(f"features[{i}].dtype", f"the dtype of column {f.column!r} ({dtypes[f.column]})", f.dtype)
    if cfg.label.column not in dtypes:
        fail("label.column", f"a column from data.columns {columns}", cfg.label.column)
    _check_claim_neighbours(cfg, file_dtypes, fail)
