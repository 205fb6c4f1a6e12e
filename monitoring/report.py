"""The monitoring report: the recorded checks of a config as one static HTML page.

Read back from what checks filed (``checks/span-<N>.json``, ``alerts.jsonl``),
so the page shows what the alerts and ML Metadata hold; only the histograms
re-read data: the training history and the newest checked span of the request
log, both in the monitoring view the distances were measured on.

Sections: the alerts; each feature's skew and drift distance over spans with
its threshold; the missing-value shifts likewise; the top drifting features of
the newest span with the reference's and the span's histograms side by side;
the predicted-class shares over spans; labelled accuracy over spans; the
gateway's health; and the ML Metadata ids of every check, span and alert.
"""
from __future__ import annotations

import datetime
import html
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import tensorflow_data_validation as tfdv

from common.config import PipelineConfig
from monitoring import locations, plots
from monitoring.alerts import read_alerts
from monitoring.check import CheckResult, read_checks
from monitoring.distances import is_categorical
from monitoring.frames import schema_feature
from monitoring.labelled import accuracy_floor
from monitoring.reference import load_reference, logged_columns
from monitoring.served import read_span

_DISTANCE_COMPARATORS = ("skew", "drift")
_STYLE = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
          "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 7px;"
          "font-size:13px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}"
          "img{display:block;margin:.5em 0;max-width:100%}.alert{color:#b00020;font-weight:bold}"
          "code{background:#f4f4f4;padding:0 3px}")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.4g}"


def _time(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 0) -> str:
    """A table; the first ``left`` columns left-aligned (names), the rest right-aligned."""
    def cell(tag: str, i: int, value: Any) -> str:
        return f"<{tag}{' class=l' if i < left else ''}>{value}</{tag}>"

    head = "".join(cell("th", i, _e(h)) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def alerts_section(alerts: List[Dict[str, Any]]) -> str:
    if not alerts:
        return "<h2>Alerts</h2><p>No alert raised by any check.</p>"
    rows = [[_e(a["span"]), _e("" if a.get("model_version") is None else a["model_version"]),
             _e(a["comparator"]), _e(a["feature"]), _e(a["measure"]),
             f"<span class=alert>{_number(a['value'])}</span>",
             f"{'&gt;' if a['direction'] == 'above' else '&lt;'} {_number(a['threshold'])}",
             _e(a["threshold_source"]), _e(a.get("detail", "")), _e(a.get("mlmd_execution_id", "")),
             _e(a.get("mlmd_artifact_id", "")), _e(_time(a["checked_ms"]))]
            for a in sorted(alerts, key=lambda a: (-a["span"], a["comparator"], a["feature"]))]
    return (f"<h2>Alerts ({len(alerts)})</h2>"
            + _table(["span", "version", "comparator", "feature", "measure", "value", "threshold",
                      "threshold from", "detail", "MLMD execution", "MLMD Alert artifact", "checked"],
                     rows, left=5))


def _panels(checks: Sequence[CheckResult], missing: bool) -> Dict[str, Dict[str, Tuple[List[int], List[float],
                                                                                     Optional[float]]]]:
    panels: Dict[str, Dict[str, Tuple[List[int], List[float], Optional[float]]]] = {}
    for check in checks:
        for m in check.measurements:
            if m.comparator not in _DISTANCE_COMPARATORS or (m.measure == "missing_fraction") != missing:
                continue
            name = m.feature if missing else f"{m.feature} ({m.measure.replace('_', ' ')})"
            spans, values, _ = panels.setdefault(name, {}).get(m.comparator, ([], [], None))
            panels[name][m.comparator] = (spans + [check.span], values + [m.value], m.threshold)
    return panels


def distances_section(checks: Sequence[CheckResult]) -> str:
    parts = ["<h2>Feature distances over spans</h2>",
             "<p>TFDV's distance of each served span to the training history (skew) and to the "
             "previous span (drift); dashed: the threshold of the newest check.</p>"]
    distances = _panels(checks, missing=False)
    if distances:
        parts.append(plots.distances_over_spans(distances, "distance"))
    # Only features whose missing share ever moved: a panel of zeros says nothing.
    missing = {name: lines for name, lines in _panels(checks, missing=True).items()
               if any(v > 0 for _, values, _ in lines.values() for v in values)}
    if missing:
        parts += ["<h3>Missing-value shifts over spans</h3>",
                  "<p>|missing share of the span − of the baseline| per feature.</p>",
                  plots.distances_over_spans(missing, "missing share shift")]
    return "".join(parts)


def _top_features(check: CheckResult, top: int) -> List[Tuple[str, float]]:
    """Features ranked by their largest distance relative to its threshold (or the bare distance)."""
    scores: Dict[str, float] = {}
    for m in check.measurements:
        if m.comparator in _DISTANCE_COMPARATORS:
            score = m.value / m.threshold if m.threshold else m.value
            scores[m.feature] = max(scores.get(m.feature, 0.0), score)
    return sorted(scores.items(), key=lambda item: -item[1])[:top]


def histograms_section(cfg: PipelineConfig, check: CheckResult, top: int) -> str:
    ranked = _top_features(check, top)
    if not ranked:
        return ""
    schema = tfdv.load_schema_text(cfg.schema_path)
    reference = load_reference(cfg, schema)
    try:
        served = read_span(locations.request_log_dir(cfg), check.span, check.model, logged_columns(cfg))
    except (ValueError, OSError) as err:
        return f"<h2>Top drifting features</h2><p>Span {check.span} can no longer be read: {_e(err)}</p>"
    view = reference.view(served.frame)
    parts = [f"<h2>Top drifting features of span {check.span}</h2>",
             "<p>Ranked by distance over threshold; the training history (reference) and the span, "
             "as the distances saw them (numeric features clipped to the history's central range).</p>"]
    for feature, score in ranked:
        if feature not in view.columns:
            continue
        categorical = is_categorical(schema_feature(schema, feature))
        parts.append(f"<h3>{_e(feature)} (distance / threshold {score:.3g})</h3>")
        parts.append(plots.histograms(feature, reference.history[feature], view[feature], categorical,
                                      f"span {check.span}"))
    return "".join(parts)


def _overall_shares(check: CheckResult) -> List[float]:
    total = sum(check.versions.get(v, 0) for v in check.output_shares) or 1
    width = len(check.class_names)
    return [sum(shares[k] * check.versions.get(v, 0) for v, shares in check.output_shares.items()) / total
            for k in range(width)]


def outputs_section(checks: Sequence[CheckResult]) -> str:
    if not checks:
        return ""
    drift = [[_e(c.span), _e(m.model_version), _number(m.value), _number(m.threshold)]
             for c in checks for m in c.measurements if m.comparator == "output_drift"]
    table = _table(["span", "version", "L-infinity vs previous span", "threshold"], drift) if drift else ""
    return ("<h2>Predicted-class distribution over spans</h2>"
            + plots.shares_over_spans([c.span for c in checks], [_overall_shares(c) for c in checks],
                                      checks[-1].class_names)
            + table)


def accuracy_section(cfg: PipelineConfig, checks: Sequence[CheckResult]) -> str:
    series: Dict[str, Tuple[List[int], List[float]]] = {}
    rows = []
    for check in checks:
        for score in check.labelled:
            if not score["rows"]:
                continue
            spans, values = series.setdefault(f"version {score['version']}", ([], []))
            spans.append(check.span)
            values.append(score["accuracy"])
            rows.append([_e(check.span), _e(score["version"]), _e(score["rows"]), _e(score["correct"]),
                         _number(score["accuracy"])])
    if not series:
        return "<h2>Labelled accuracy</h2><p>No feedback label joined to a checked span yet.</p>"
    return ("<h2>Labelled accuracy over spans</h2>"
            + plots.accuracy_over_spans(series, accuracy_floor(cfg))
            + _table(["span", "version", "labelled rows", "correct", "accuracy"], rows))


def health_section(checks: Sequence[CheckResult]) -> str:
    rows = [[_e(c.span), _e(h["version"]), _e(h["requests"]), _e(h["server_errors"]), _e(h["client_errors"]),
             _number(h["error_rate"]), _number(h["p99_latency_ms"]), _e(c.health_source)]
            for c in checks for h in c.health]
    if not rows:
        return ""
    return ("<h2>Gateway health</h2><p>Counts since the gateway started, read at each check.</p>"
            + _table(["span", "version", "requests", "5xx", "4xx", "error rate", "p99 latency (ms)",
                      "read from"], rows))


def metadata_section(cfg: PipelineConfig, checks: Sequence[CheckResult]) -> str:
    rows = []
    for c in reversed(checks):
        ids = c.metadata or {}
        contexts = ", ".join(f"{v}: {i}" for v, i in sorted((ids.get("version_context_ids") or {}).items()))
        rows.append([_e(c.span), _e(c.rows), _e(", ".join(f"{v} ({n} rows)" for v, n in c.versions.items())),
                     _e(ids.get("execution_id", "")), _e(ids.get("span_artifact_id", "")), _e(contexts),
                     _e(len(c.alerts)), _e(ids.get("alert_artifact_ids", [])), _e(_time(c.checked_ms))])
    return (f"<h2>ML Metadata</h2><p>Store: <code>{_e(locations.metadata_path(cfg))}</code>. Each check is a "
            "<code>MonitoringCheck</code> execution, its span a <code>ServingSpan</code> artifact (input), "
            "its alerts <code>Alert</code> artifacts (outputs); <code>ModelVersion</code> contexts "
            "(named <code>&lt;model&gt;/version-&lt;V&gt;</code>) group them per version.</p>"
            + _table(["span", "rows", "versions", "execution id", "ServingSpan id", "ModelVersion context ids",
                      "alerts", "Alert ids", "checked"], rows))


def render(cfg: PipelineConfig, top: int = 4) -> str:
    """The whole page."""
    checks = read_checks(cfg)
    title = f"Monitoring report: {cfg.name} (model {cfg.serving.model_name})"
    sections = [f"<h1>{_e(title)}</h1>"]
    if not checks:
        sections.append("<p>No check recorded yet: run <code>python -m monitoring check --config "
                        f"{_e(cfg.source_file)}</code>.</p>")
    else:
        newest = checks[-1]
        sections.append(f"<p>{len(checks)} checked spans ({checks[0].span} … {newest.span}); the newest, "
                        f"span {newest.span}, has {newest.rows} rows and {len(newest.alerts)} alerts. "
                        f"Thresholds: {_e(newest.thresholds)}.</p>")
        sections += [alerts_section(read_alerts(locations.alerts_dir(cfg))), distances_section(checks),
                     histograms_section(cfg, newest, top), outputs_section(checks),
                     accuracy_section(cfg, checks), health_section(checks), metadata_section(cfg, checks)]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(s for s in sections if s)}</body></html>")


def write_report(cfg: PipelineConfig, path: str, top: int = 4) -> str:
    """Writes the report to ``path`` and returns it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(cfg, top))
    return path
