"""``retraining``, ``differential`` and ``rollout_analysis``: shares in [0, 1], counts not negative,
known incident measures, a canary share in (0, 100]."""
from __future__ import annotations

from typing import Callable

from common.config import PipelineConfig

# Measures a check's alerts carry that a data incident may be declared on (monitoring.alerts).
INCIDENT_MEASURES = ("missing_fraction", "l_infinity", "jensen_shannon")


def check(cfg: PipelineConfig, fail: Callable) -> None:
    retraining, differential = cfg.retraining, cfg.differential
    drop = retraining.max_accuracy_drop
    if drop is not None and not 0 <= drop <= 1:
        fail("retraining.max_accuracy_drop", "null or a number in [0, 1]", drop)
    for key in ("drift_spans", "max_age_spans", "min_new_labelled_rows"):
        if getattr(retraining, key) < 0:
            fail(f"retraining.{key}", "a non-negative integer (0 = off)", getattr(retraining, key))
    for measure in retraining.incident_measures:
        if measure not in INCIDENT_MEASURES:
            fail("retraining.incident_measures", f"measures among {list(INCIDENT_MEASURES)}", measure)
    for key in ("max_flip_rate", "max_mean_difference", "max_difference", "max_slice_accuracy_drop"):
        value = getattr(differential, key)
        if not 0 <= value <= 1:
            fail(f"differential.{key}", "a number in [0, 1]", value)
    if differential.min_slice_rows < 1:
        fail("differential.min_slice_rows", "a positive integer", differential.min_slice_rows)
    _check_rollout_analysis(cfg, fail)


def _check_rollout_analysis(cfg: PipelineConfig, fail: Callable) -> None:
    analysis = cfg.rollout_analysis
    if not 0 < analysis.canary_percent <= 100:
        fail("rollout_analysis.canary_percent", "a percentage in (0, 100]", analysis.canary_percent)
    for key in ("min_requests", "min_labelled_rows"):
        if getattr(analysis, key) < 1:
            fail(f"rollout_analysis.{key}", "a positive integer", getattr(analysis, key))
    for key in ("max_error_rate_increase", "max_output_distance", "max_accuracy_drop"):
        if not 0 <= getattr(analysis, key) <= 1:
            fail(f"rollout_analysis.{key}", "a number in [0, 1]", getattr(analysis, key))
    if analysis.early_stop_requests < 0:
        fail("rollout_analysis.early_stop_requests", "a non-negative integer (0 = no early stop)",
             analysis.early_stop_requests)
    if not 0.5 <= analysis.confidence < 1:
        fail("rollout_analysis.confidence", "a confidence in [0.5, 1), e.g. 0.95 (0.5: point values alone)",
             analysis.confidence)
    if not 0.5 < analysis.early_stop_confidence < 1:
        fail("rollout_analysis.early_stop_confidence", "a confidence in (0.5, 1), e.g. 0.99",
             analysis.early_stop_confidence)
    if analysis.max_p99_latency_ratio < 1:
        fail("rollout_analysis.max_p99_latency_ratio", "a ratio of at least 1", analysis.max_p99_latency_ratio)
    for key in ("p99_latency_floor_ms", "poll_seconds", "timeout_seconds"):
        if not getattr(analysis, key) > 0:
            fail(f"rollout_analysis.{key}", "a positive number", getattr(analysis, key))
