"""``monitoring check`` on synthetic spans written by the gateway's own request-log writer.

Three spans of 300 taxi rows: span 10 and span 11 drawn from the history's
distribution, span 12 shifted (``testing.served_spans.shifted``) with outputs
all predicting class 0 and adversarial feedback labels. Thresholds come from a
calibration sidecar (``testing.served_spans.TEST_THRESHOLDS``) set well above
the null distances of such spans and far below the shift's, so which alerts
fire is decided by the data, not by chance.
"""
import json
import os
import shutil

import pytest
import tensorflow_data_validation as tfdv

from common.loader import load_config
from monitoring import locations
from monitoring.check import check_span, read_checks, record_check
from monitoring.cli import main
from monitoring.health import parse_samples
from monitoring.history import load_history
from monitoring.metadata import ALERT_TYPE, CHECK_TYPE, SPAN_TYPE, VERSION_TYPE, open_store
from monitoring.reference import load_reference, served_features
from monitoring.retraining import decide
from serving.feedback.store import LabelRecord, LabelStore
from serving.metrics import Metrics
from testing.served_spans import (
    TEST_THRESHOLDS,
    label_for,
    outputs_for,
    shifted,
    taxi_rows,
    write_calibration_for,
    write_span,
)
from tests.conftest import TAXI_CONFIG

ROWS = 300
SAME, DRIFTED = 11, 12
EXPECTED_DRIFT_ALERTS = {
    ("skew", "payment_type", "l_infinity"), ("drift", "payment_type", "l_infinity"),
    ("skew", "fare", "jensen_shannon"), ("drift", "fare", "jensen_shannon"),
    ("skew", "company", "missing_fraction"), ("drift", "company", "missing_fraction"),
    # TFDV measures skew of a feature absent from the span as an empty distribution (L-infinity =
    # the reference's top share), drift not at all: the missing shift covers both.
    ("skew", "company", "l_infinity"),
    ("schema", "trip_start_hour", "INT_TYPE_BIG_INT"),
    # the curated schema's presence floor for company (min_fraction 0.4), TFDV's own check
    ("schema", "company", "FEATURE_TYPE_NOT_PRESENT"),
    ("output_drift", "predicted_class", "l_infinity"),
    ("labelled_accuracy", "label", "accuracy"),
    ("error_rate", "requests", "error_rate"),
}


def metrics_text():
    """The gateway's /metrics after 100 good and 3 failed requests to version 1 (error rate
    3/103 above 0.01, p99 in the 2.5-5 ms bucket, well under 1 s)."""
    metrics = Metrics()
    for _ in range(100):
        metrics.observe("taxi", "1", "predict", 200, 0.004)
    for _ in range(3):
        metrics.observe("taxi", "1", "predict", 503, 0.004)
    metrics.observe("other-model", "1", "predict", 500, 9.0)
    return metrics.render()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitoring_check")
    log_dir = str(root / "log")
    overrides = [f"serving.request_log_dir={log_dir}", f"run_dir={root}/runs",
                 f"monitoring.calibration={root}/calibration/calibration.json"]
    cfg = load_config(TAXI_CONFIG, overrides)
    schema = tfdv.load_schema_text(cfg.schema_path)
    features = served_features(cfg, schema)
    write_calibration_for(str(root / "calibration"), cfg, schema, load_history(cfg, schema, features),
                          features, ROWS)
    spans = {}
    for span, seed in ((10, 1), (SAME, 2), (DRIFTED, 3)):
        rows, _ = taxi_rows(cfg, ROWS, seed)
        rows = shifted(rows) if span == DRIFTED else rows
        outputs = outputs_for(ROWS, seed, positive_share=0.0 if span == DRIFTED else None)
        ids = write_span(log_dir, cfg, span, rows, outputs, [1] * ROWS, f"s{span}")
        spans[span] = (rows, outputs, ids)
    # Feedback for the first 100 rows of both later spans: right answers for span 11,
    # wrong ones for span 12 (each row labelled with the class it was not predicted).
    store = LabelStore(log_dir)
    for span in (SAME, DRIFTED):
        rows, outputs, ids = spans[span]
        store.append([(span, LabelRecord(ids[i], 0, label_for(cfg, rows[i], (outputs[i][0] > 0.5) == (span == SAME)),
                                         "taxi", 1)) for i in range(100)])
    reference = load_reference(cfg, schema)
    results = {span: check_span(cfg, span, metrics_text() if span == DRIFTED else None, "metrics.txt",
                                reference=reference)
               for span in (SAME, DRIFTED)}
    return cfg, spans, results


def alert_keys(result):
    return {(a.comparator, a.feature, a.measure) for a in result.alerts}


def test_a_drifted_span_raises_exactly_the_expected_alerts(setup):
    cfg, spans, results = setup
    result = results[DRIFTED]
    assert (result.span, result.previous_span, result.rows, result.versions) == (DRIFTED, SAME, ROWS, {1: ROWS})
    assert alert_keys(result) == EXPECTED_DRIFT_ALERTS
    assert all(a.model_version == 1 for a in result.alerts)
    by_key = {(a.comparator, a.feature, a.measure): a for a in result.alerts}
    assert by_key[("skew", "company", "missing_fraction")].value > 0.5  # all missing vs ~1/3 in history
    assert by_key[("skew", "payment_type", "l_infinity")].threshold_source == "calibration"
    # every row predicted class 0 now; span 11's outputs were uniform in [0, 1]
    previous_positive = sum(o[0] > 0.5 for o in spans[SAME][1]) / ROWS
    assert by_key[("output_drift", "predicted_class", "l_infinity")].value == pytest.approx(previous_positive)
    accuracy = by_key[("labelled_accuracy", "label", "accuracy")]
    assert (accuracy.value, accuracy.threshold, accuracy.direction) == (0.0, cfg.evaluation.min_accuracy, "below")
    assert by_key[("error_rate", "requests", "error_rate")].value == pytest.approx(3 / 103)
    latency = next(m for m in result.measurements if m.comparator == "p99_latency")
    assert 2.5 < latency.value <= 5.0 and not latency.alarmed  # another model's slow requests not counted


def test_a_same_distribution_span_raises_none(setup):
    _, _, results = setup
    result = results[SAME]
    assert result.alerts == []
    measured = {(m.comparator, m.feature, m.measure) for m in result.measurements
                if m.comparator in ("skew", "drift")}
    features = {f for _, f, _ in measured}
    assert len(features) == 12 and "dropoff_latitude" not in features  # dropped by sensitive_features
    assert len(measured) == 2 * 2 * 12  # skew and drift, a distance and a missing shift per feature
    assert all(m.threshold == TEST_THRESHOLDS[m.measure] for m in result.measurements
               if m.comparator in ("skew", "drift"))
    [accuracy] = [m for m in result.measurements if m.comparator == "labelled_accuracy"]
    assert accuracy.value == 1.0 and accuracy.detail.startswith("100/100")
    assert result.health == []  # no metrics given


def test_per_version_figures_need_min_version_rows(tmp_path):
    cfg = load_config(TAXI_CONFIG, [f"serving.request_log_dir={tmp_path}/log", f"run_dir={tmp_path}/runs",
                                    "monitoring.max_output_drift=0.2"])
    rows, _ = taxi_rows(cfg, 120, 5)
    write_span(f"{tmp_path}/log", cfg, 1, rows[:60], outputs_for(60, 0, 0.5), [1] * 60, "a")
    # span 2: version 1 keeps answering half positive, a 10-row canary answers all positive
    write_span(f"{tmp_path}/log", cfg, 2, rows[60:], outputs_for(50, 0, 0.5) + outputs_for(10, 0, 1.0),
               [1] * 50 + [2] * 10, "b")
    result = check_span(cfg, 2)
    drift = {m.model_version: m for m in result.measurements if m.comparator == "output_drift"}
    assert drift[1].value == pytest.approx(0.0) and drift[1].threshold == 0.2
    assert drift[2].value == pytest.approx(0.5) and drift[2].threshold is None
    assert "10 rows < monitoring.min_version_rows 50" in drift[2].detail
    assert result.output_shares == {1: [0.5, 0.5], 2: [0.0, 1.0]} and result.main_version == 1


def test_record_writes_alert_lines_ml_metadata_and_prometheus_gauges(setup):
    cfg, _, results = setup
    result = results[DRIFTED]
    paths = record_check(cfg, result)
    directory = locations.alerts_dir(cfg)
    assert paths["alerts"] == os.path.join(directory, "alerts.jsonl")
    with open(paths["alerts"]) as f:
        lines = [json.loads(line) for line in f]
    assert {(r["comparator"], r["feature"], r["measure"]) for r in lines} == EXPECTED_DRIFT_ALERTS
    line = next(r for r in lines if r["feature"] == "payment_type" and r["comparator"] == "skew")
    assert {k: line[k] for k in ("span", "model", "model_version", "threshold", "direction")} == {
        "span": DRIFTED, "model": "taxi", "model_version": 1, "threshold": 0.15, "direction": "above"}
    assert line["value"] > 0.15 and line["mlmd_execution_id"] == result.metadata["execution_id"]

    store = open_store(paths["metadata"])
    [execution] = store.get_executions_by_type(CHECK_TYPE)
    assert execution.id == result.metadata["execution_id"]
    assert {k: v.int_value for k, v in execution.properties.items() if k in ("span", "alerts", "model_version")} \
        == {"span": DRIFTED, "alerts": len(EXPECTED_DRIFT_ALERTS), "model_version": 1}
    alerts = store.get_artifacts_by_type(ALERT_TYPE)
    assert sorted(a.id for a in alerts) == sorted(r["mlmd_artifact_id"] for r in lines)
    stored = {(a.properties["comparator"].string_value, a.properties["feature"].string_value,
               a.properties["measure"].string_value) for a in alerts}
    assert stored == EXPECTED_DRIFT_ALERTS
    [span] = store.get_artifacts_by_type(SPAN_TYPE)
    assert span.name == "taxi/span-12" and span.properties["rows"].int_value == ROWS
    events = store.get_events_by_execution_ids([execution.id])
    assert {(e.artifact_id, e.type) for e in events} == (
        {(span.id, 3)} | {(a.id, 4) for a in alerts})  # INPUT = 3, OUTPUT = 4
    [version] = store.get_contexts_by_type(VERSION_TYPE)
    assert version.name == "taxi/version-1"
    assert [e.id for e in store.get_executions_by_context(version.id)] == [execution.id]
    assert {a.id for a in store.get_artifacts_by_context(version.id)} == {span.id} | {a.id for a in alerts}

    with open(paths["textfile"]) as f:
        samples = list(parse_samples(f.read(), "monitoring.prom"))
    flags = {(s[1]["comparator"], s[1]["feature"], s[1]["measure"]): s[2] for s in samples
             if s[0] == "monitoring_alert"}
    assert {key for key, value in flags.items() if value == 1.0} == EXPECTED_DRIFT_ALERTS
    assert flags[("skew", "trip_miles", "jensen_shannon")] == 0.0
    singles = {s[0]: s[2] for s in samples if s[0] in ("monitoring_alerts", "monitoring_span")}
    assert singles == {"monitoring_alerts": len(EXPECTED_DRIFT_ALERTS), "monitoring_span": DRIFTED}
    assert read_checks(cfg)[-1].metadata["alert_artifact_ids"] == result.metadata["alert_artifact_ids"]


def test_cli_check_exits_1_on_alerts_and_the_report_renders_every_section(setup, tmp_path, capsys):
    cfg, _, _ = setup
    metrics = tmp_path / "metrics.txt"
    metrics.write_text(metrics_text())
    overrides = ["--set", f"serving.request_log_dir={cfg.serving.request_log_dir}",
                 "--set", f"run_dir={cfg.run_dir}", "--set", f"monitoring.calibration={cfg.monitoring.calibration}"]
    assert main(["check", "--config", TAXI_CONFIG, *overrides, "--span", str(SAME)]) == 0
    assert main(["check", "--config", TAXI_CONFIG, *overrides, "--metrics-file", str(metrics)]) == 1  # newest
    out = capsys.readouterr().out
    assert f"span {DRIFTED} of model taxi: {ROWS} rows" in out
    assert out.count("ALERT ") == len(EXPECTED_DRIFT_ALERTS) and "ML Metadata: execution" in out
    report = tmp_path / "monitoring.html"
    assert main(["report", "--config", TAXI_CONFIG, *overrides, "--out", str(report)]) == 0
    page = report.read_text()
    for heading in ("Alerts (", "Feature distances over spans", "Missing-value shifts over spans",
                    f"Top drifting features of span {DRIFTED}", "Predicted-class distribution over spans",
                    "Labelled accuracy over spans", "Gateway health", "ML Metadata"):
        assert heading in page, heading
    assert page.count("<img ") == 2 + 4 + 1 + 1  # distances, missing, 4 histograms, shares, accuracy
    assert "payment_type (distance / threshold" in page and "MonitoringCheck" in page


def test_check_errors_name_what_is_missing(tmp_path, capsys):
    overrides = ["--set", f"serving.request_log_dir={tmp_path}/log", "--set", f"run_dir={tmp_path}/runs"]
    assert main(["check", "--config", TAXI_CONFIG, *overrides]) == 2
    assert "no closed span in the request log yet" in capsys.readouterr().err
    assert main(["check", "--config", TAXI_CONFIG, *overrides, "--set", "monitoring.calibration=nowhere.json",
                 "--span", "1"]) == 2
    assert "no span 1 in the request log" in capsys.readouterr().err


def test_the_retraining_rule_reads_a_shifted_span_with_schema_alerts_as_a_data_incident(setup):
    """The rule on real check results: span 12's out-of-domain hours and vanished company are a
    broken upstream, kept out of the window; the rule reads span 11 instead."""
    cfg, _, results = setup
    decision = decide(cfg, [results[SAME], results[DRIFTED]], eval_accuracy_of=lambda version: 0.9)
    assert list(decision.incidents) == [DRIFTED]
    assert {reason.split(" (")[0] for reason in decision.incidents[DRIFTED]} == {
        "schema trip_start_hour INT_TYPE_BIG_INT", "schema company FEATURE_TYPE_NOT_PRESENT",
        "skew company missing_fraction", "drift company missing_fraction"}
    assert decision.window == [SAME] and decision.serving_version == 1
    accuracy = next(r for r in decision.rules if r.rule == "accuracy_drop")
    assert f"span {SAME}: labelled accuracy 1.0000 of version 1 (100/100)" in accuracy.detail
    assert not decision.retrain


def test_a_calibration_made_on_other_histograms_is_refused(tmp_path):
    """Thresholds read off 10-bucket histograms (sidecars before the count was recorded) do
    not hold for the distances of the 30-bucket statistics a check builds."""
    path = str(tmp_path / "calibration.json")
    cfg = load_config(TAXI_CONFIG, [f"monitoring.calibration={path}"])
    schema = tfdv.load_schema_text(cfg.schema_path)
    features = served_features(cfg, schema)
    write_calibration_for(str(tmp_path), cfg, schema, load_history(cfg, schema, features), features, ROWS)
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    del raw["histogram_buckets"]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(raw, f)
    with pytest.raises(ValueError, match="calibrated on 10-bucket histograms, checks build 30"):
        load_reference(cfg, schema)


def test_drift_skips_a_recorded_data_incident_and_compares_with_the_last_clean_span(setup, tmp_path):
    """After a broken-upstream span (12, recorded as a data incident), the next span's drift is
    measured against span 11, the last clean one: the recovery is not a shift, so the quarter
    after a fault is not an incident too."""
    cfg, _, results = setup
    log_dir = str(tmp_path / "log")
    shutil.copytree(cfg.serving.request_log_dir, log_dir)
    copy = load_config(TAXI_CONFIG, [f"serving.request_log_dir={log_dir}", f"run_dir={tmp_path}/runs",
                                     f"monitoring.calibration={cfg.monitoring.calibration}"])
    after = DRIFTED + 1
    rows, _ = taxi_rows(copy, ROWS, 4)
    write_span(log_dir, copy, after, rows, outputs_for(ROWS, 4), [1] * ROWS, f"s{after}")
    reference = load_reference(copy, tfdv.load_schema_text(copy.schema_path))

    unrecorded = check_span(copy, after, reference=reference)
    assert unrecorded.previous_span == DRIFTED  # nothing recorded: the closest span, as before
    assert ("drift", "company", "missing_fraction") in alert_keys(unrecorded)

    record_check(copy, results[DRIFTED])
    result = check_span(copy, after, reference=reference)
    assert result.previous_span == SAME
    assert not {key for key in alert_keys(result) if key[0] in ("drift", "schema")}
    assert not decide(copy, [results[SAME], results[DRIFTED], result]).incidents.get(after)
