"""``monitoring``: thresholds in their ranges, Prometheus durations the rule files accept."""
from __future__ import annotations

import re
from typing import Callable

from common.config import PipelineConfig

# Prometheus' duration grammar (e.g. 30s, 5m, 1h30m), as the `for` field and range selectors take it.
PROMETHEUS_DURATION = re.compile(r"(?:\d+(?:ms|[smhdwy]))+")


def check(cfg: PipelineConfig, fail: Callable) -> None:
    monitoring = cfg.monitoring
    for key in ("max_missing_fraction_shift", "max_output_drift", "max_error_rate"):
        value = getattr(monitoring, key)
        if not 0 <= value <= 1:
            fail(f"monitoring.{key}", "a number in [0, 1] (a share)", value)
    accuracy = monitoring.min_labelled_accuracy
    if accuracy is not None and not 0 <= accuracy <= 1:
        fail("monitoring.min_labelled_accuracy", "null or a number in [0, 1]", accuracy)
    if not 0 <= monitoring.clip_quantile < 0.5:
        fail("monitoring.clip_quantile", "a number in [0, 0.5) (0 = no clipping)", monitoring.clip_quantile)
    if monitoring.min_version_rows < 1:
        fail("monitoring.min_version_rows", "a positive integer", monitoring.min_version_rows)
    if monitoring.max_p99_latency_ms <= 0:
        fail("monitoring.max_p99_latency_ms", "a positive number of milliseconds",
             monitoring.max_p99_latency_ms)
    for key in ("rule_window", "rule_for"):
        value = getattr(monitoring, key)
        if not PROMETHEUS_DURATION.fullmatch(value):
            fail(f"monitoring.{key}", "a Prometheus duration such as '30s', '5m' or '1h30m'", value)
