"""Served spans with known contents, for the monitoring tests: taxi rows as the gateway logs them.

Rows are drawn from the taxi CSV (the history monitoring compares with), so a
span of them is a same-distribution span; ``shifted`` moves a few features
by known amounts. Spans are written with the gateway's own writer
(``serving.request_log.RequestLog``) at a timestamp inside the span's window.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from common.config import PipelineConfig
from common.paths import taxi_data_dir
from monitoring.artifacts import write_calibration
from monitoring.calibration import Calibration, Threshold, candidate_schema, monitored_tests
from monitoring.view import clip_bounds
from serving.request_log import RequestLog

Row = Dict[str, Any]
LABEL_COLUMN = "tips"
# Thresholds the tests calibrate with: well above the null distances of 200-300-row taxi
# spans (measured: Jensen-Shannon <= 0.19, L-infinity <= 0.09, missing shift <= 0.07) and
# far below those of ``shifted`` spans, so which alerts fire depends on the data, not on luck.
TEST_THRESHOLDS = {"jensen_shannon": 0.3, "l_infinity": 0.15, "missing_fraction": 0.15}


def _typed(value: Any, dtype: str) -> Any:
    """A CSV cell as the gateway expects it (None: missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if dtype == "int":
        return int(value)
    if dtype == "float":
        return float(value)
    return str(value)


def typed_rows(cfg: PipelineConfig, frame: pd.DataFrame) -> List[Row]:
    """Each row of a CSV ``frame`` as users send it to the gateway: the config's features,
    typed by their dtype, a missing value left out (not sent as null)."""
    rows = []
    for record in frame.to_dict("records"):
        row = {f.name: _typed(record.get(f.column), f.dtype) for f in cfg.features}
        rows.append({name: value for name, value in row.items() if value is not None})
    return rows


def taxi_rows(cfg: PipelineConfig, count: int, seed: int) -> Tuple[List[Row], List[float]]:
    """``count`` rows of the taxi CSV drawn with ``seed``: the served features (typed by the
    config, missing values absent) and each row's ``tips`` (the raw label)."""
    frame = pd.read_csv(os.path.join(taxi_data_dir(), "data.csv"))
    sample = frame.sample(count, random_state=seed)
    return typed_rows(cfg, sample), [float(t) for t in sample[LABEL_COLUMN]]


def shifted(rows: Sequence[Row], out_of_domain: int = 5) -> List[Row]:
    """The drift the tests expect to be found: every payment in cash, fares 3x higher, no
    company logged, and the first ``out_of_domain`` rows at hour 30 (outside the schema's
    domain 0..23; the gateway would refuse them)."""
    out = []
    for index, row in enumerate(rows):
        changed = dict(row, payment_type="Cash", fare=3.0 * row["fare"])
        changed.pop("company", None)
        if index < out_of_domain:
            changed["trip_start_hour"] = 30
        out.append(changed)
    return out


def write_span(log_dir: str, cfg: PipelineConfig, span: int, rows: Sequence[Row],
               outputs: Sequence[Sequence[float]], versions: Sequence[int], prefix: str) -> List[str]:
    """Logs one single-row primary request per row into ``span``; returns the request ids."""
    window = cfg.serving.request_log_window_seconds
    ids = [f"{prefix}-{i}" for i in range(len(rows))]
    log = RequestLog.from_config(cfg, log_dir)
    try:
        for request_id, row, output, version in zip(ids, rows, outputs, versions):
            if not log.log(request_id=request_id, model=cfg.serving.model_name, version=version,
                           role="primary", features=[row], outputs=[list(output)], latency_ms=2.0,
                           timestamp=span * window + 1.0):
                raise RuntimeError(f"request {request_id} was dropped by the request log")
    finally:
        log.close()
    return ids


def write_calibration_for(out_dir: str, cfg: PipelineConfig, schema: Any, history: pd.DataFrame,
                          features: Sequence[str], span_size: int,
                          thresholds_by_measure: Mapping[str, float] = TEST_THRESHOLDS) -> str:
    """A calibration sidecar over ``features`` with one threshold per measure and the
    history's clip bounds (q = 0.005), written by ``monitoring.artifacts``; returns the
    calibration.json path."""
    thresholds = tuple(Threshold(name, comparator, measure, thresholds_by_measure[measure])
                       for comparator in ("skew", "drift")
                       for name, measure in monitored_tests(schema, features, comparator))
    tests = {c: len(monitored_tests(schema, features, c)) for c in ("skew", "drift")}
    calibration = Calibration(
        budget=0.05, span_size=span_size, draws=0, seed=0, history_rows=len(history),
        features=tuple(features), comparators=("skew", "drift"), tests_per_comparison=tests,
        test_budget={c: 0.05 / n for c, n in tests.items()}, rank={c: 0 for c in tests},
        thresholds=thresholds, clip_quantile=0.005,
        clip_bounds=clip_bounds(history, schema, features, 0.005))
    return write_calibration(out_dir, candidate_schema(schema, calibration), calibration,
                             cfg.schema_path)[1]


def label_for(cfg: PipelineConfig, row: Row, positive: bool) -> float:
    """A ``tips`` label making the row's true class ``positive`` (tips > fraction * fare)."""
    fare = row.get(cfg.label.denominator or "", 0.0)
    return round(cfg.label.fraction * fare + 1.0, 2) if positive else 0.0


def outputs_for(count: int, seed: int, positive_share: Optional[float] = None) -> List[List[float]]:
    """Binary model outputs: probabilities around 0.5 (``positive_share`` None: uniform in
    [0, 1]); else exactly that share of rows above 0.5, in order."""
    if positive_share is None:
        return [[float(p)] for p in np.random.default_rng(seed).uniform(0.0, 1.0, count)]
    positives = int(round(positive_share * count))
    return [[0.9]] * positives + [[0.1]] * (count - positives)
