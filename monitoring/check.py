"""One check of a served span: data skew and drift, output drift, labelled accuracy, health.

``check_span`` computes (nothing is written); ``record_check`` files the
result: ML Metadata first (``monitoring.metadata``), so that the alert lines
(``alerts.jsonl``), the check's JSON (``checks/span-<N>.json``, which the
report reads) and the Prometheus textfile (``monitoring.prom``) all carry the
ids of the records they correspond to.

What is compared, for span N of the request log (primary rows of the
config's ``serving.model_name``):

* skew: N vs the training history (``monitoring.reference``), TFDV's
  distances per feature plus missing-value shifts;
* drift: N vs the closest earlier span with rows of the model that is not a
  recorded data incident (``incident_alerts``: a broken upstream's span would
  make the recovery look like a shift), same tests;
* schema: N's statistics validated against the curated schema in its
  SERVING environment (the label column is not expected at serving time);
* output drift: each version's predicted-class shares in N vs all of the
  previous span's;
* labelled accuracy: each version's logged predictions vs the feedback
  labels filed for N (``monitoring.labelled``);
* health: each version's 5xx share and p99 latency from the gateway's
  ``/metrics`` text, when one is given (``monitoring.health``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from common.config import PipelineConfig
from monitoring import locations
from monitoring.alerts import (
    BELOW,
    Measurement,
    alert_record,
    alerts_of,
    anomaly_measurements,
    append_alerts,
    distance_measurements,
)
from monitoring.distances import feature_distances
from monitoring.frames import typed_frame
from monitoring.health import version_health
from monitoring.labelled import accuracy_floor, labelled_scores
from monitoring.metadata import record_check as record_in_metadata
from monitoring.predictions import all_shares, output_drift, shares_by_version
from monitoring.presence import presence_distances
from monitoring.reference import Reference, load_reference, logged_columns
from monitoring.served import ServedSpan, choose_span, previous_span, read_span
from monitoring.statistics import statistics_of
from monitoring.textfile import render as render_textfile
from monitoring.textfile import write_textfile
from serving import request_log

SERVING_ENVIRONMENT = "SERVING"


@dataclass
class CheckResult:
    """Everything one check measured, as the report and the alert sinks need it."""
    model: str
    span: int
    previous_span: Optional[int]
    rows: int
    versions: Dict[int, int]                 # rows per model version
    main_version: Optional[int]
    checked_ms: int
    thresholds: str
    class_names: List[str]
    output_shares: Dict[int, List[float]]    # predicted-class shares per version
    previous_shares: Optional[List[float]]
    labelled: List[Dict[str, Any]]           # LabelledScore.to_json per version
    health: List[Dict[str, Any]]             # VersionHealth.to_json per version
    health_source: str
    measurements: List[Measurement]
    metadata: Dict[str, Any] = field(default_factory=dict)   # ML Metadata ids once recorded

    @property
    def alerts(self) -> List[Measurement]:
        return alerts_of(self.measurements)

    def to_json(self) -> Dict[str, Any]:
        raw = dataclasses.asdict(self)
        raw["measurements"] = [m.to_json() for m in self.measurements]
        return raw

    @classmethod
    def from_json(cls, raw: Dict[str, Any]) -> "CheckResult":
        values = {f.name: raw[f.name] for f in dataclasses.fields(cls) if f.name in raw}
        values["measurements"] = [Measurement.from_json(m) for m in raw["measurements"]]
        values["versions"] = {int(k): v for k, v in raw["versions"].items()}
        values["output_shares"] = {int(k): v for k, v in raw["output_shares"].items()}
        return cls(**values)


def _feature_measurements(reference: Reference, served: ServedSpan, previous: Optional[ServedSpan],
                          missing_threshold: float) -> List[Measurement]:
    span_stats = reference.statistics_of(served.frame)
    comparisons: List[Tuple[str, Any]] = [("skew", reference.statistics)]
    if previous is not None:
        comparisons.append(("drift", reference.statistics_of(previous.frame)))
    out: List[Measurement] = []
    for comparator, baseline in comparisons:
        records = (feature_distances(span_stats, baseline, reference.schema, comparator, reference.features)
                   + presence_distances(span_stats, baseline, reference.features, comparator))
        out += distance_measurements(records, reference.calibration, missing_threshold,
                                     served.main_version)
    return out


def _schema_measurements(reference: Reference, served: ServedSpan, columns: Tuple[str, ...]
                         ) -> List[Measurement]:
    """TFDV's schema anomalies of the span's raw (unclipped) values, SERVING environment."""
    in_schema = {f.name for f in reference.schema.feature}
    checked = [c for c in columns if c in in_schema]
    # Only the served columns: the log holds the model's features, not every column the
    # training data has (e.g. taxi's census tracts), whose absence is no anomaly.
    served_schema = schema_pb2.Schema()
    served_schema.CopyFrom(reference.schema)
    del served_schema.feature[:]
    served_schema.feature.extend(f for f in reference.schema.feature if f.name in checked)
    statistics = statistics_of(typed_frame(served.frame, served_schema, checked), served_schema, checked)
    anomalies = tfdv.validate_statistics(statistics, served_schema, environment=SERVING_ENVIRONMENT)
    return anomaly_measurements(anomalies, served.main_version)


def _output_measurements(cfg: PipelineConfig, served: ServedSpan, previous: Optional[ServedSpan]
                         ) -> Tuple[Dict[int, List[float]], Optional[List[float]], List[Measurement]]:
    current = shares_by_version(served.outputs, served.versions, cfg.num_classes)
    if previous is None:
        return {v: list(s) for v, s in current.items()}, None, []
    before = all_shares(previous.outputs, cfg.num_classes)
    counts = served.version_counts()
    least = cfg.monitoring.min_version_rows
    out = []
    for version, distance in output_drift(current, before).items():
        enough = counts[version] >= least
        out.append(Measurement(
            "output_drift", "predicted_class", "l_infinity", distance,
            cfg.monitoring.max_output_drift if enough else None,
            threshold_source="monitoring.max_output_drift" if enough else "",
            model_version=version,
            detail="" if enough else f"{counts[version]} rows < monitoring.min_version_rows {least}"))
    return {v: list(s) for v, s in current.items()}, list(before), out


def _labelled_measurements(cfg: PipelineConfig, log_dir: str, served: ServedSpan
                           ) -> Tuple[List[Dict[str, Any]], List[Measurement]]:
    scores = labelled_scores(cfg, log_dir, served)
    floor, least = accuracy_floor(cfg), cfg.monitoring.min_version_rows
    source = ("monitoring.min_labelled_accuracy" if cfg.monitoring.min_labelled_accuracy is not None
              else "evaluation.min_accuracy")
    out = []
    for score in scores.values():
        enough = score.rows >= least
        out.append(Measurement(
            "labelled_accuracy", "label", "accuracy", score.accuracy, floor if enough else None,
            direction=BELOW, threshold_source=source if enough else "", model_version=score.version,
            detail=f"{score.correct}/{score.rows} labelled rows correct"
                   + ("" if enough else f"; fewer than monitoring.min_version_rows {least}")))
    return [s.to_json() for s in scores.values()], out


def _health_measurements(cfg: PipelineConfig, metrics_text: str, source: str
                         ) -> Tuple[List[Dict[str, Any]], List[Measurement]]:
    health = version_health(metrics_text, cfg.serving.model_name, source)
    out = []
    for h in health.values():
        if h.requests:
            out.append(Measurement("error_rate", "requests", "error_rate", h.error_rate,
                                   cfg.monitoring.max_error_rate,
                                   threshold_source="monitoring.max_error_rate", model_version=h.version,
                                   detail=f"{h.server_errors} 5xx, {h.client_errors} 4xx of "
                                          f"{h.requests} requests"))
        if h.p99_latency_ms is not None:
            out.append(Measurement("p99_latency", "requests", "p99_latency_ms", h.p99_latency_ms,
                                   cfg.monitoring.max_p99_latency_ms,
                                   threshold_source="monitoring.max_p99_latency_ms",
                                   model_version=h.version))
    return [h.to_json() for h in health.values()], out


def check_span(cfg: PipelineConfig, span: Optional[int] = None, metrics_text: Optional[str] = None,
               metrics_source: str = "", now: Optional[float] = None,
               reference: Optional[Reference] = None) -> CheckResult:
    """Checks span ``span`` (default: the newest closed one) of the config's request log.

    ``metrics_text``: the gateway's ``/metrics`` text (None: no health figures).
    ``reference``: a loaded ``monitoring.reference.Reference`` to reuse.
    """
    log_dir = locations.request_log_dir(cfg)
    model = cfg.serving.model_name
    span = choose_span(log_dir, cfg.serving.request_log_window_seconds, span, now)
    columns = logged_columns(cfg)
    served = read_span(log_dir, span, model, columns)
    previous = previous_span(log_dir, span, model, columns,
                             skip=incident_spans(read_checks(cfg), cfg.retraining.incident_measures))
    if reference is None:
        reference = load_reference(cfg, tfdv.load_schema_text(cfg.schema_path))
    measurements = _feature_measurements(reference, served, previous,
                                         cfg.monitoring.max_missing_fraction_shift)
    measurements += _schema_measurements(reference, served, columns)
    shares, before, outputs = _output_measurements(cfg, served, previous)
    labelled, accuracy = _labelled_measurements(cfg, log_dir, served)
    health: List[Dict[str, Any]] = []
    if metrics_text is not None:
        health, software = _health_measurements(cfg, metrics_text, metrics_source or "metrics")
        measurements += software
    measurements += outputs + accuracy
    return CheckResult(
        model=model, span=span, previous_span=previous.span if previous is not None else None,
        rows=len(served), versions=served.version_counts(), main_version=served.main_version,
        checked_ms=int((time.time() if now is None else now) * 1000), thresholds=reference.thresholds,
        class_names=list(cfg.class_names), output_shares=shares, previous_shares=before,
        labelled=labelled, health=health, health_source=metrics_source if metrics_text is not None else "",
        measurements=measurements)


def record_check(cfg: PipelineConfig, result: CheckResult) -> Dict[str, str]:
    """Files a check: ML Metadata, ``alerts.jsonl``, ``checks/span-<N>.json``, ``monitoring.prom``.

    Returns {what: path}. Sets ``result.metadata`` to the ML Metadata ids.
    """
    directory = locations.alerts_dir(cfg)
    check_path = locations.check_file(directory, result.span)
    store = locations.metadata_path(cfg)
    alerts = result.alerts
    result.metadata = record_in_metadata(
        store, model=result.model, span=result.span,
        span_uri=request_log.span_dir(locations.request_log_dir(cfg), result.span), rows=result.rows,
        previous_span=result.previous_span, versions=list(result.versions),
        main_version=result.main_version, alerts=alerts, thresholds=result.thresholds,
        check_file=check_path)
    paths = {"metadata": store}
    records = [alert_record(alert, result.span, result.model, result.checked_ms,
                            {"mlmd_execution_id": result.metadata["execution_id"],
                             "mlmd_artifact_id": artifact_id})
               for alert, artifact_id in zip(alerts, result.metadata["alert_artifact_ids"])]
    if records:
        paths["alerts"] = append_alerts(directory, records)
    os.makedirs(os.path.dirname(check_path), exist_ok=True)
    with open(check_path, "w", encoding="utf-8") as f:
        json.dump(result.to_json(), f, indent=1, sort_keys=True)
        f.write("\n")
    paths["check"] = check_path
    paths["textfile"] = write_textfile(directory, render_textfile(
        result.model, result.span, result.rows, result.checked_ms / 1000.0, result.measurements))
    return paths


def incident_alerts(check: CheckResult, incident_measures: Sequence[str]) -> List[str]:
    """The alerts of ``check`` that make its span a data incident, described.

    A data incident is a broken upstream, not a changed world (``monitoring.retraining``):
    a schema alert (an anomaly in the SERVING environment) or an alert of a measure in
    ``incident_measures`` (``retraining.incident_measures``; default: missing-value shifts).
    """
    return [f"{a.comparator} {a.feature} {a.measure}" + (f" ({a.detail})" if a.detail else "")
            for a in check.alerts
            if a.comparator == "schema" or a.measure in incident_measures]


def incident_spans(checks: Sequence[CheckResult], incident_measures: Sequence[str]) -> Set[int]:
    """The spans whose recorded check makes them a data incident (``incident_alerts``)."""
    return {c.span for c in checks if incident_alerts(c, incident_measures)}


def read_checks(cfg: PipelineConfig) -> List[CheckResult]:
    """Every recorded check of the config (the last of each span), oldest span first."""
    directory = os.path.join(locations.alerts_dir(cfg), locations.CHECKS_DIR)
    if not os.path.isdir(directory):
        return []
    results = []
    for name in os.listdir(directory):
        if name.startswith("span-") and name.endswith(".json"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                results.append(CheckResult.from_json(json.load(f)))
    return sorted(results, key=lambda r: r.span)


def describe(m: Measurement) -> str:
    """One line for a measurement: what, value, threshold and where it came from."""
    version = "" if m.model_version is None else f" version {m.model_version}"
    if m.threshold is None:
        limit = "no threshold"
    else:
        limit = f"{'>' if m.direction == 'above' else '<'} {m.threshold:.4g} ({m.threshold_source})"
    detail = f"; {m.detail}" if m.detail else ""
    return f"{m.comparator} {m.feature} {m.measure} {m.value:.4g} {limit}{version}{detail}"


def summary(result: CheckResult, seconds: float) -> str:
    """What the CLI prints: the span, what it was compared with, and each alert."""
    previous = "none" if result.previous_span is None else str(result.previous_span)
    lines = [f"span {result.span} of model {result.model}: {result.rows} rows, versions "
             f"{result.versions}; previous span {previous}; checked in {seconds:.1f} s",
             f"thresholds: {result.thresholds}",
             f"{len(result.measurements)} measurements, {len(result.alerts)} alerts"]
    lines += [f"  ALERT {describe(m)}" for m in result.alerts]
    if result.metadata:
        lines.append(f"ML Metadata: execution {result.metadata['execution_id']}, span artifact "
                     f"{result.metadata['span_artifact_id']}, alert artifacts "
                     f"{result.metadata['alert_artifact_ids']}")
    return "\n".join(lines)
