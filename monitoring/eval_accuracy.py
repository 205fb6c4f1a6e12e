"""The eval accuracy a pushed model version was blessed at, read from the pipeline's ML Metadata.

Why from lineage: the push directory holds only SavedModels; the figure the
Evaluator blessed a version at lives in the run that pushed it. The path:
PushedModel (custom property ``pushed_version``, set by ``components.pusher``)
<- Pusher execution -> its input ModelBlessing <- Evaluator execution -> its
output ModelEvaluation, whose TFMA metrics hold the overall accuracy
(``binary_accuracy``, or ``sparse_categorical_accuracy`` for multi-class labels,
as ``components.evaluation.accuracy_metric`` names it; the candidate model's,
not the baseline's nor a diff).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from common.config import PipelineConfig
from common.paths import resolve_path
from monitoring.locations import run_root


def pipeline_metadata_path(cfg: PipelineConfig) -> str:
    """``retraining.pipeline_metadata``, default ``<run_dir>/<name>/metadata.db``."""
    if cfg.retraining.pipeline_metadata:
        return resolve_path(cfg.retraining.pipeline_metadata)
    return os.path.join(run_root(cfg), "metadata.db")


def accuracy_metric_name(num_classes: int) -> str:
    return "sparse_categorical_accuracy" if num_classes > 2 else "binary_accuracy"


def _linked(store: metadata_store.MetadataStore, artifact_id: int, event: int) -> List[int]:
    """Executions that had ``artifact_id`` as an event of type ``event``."""
    return [e.execution_id for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == event]


def _artifacts_of(store: metadata_store.MetadataStore, execution_id: int, event: int,
                  type_name: str) -> List[mlmd.Artifact]:
    ids = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id]) if e.type == event]
    type_id = store.get_artifact_type(type_name).id
    return [a for a in store.get_artifacts_by_id(ids) if a.type_id == type_id]


def evaluation_uri(store: metadata_store.MetadataStore, version: int) -> Optional[str]:
    """The ModelEvaluation uri of the run that pushed ``version`` (newest push first), or None."""
    try:
        pushed = store.get_artifacts_by_type("PushedModel")
    except Exception:  # noqa: BLE001 -- an empty store has no such type
        return None
    matching = [a for a in pushed
                if a.custom_properties["pushed_version"].string_value == str(version)]
    for artifact in sorted(matching, key=lambda a: -a.id):
        for pusher in _linked(store, artifact.id, mlmd.Event.OUTPUT):
            for blessing in _artifacts_of(store, pusher, mlmd.Event.INPUT, "ModelBlessing"):
                for evaluator in _linked(store, blessing.id, mlmd.Event.OUTPUT):
                    for evaluation in _artifacts_of(store, evaluator, mlmd.Event.OUTPUT, "ModelEvaluation"):
                        return evaluation.uri
    return None


def overall_accuracy(uri: str, metric: str) -> Optional[float]:
    """The candidate model's ``metric`` on the whole eval split in TFMA's metrics at ``uri``."""
    import tensorflow_model_analysis as tfma  # loaded only when a version is looked up

    for metrics in tfma.load_metrics(uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for item in metrics.metric_keys_and_values:
            key = item.key
            if key.name == metric and not key.is_diff and key.model_name in ("", "candidate"):
                return item.value.double_value.value
    return None


class EvalAccuracies:
    """Eval accuracies of pushed versions from one pipeline store, looked up once each."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.path = pipeline_metadata_path(cfg)
        self.metric = accuracy_metric_name(cfg.num_classes)
        self._known: Dict[int, Optional[float]] = {}

    @property
    def source(self) -> str:
        return f"{self.metric} of the Evaluator run that pushed it, {self.path}"

    def __call__(self, version: int) -> Optional[float]:
        if version not in self._known:
            self._known[version] = self._lookup(version)
        return self._known[version]

    def _lookup(self, version: int) -> Optional[float]:
        if not os.path.isfile(self.path):
            return None
        config = mlmd.ConnectionConfig()
        config.sqlite.filename_uri = self.path
        config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READONLY
        uri = evaluation_uri(metadata_store.MetadataStore(config), version)
        return None if uri is None else overall_accuracy(uri, self.metric)
