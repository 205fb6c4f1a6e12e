"""What served spans are compared with: the training history, in the monitoring view.

Skew is measured against the data the model was trained on, read the way
calibration reads it (``monitoring.history``: every accepted row of the
config's data) and seen through the same view (``monitoring.view``: numeric
features clipped to the history's central range). With a calibration, its
clip bounds are used, so the distances are exactly those its thresholds were
set for (and one made with other histogram buckets, ``monitoring.statistics``,
is refused); without, bounds at ``monitoring.clip_quantile``.

Which features: the monitored ones (``monitoring.history.monitored_features``:
no timestamps, free text or multi-valued columns, nothing kept out of the
SERVING environment) that the request log holds as served. A feature in
``serving.sensitive_features`` is dropped from the log or hashed there: its
served distribution is absent or unrelated to the training values, so
comparing it would alarm on every span.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

import pandas as pd
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from common.config import PipelineConfig
from common.paths import resolve_path
from monitoring.artifacts import read_calibration
from monitoring.calibration import Calibration
from monitoring.frames import typed_frame
from monitoring.history import load_history, monitored_features
from monitoring.statistics import HISTOGRAM_BUCKETS, statistics_of
from monitoring.view import clip_bounds, clipped


def served_features(cfg: PipelineConfig, schema: schema_pb2.Schema) -> Tuple[str, ...]:
    """The monitored features the request log holds as served (module doc)."""
    sensitive = set(cfg.serving.sensitive_features)
    return tuple(f for f in monitored_features(cfg, schema) if f not in sensitive)


def logged_columns(cfg: PipelineConfig) -> Tuple[str, ...]:
    """Every raw column the gateway logs as received (config order, sensitive ones left out)."""
    columns = []
    for feature in cfg.features:
        if feature.column not in columns and feature.column not in cfg.serving.sensitive_features:
            columns.append(feature.column)
    return tuple(columns)


@dataclass(frozen=True)
class Reference:
    """The history a span is compared with, and how spans are viewed to be comparable."""
    features: Tuple[str, ...]
    schema: schema_pb2.Schema
    bounds: Mapping[str, Tuple[float, float]]
    history: pd.DataFrame               # typed and clipped
    statistics: statistics_pb2.DatasetFeatureStatisticsList
    calibration: Optional[Calibration]
    thresholds: str                     # where the distance thresholds come from

    def view(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Raw served columns -> typed by the schema and clipped like the history."""
        return clipped(typed_frame(frame, self.schema, self.features), self.bounds)

    def statistics_of(self, frame: pd.DataFrame) -> statistics_pb2.DatasetFeatureStatisticsList:
        """TFDV statistics of a raw served frame in the monitoring view."""
        return statistics_of(self.view(frame), self.schema, self.features)


def load_reference(cfg: PipelineConfig, schema: schema_pb2.Schema) -> Reference:
    """The config's history, its statistics, and the calibration named by the config."""
    features = served_features(cfg, schema)
    history = load_history(cfg, schema, features)
    calibration = None
    if cfg.monitoring.calibration:
        path = resolve_path(cfg.monitoring.calibration)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{cfg.source_file}: monitoring.calibration: {path} not found "
                                    "(`python -m monitoring calibrate` writes calibration.json)")
        calibration = read_calibration(path)
        if calibration.histogram_buckets != HISTOGRAM_BUCKETS:
            raise ValueError(f"{cfg.source_file}: monitoring.calibration: {path} was calibrated on "
                             f"{calibration.histogram_buckets}-bucket histograms, checks build "
                             f"{HISTOGRAM_BUCKETS} (monitoring.statistics): its thresholds do not "
                             "hold for these distances; rerun `python -m monitoring calibrate`")
        bounds = {name: b for name, b in calibration.clip_bounds.items() if name in features}
        thresholds = f"calibration {path} (budget {calibration.budget}, spans of {calibration.span_size})"
    else:
        bounds = clip_bounds(history, schema, features, cfg.monitoring.clip_quantile)
        thresholds = f"schema {cfg.schema_path} comparators"
    view = clipped(history, bounds)
    return Reference(features, schema, bounds, view, statistics_of(view, schema, features),
                     calibration, thresholds)
