"""The last check as Prometheus gauges: a textfile for node_exporter's textfile collector.

node_exporter (``--collector.textfile.directory=<alerts_dir>``) exposes every
``*.prom`` file of the directory on its own ``/metrics``; the file is replaced
by one rename so a scrape never reads half of it. The alerting rules
``python -m serving.k8s`` renders fire on ``monitoring_alert`` and on a check
that stopped running (``monitoring_check_timestamp_seconds``).

Gauges (label ``model`` on all; ``comparator, feature, measure, version`` on
the per-measurement ones, ``version`` empty when a figure is of no version):

* ``monitoring_measurement``: each measured value (distance, share, accuracy, ...)
* ``monitoring_threshold``: its threshold, where one is set
* ``monitoring_alert``: 1 when the measurement crosses its threshold, else 0
* ``monitoring_alerts``: the number of alerts of the check
* ``monitoring_span``, ``monitoring_span_rows``: which span was checked, its rows
* ``monitoring_check_timestamp_seconds``: when
"""
from __future__ import annotations

import math
import os
import uuid
from typing import Dict, List, Sequence, Tuple

from monitoring.alerts import Measurement

PROM_FILE = "monitoring.prom"
_HELP = {
    "monitoring_measurement": "Value measured by the last monitoring check (distance, share, accuracy, ms).",
    "monitoring_threshold": "Threshold the measurement is held to.",
    "monitoring_alert": "1 when the measurement crosses its threshold in the last check.",
    "monitoring_alerts": "Alerts raised by the last monitoring check.",
    "monitoring_span": "Request-log span the last monitoring check read.",
    "monitoring_span_rows": "Primary rows of the model in that span.",
    "monitoring_check_timestamp_seconds": "When the last monitoring check ran (Unix time).",
}


def _quote(value: str) -> str:
    escaped = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return f'"{escaped}"'


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _series(name: str, labels: Sequence[Tuple[str, str]], value: float) -> str:
    inner = ",".join(f"{key}={_quote(text)}" for key, text in labels)
    return f"{name}{{{inner}}} {_number(value)}"


def render(model: str, span: int, rows: int, checked_s: float,
           measurements: Sequence[Measurement]) -> str:
    """The textfile's content for one check."""
    series: Dict[str, List[str]] = {name: [] for name in _HELP}
    for m in measurements:
        labels = [("model", model), ("comparator", m.comparator), ("feature", m.feature),
                  ("measure", m.measure),
                  ("version", "" if m.model_version is None else str(m.model_version))]
        series["monitoring_measurement"].append(_series("monitoring_measurement", labels, float(m.value)))
        if m.threshold is not None:
            series["monitoring_threshold"].append(_series("monitoring_threshold", labels,
                                                          float(m.threshold)))
            series["monitoring_alert"].append(_series("monitoring_alert", labels,
                                                      1.0 if m.alarmed else 0.0))
    model_label = [("model", model)]
    alerts = sum(m.alarmed for m in measurements)
    for name, value in (("monitoring_alerts", alerts), ("monitoring_span", span),
                        ("monitoring_span_rows", rows),
                        ("monitoring_check_timestamp_seconds", checked_s)):
        series[name].append(_series(name, model_label, float(value)))
    lines = []
    for name, help_text in _HELP.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"] + series[name]
    return "\n".join(lines) + "\n"


def write_textfile(alerts_dir: str, text: str) -> str:
    """``<alerts_dir>/monitoring.prom``, replaced atomically."""
    os.makedirs(alerts_dir, exist_ok=True)
    path = os.path.join(alerts_dir, PROM_FILE)
    staging = os.path.join(alerts_dir, f".{PROM_FILE}.{uuid.uuid4().hex[:8]}")
    with open(staging, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(staging, path)
    return path
