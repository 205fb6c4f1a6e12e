"""Measurements of a check, the thresholds they are held to, and the alert records they raise.

Every figure a check computes is a ``Measurement``: what was compared
(``comparator``), of what (``feature``), by which measure, the value, and the
threshold with where it came from. A measurement with a threshold that it
crosses is an alert; one without a threshold (nothing sets one, or too few
rows to judge) is kept for the report and the Prometheus gauges, never an alert.

Comparators:

=====================  =========================================  ======================
comparator             measures                                   alarms when
=====================  =========================================  ======================
skew                   l_infinity, jensen_shannon, missing_fraction  value > threshold
drift                  (same, span vs the previous span)          value > threshold
schema                 TFDV anomaly type (SERVING environment)    any anomaly (1 > 0)
output_drift           l_infinity of predicted-class shares       value > threshold
labelled_accuracy      accuracy                                   value < threshold
error_rate             error_rate (5xx share)                     value > threshold
p99_latency            p99_latency_ms                             value > threshold
=====================  =========================================  ======================
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from tensorflow_metadata.proto.v0 import anomalies_pb2

from monitoring.calibration import Calibration
from monitoring.distances import FeatureDistance

ABOVE, BELOW = "above", "below"
ALERTS_FILE = "alerts.jsonl"


@dataclass(frozen=True)
class Measurement:
    """One figure of a check and the threshold it is held to (None: measured only)."""
    comparator: str
    feature: str
    measure: str
    value: float
    threshold: Optional[float]
    direction: str = ABOVE
    threshold_source: str = ""
    model_version: Optional[int] = None
    detail: str = ""

    @property
    def alarmed(self) -> bool:
        if self.threshold is None or math.isnan(self.value):
            return False
        return self.value > self.threshold if self.direction == ABOVE else self.value < self.threshold

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "Measurement":
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls) if f.name in raw})


def distance_measurements(records: Sequence[FeatureDistance], calibration: Optional[Calibration],
                          missing_threshold: float, model_version: Optional[int]) -> List[Measurement]:
    """TFDV distances and missing-fraction shifts, each with its threshold.

    Calibrated thresholds win; otherwise a distance keeps the schema's comparator
    threshold (``FeatureDistance.threshold``) and a missing-fraction shift gets
    ``missing_threshold`` (``monitoring.max_missing_fraction_shift``).
    """
    out = []
    for r in records:
        threshold, source = r.threshold, "schema" if r.threshold is not None else ""
        if calibration is not None:
            try:
                threshold, source = calibration.threshold(r.feature, r.comparator, r.measure), "calibration"
            except KeyError:
                pass
        if r.measure == "missing_fraction" and source != "calibration":
            threshold, source = missing_threshold, "monitoring.max_missing_fraction_shift"
        out.append(Measurement(r.comparator, r.feature, r.measure, r.distance, threshold,
                               threshold_source=source, model_version=model_version))
    return out


def anomaly_measurements(anomalies: anomalies_pb2.Anomalies,
                         model_version: Optional[int]) -> List[Measurement]:
    """One measurement per reason of each schema anomaly TFDV reports for the span."""
    out = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
            out.append(Measurement("schema", feature, kind, 1.0, 0.0,
                                   threshold_source="schema (SERVING environment)",
                                   model_version=model_version,
                                   detail=reason.description or info.description))
    return out


def alerts_of(measurements: Iterable[Measurement]) -> List[Measurement]:
    return [m for m in measurements if m.alarmed]


def alert_record(alert: Measurement, span: int, model: str, checked_ms: int,
                 ids: Mapping[str, Any]) -> Dict[str, Any]:
    """One line of ``alerts.jsonl``: the alert, where it was seen, and its ML Metadata ids."""
    return {"span": span, "model": model, "checked_ms": checked_ms, **alert.to_json(), **ids}


def append_alerts(alerts_dir: str, records: Sequence[Mapping[str, Any]]) -> str:
    """Appends ``records`` to ``<alerts_dir>/alerts.jsonl`` (one write, then fsync)."""
    os.makedirs(alerts_dir, exist_ok=True)
    path = os.path.join(alerts_dir, ALERTS_FILE)
    data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_alerts(alerts_dir: str) -> List[Dict[str, Any]]:
    """Every alert line of ``<alerts_dir>/alerts.jsonl`` (none when the file is absent)."""
    path = os.path.join(alerts_dir, ALERTS_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
