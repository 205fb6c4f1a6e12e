"""Labelled served spans written as pipeline data spans: rows, columns, incidents, no rewrite."""
import csv
import os

import pytest

from common.loader import load_config
from common.paths import REPO_ROOT
from components.span_inputs import spans_on_disk
from pipeline.feedback_spans import FeedbackSpanError, export_span, export_window, span_directory
from pipeline.span_cutter import SPAN_FILE
from serving.feedback.store import LabelRecord, LabelStore
from testing.served_spans import label_for, outputs_for, taxi_rows, write_span

SPANS_CONFIG = os.path.join(REPO_ROOT, "configs", "taxi-spans.yaml")
HEADER = ["pickup_community_area", "fare", "trip_start_month", "trip_start_hour", "trip_start_day",
          "trip_start_timestamp", "pickup_latitude", "pickup_longitude", "dropoff_latitude",
          "dropoff_longitude", "trip_miles", "pickup_census_tract", "dropoff_census_tract", "payment_type",
          "company", "trip_seconds", "dropoff_community_area", "tips"]
LOG_SPAN = 7


@pytest.fixture()
def served(tmp_path):
    """A data directory with one span (the cut layout), and one logged span of 30 rows, 20 labelled."""
    os.makedirs(tmp_path / "data" / "span-1")
    with open(tmp_path / "data" / "span-1" / SPAN_FILE, "w", newline="") as f:
        csv.writer(f).writerow(HEADER)
    cfg = load_config(SPANS_CONFIG, [f"data.path={tmp_path}/data", f"run_dir={tmp_path}/runs",
                                     f"serving.request_log_dir={tmp_path}/log"])
    log_dir = str(tmp_path / "log")
    rows, tips = taxi_rows(cfg, 30, seed=3)
    ids = write_span(log_dir, cfg, LOG_SPAN, rows, outputs_for(30, 0), [1] * 30, "r")
    LabelStore(log_dir).append([(LOG_SPAN, LabelRecord(ids[i], 0, tips[i], cfg.serving.model_name, 1))
                                for i in range(20)])
    return cfg, rows, tips


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_labelled_span_becomes_a_csv_data_span_with_the_logged_features_and_the_label(served):
    cfg, rows, tips = served
    exported = export_span(cfg, LOG_SPAN, 9)
    assert exported.rows == 20 and exported.labelled_version == 1
    assert exported.path == os.path.join(cfg.data_path, "span-9", SPAN_FILE)
    written = _read(exported.path)
    assert list(written[0]) == HEADER  # the header of the spans on disk
    for row, original, tip in zip(written, rows, tips):
        assert float(row["tips"]) == pytest.approx(tip)
        assert float(row["fare"]) == pytest.approx(original["fare"])
        assert int(row["trip_start_timestamp"]) == original["trip_start_timestamp"]
        assert row["payment_type"] == original["payment_type"]
        # dropped by serving.sensitive_features, never logged: empty, as a missing value
        assert row["dropoff_latitude"] == "" and row["pickup_census_tract"] == ""
    # the pipeline's ExampleGen pattern sees the new span
    assert sorted(spans_on_disk(cfg.data_path, cfg.data.spans.pattern)) == [1, 9]
    assert label_for(cfg, rows[0], True) > 0  # (the fixture's labels are the real tips)


def test_a_data_span_is_never_rewritten(served):
    cfg, _, _ = served
    export_span(cfg, LOG_SPAN, 9)
    with pytest.raises(FeedbackSpanError, match="span-9: data span 9 exists"):
        export_span(cfg, LOG_SPAN, 9)


def test_a_span_without_labels_is_refused(served, tmp_path):
    cfg, _, _ = served
    rows, _ = taxi_rows(cfg, 5, seed=4)
    write_span(str(tmp_path / "log"), cfg, LOG_SPAN + 1, rows, outputs_for(5, 0), [1] * 5, "u")
    with pytest.raises(FeedbackSpanError, match="request-log span 8 .*0 labelled rows"):
        export_span(cfg, LOG_SPAN + 1, 10)
    assert not os.path.exists(span_directory(cfg, 10))


def test_the_window_skips_spans_on_disk_and_refuses_data_incidents(served):
    cfg, _, _ = served
    assert [e.data_span for e in export_window(cfg, [LOG_SPAN], {}, {LOG_SPAN: 9})] == [9]
    assert export_window(cfg, [LOG_SPAN], {}, {LOG_SPAN: 9}) == []  # already exported
    with pytest.raises(FeedbackSpanError, match="span 7 is a data incident"):
        export_window(cfg, [LOG_SPAN], {LOG_SPAN: ["skew company missing_fraction"]}, {LOG_SPAN: 11})
    assert not os.path.exists(span_directory(cfg, 11))
