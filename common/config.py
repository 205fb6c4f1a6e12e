"""Typed dataset configuration: the one source of truth for a run.

A dataset is a YAML file (``configs/<name>.yaml``), not code. ``common.loader``
turns it into the frozen ``PipelineConfig`` defined here; every mistake
(unknown key, wrong type, missing file, impossible value) fails there, before
any component runs, with a message naming the file, the dotted key and what
was expected (``common.checks``).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple

from common.paths import TAXI_DEFAULT, resolve_path, taxi_data_dir

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
class SpansConfig:
    """Data that arrives in spans (e.g. one directory per quarter), split by time.

    ``pattern`` (relative to ``data.path``) names a span's files with TFX's
    ``{SPAN}`` spec (and optionally ``{VERSION}``), e.g. ``span-{SPAN}/*``. Each
    run evaluates on the newest span and trains on the ``train_spans`` spans
    before it (a rolling window); ExampleGen records span and version in ML
    Metadata. Empty: one dataset split by hash buckets (``data.splits``).
    """
    pattern: str = ""
    train_spans: int = 4


@dataclass(frozen=True)
class DataConfig:
    """Where the data lives and how it is split.

    ``csv``: files with a header, split by hash buckets (``splits``), or by time
    when ``spans.pattern`` is set (``splits`` is then unused). ``tsv``:
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
    spans: SpansConfig = field(default_factory=SpansConfig)


@dataclass(frozen=True)
class ClaimNeighboursConfig:
    """The claim-neighbour record (``trainer.claim_neighbours``): a string column
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
class ValidationConfig:
    """The data gate's dataset-level thresholds (components.anomalies_gate).

    Per-feature constraints (presence, domains) and drift comparators live in
    the curated schema; these depend on the dataset's size and cadence, so they
    live with the run. They become the schema's ``dataset_constraints`` for
    TFDV: ``min_examples`` per split name (an empty split always stops the run),
    and the ratio of a split's examples to the last accepted data's
    (``min_count_ratio`` .. ``max_count_ratio``; 0 = that bound unchecked).
    """
    min_examples: Mapping[str, int] = field(default_factory=dict)
    min_count_ratio: float = 0.0
    max_count_ratio: float = 0.0


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


# How a bag of ids can be pooled (trainer.wide_bag_pooling, trainer.model.BagMean).
BAG_POOLINGS = ("mean", "sqrtn")


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
    # How the wide (linear) part pools a bag's token weights (trainer.model.BagMean):
    # "mean" (sum / n) or "sqrtn" (sum / sqrt(n), TF's embedding combiner of that name:
    # a linear model over the bag's L2-normalised counts). The deep part always averages.
    wide_bag_pooling: str = "mean"
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
    """The blessing gate: TFMA's absolute floors and no regression vs the last blessed
    model, and accuracy above the run's best trivial baseline (components.baseline_gate)."""
    min_auc: float = 0.5
    min_accuracy: float = 0.0
    max_auc_regression: float = 0.01
    # Accuracy must exceed the best trivial baseline (majority class, one-feature rule)
    # of the same eval split by more than this.
    min_margin_over_baselines: float = 0.0
    # Binary models: TFMA's symmetric flip rate against the baseline model (the latest pushed
    # one), the share of eval rows whose class at 0.5 differs; null = reported, not gated.
    max_flip_rate: Optional[float] = None
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
    # The log's files are fsynced this often (a machine crash loses at most this interval;
    # a killed gateway only the rows still queued, kept younger than this by back-pressure).
    request_log_flush_seconds: float = 1.0
    # Raw features never written to the request log as they are: dropped or hashed.
    sensitive_features: Mapping[str, Literal["drop", "hash"]] = field(default_factory=dict)
    # Feedback labels (POST /v1/models/<m>/feedback): accepted for requests logged in the
    # last feedback_window_spans spans, whose ids the gateway keeps in memory (at most
    # feedback_max_request_ids, ~170 bytes each; the oldest span is forgotten first).
    feedback_window_spans: int = 24
    feedback_max_request_ids: int = 1_000_000
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    # TFLite + TF.js exports beside the SavedModel (trainer/edge_graph.py, edge/convert.py); turn off
    # for a dataset whose feature kinds the edge runtimes cannot run.
    edge_exports: bool = True


@dataclass(frozen=True)
class MonitoringConfig:
    """Thresholds of ``python -m monitoring check`` over served spans, where its alerts go,
    and the Prometheus alerting rules ``python -m serving.k8s`` renders for the same limits.

    Feature distances are held to the calibration's thresholds (``calibration``,
    written by ``python -m monitoring calibrate``) where it has them, else to the
    schema's skew/drift comparators; missing-value shifts to the calibration's,
    else ``max_missing_fraction_shift``.
    """
    # calibration.json of `python -m monitoring calibrate` ("" = the schema's comparators)
    calibration: str = ""
    # Without a calibration: numeric features clipped to the history's [q, 1 - q]
    # quantiles before statistics (monitoring.view); 0 = no clipping.
    clip_quantile: float = 0.005
    max_missing_fraction_shift: float = 0.1
    # L-infinity distance between the predicted-class shares of a span and the previous span.
    max_output_drift: float = 0.1
    # Accuracy of logged predictions against feedback labels; null = evaluation.min_accuracy,
    # the floor the model was blessed at.
    min_labelled_accuracy: Optional[float] = None
    # Per-version figures (output drift: rows; labelled accuracy: labelled rows) are held to
    # their thresholds only from this many rows on: a canary's first few rows are noise.
    min_version_rows: int = 50
    # Software health from the gateway's /metrics: 5xx share and p99 latency, per model version.
    max_error_rate: float = 0.01
    max_p99_latency_ms: float = 1000.0
    # alerts.jsonl, monitoring.prom, checks/span-<N>.json ("" = <run_dir>/<name>/monitoring)
    alerts_dir: str = ""
    # ML Metadata sqlite file of checks and alerts ("" = <run_dir>/<name>/monitoring.db)
    metadata: str = ""
    # Prometheus alerting rules: the rate window and how long a condition must hold.
    rule_window: str = "5m"
    rule_for: str = "10m"


@dataclass(frozen=True)
class RetrainingConfig:
    """When ``python -m monitoring decide`` proposes a retraining, from the recorded checks.

    Triggers (any one fires): labelled accuracy of the newest clean span below the serving
    version's eval accuracy by more than ``max_accuracy_drop``; a feature drifting (skew or
    drift alert) in ``drift_spans`` consecutive clean spans; the serving version having served
    ``max_age_spans`` checked spans. Gate: at least ``min_new_labelled_rows`` labelled rows in
    clean spans since the last retrain decision. A span whose check raised a schema alert or
    an alert of ``incident_measures`` is a data incident: never in a proposed window.
    """
    max_accuracy_drop: Optional[float] = 0.05   # null = rule off
    drift_spans: int = 3                         # 0 = rule off
    max_age_spans: int = 0                       # 0 = rule off
    min_new_labelled_rows: int = 200
    # Alert measures (besides any schema anomaly) that mark a broken upstream, not drift.
    incident_measures: Tuple[str, ...] = ("missing_fraction",)
    # The pipeline's ML Metadata, read for the serving version's eval accuracy
    # ("" = <run_dir>/<name>/metadata.db).
    pipeline_metadata: str = ""


@dataclass(frozen=True)
class DifferentialConfig:
    """Thresholds of ``python -m monitoring diff``: a served span replayed through two versions."""
    max_flip_rate: float = 0.05           # share of rows whose predicted class changes
    max_mean_difference: float = 0.05     # mean |candidate - stable| of the output scores
    max_difference: float = 0.5           # max |candidate - stable| over rows and outputs
    max_slice_accuracy_drop: float = 0.05  # labelled accuracy, stable - candidate, per slice
    min_slice_rows: int = 30              # labelled rows a slice needs to be judged


@dataclass(frozen=True)
class RolloutAnalysisConfig:
    """The automatic canary (``python -m monitoring canary``): traffic share, verdict thresholds."""
    canary_percent: float = 10.0            # share of requests the candidate answers (canary mode)
    min_requests: int = 100                 # candidate requests before a verdict (fewer: inconclusive)
    max_error_rate_increase: float = 0.01   # 5xx share, candidate minus stable
    max_p99_latency_ratio: float = 1.5      # candidate p99 / stable p99
    p99_latency_floor_ms: float = 20.0      # a p99 below this counts as this (sub-ms noise)
    max_output_distance: float = 0.2        # l_infinity of the predicted-class shares
    max_accuracy_drop: float = 0.05         # labelled accuracy, stable minus candidate
    min_labelled_rows: int = 30             # labelled rows each version needs for the accuracy drop
    # Early stop: from this many candidate requests on (0 = off), a candidate whose error rate or
    # output distance is past its threshold even at the favourable end of its one-sided
    # early_stop_confidence interval fails before min_requests (users see less of a broken one).
    early_stop_requests: int = 20
    early_stop_confidence: float = 0.99
    # At the verdict, a figure past its threshold fails the candidate only when the gap behind it
    # (candidate vs stable error rate, labelled accuracy, the most different predicted-class
    # share) is significant at this one-sided confidence (a two-proportion z-test), as Kayenta
    # judges a canary: a 5-point accuracy gap on a 100-row canary is noise, not a regression.
    # 0.5 judges the point values alone. Latency is judged on its value.
    confidence: float = 0.95
    poll_seconds: float = 1.0               # how often the runner reads the log and /metrics
    timeout_seconds: float = 600.0          # no verdict by then: the candidate is withdrawn


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
    # ``python -m kubeflow.schedule`` renders both of these. A KFP recurring run of the pipeline
    # on the newest span: a 5-field cron in UTC, e.g. "0 6 1 */3 *" (a quarter); "" = none.
    schedule: str = ""
    # A Kubernetes CronJob that checks the newest served span, decides, and submits a run to
    # ``host`` when the decision is to retrain (5-field cron; "" = no CronJob).
    monitoring_schedule: str = ""
    host: str = ""  # the KFP API endpoint the CronJob submits runs to
    # The PersistentVolumeClaim holding run_dir in the cluster (request log, checks,
    # decisions, ML Metadata), mounted where the image has run_dir.
    state_claim: str = ""


@dataclass(frozen=True)
class PipelineConfig:
    """The whole run, as validated from one dataset file."""
    name: str
    schema: str
    label: LabelConfig
    features: Tuple[FeatureConfig, ...]
    data: DataConfig = field(default_factory=DataConfig)
    claim_neighbours: ClaimNeighboursConfig = field(default_factory=ClaimNeighboursConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    tuner: TunerConfig = field(default_factory=TunerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    retraining: RetrainingConfig = field(default_factory=RetrainingConfig)
    differential: DifferentialConfig = field(default_factory=DifferentialConfig)
    rollout_analysis: RolloutAnalysisConfig = field(default_factory=RolloutAnalysisConfig)
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


def to_dict(config: Any) -> Dict[str, Any]:
    """A JSON-safe dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def extra_slice_keys(f: FeatureConfig) -> Tuple[str, ...]:
    """Slice keys a feature kind emits besides its name (TFMA slices transformed outputs too)."""
    return (f"{f.name}_seen",) if f.kind == "label_prior" else ()
