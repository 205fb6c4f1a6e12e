"""Spans: the quarterly cutter, spans on disk, the time split, the backfill window and config errors."""
import calendar
import csv
import json
import os

import pytest
from tfx.types import standard_artifacts
from tfx.types.artifact_utils import decode_split_names

from common.config import ConfigError
from common.loader import load_config
from common.paths import REPO_ROOT
from components.span_inputs import spans_on_disk
from components.time_split import SpanWindowError, split_by_time
from pipeline.span_backfill import SpanDataError, fingerprint, window_spans
from pipeline.span_cutter import SpanCutError, cut_spans

SPANS_CONFIG = os.path.join(REPO_ROOT, "configs", "taxi-spans.yaml")
HEADER = ["fare", "trip_start_timestamp", "payment_type"]


def _ts(year, month, day=15):
    return str(calendar.timegm((year, month, day, 12, 0, 0)))


def _write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header] + rows)
    return str(path)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_cutter_makes_one_span_per_quarter_counting_from_the_first(tmp_path):
    rows = [["1.0", _ts(2013, 2), "Cash"], ["2.0", _ts(2013, 8), "Cash"], ["3.0", "", "Cash"],
            ["4.0", _ts(2014, 1, 1), "Credit Card"], ["5.0", _ts(2013, 3, 31), "Cash"]]
    spans, undated = cut_spans([_write_csv(tmp_path / "in.csv", rows)], str(tmp_path / "out"),
                               "trip_start_timestamp")
    assert [(s.number, s.quarter, s.rows) for s in spans] == [(1, "2013Q1", 2), (3, "2013Q3", 1),
                                                              (5, "2014Q1", 1)]
    assert undated == 1  # the row without a timestamp belongs to no span
    assert sorted(os.listdir(tmp_path / "out")) == ["span-1", "span-3", "span-5"]
    assert _read_csv(tmp_path / "out" / "span-1" / "data.csv") == [HEADER, rows[0], rows[4]]
    assert _read_csv(tmp_path / "out" / "span-5" / "data.csv") == [HEADER, rows[3]]


def test_cutter_errors_name_file_line_and_column(tmp_path):
    bad = _write_csv(tmp_path / "bad.csv", [["1.0", _ts(2013, 2), "Cash"], ["2.0", "yesterday", "Cash"]])
    with pytest.raises(SpanCutError, match=r"bad.csv:3: column 'trip_start_timestamp': expected epoch "
                                           r"seconds, got 'yesterday'"):
        cut_spans([bad], str(tmp_path / "out"), "trip_start_timestamp")
    with pytest.raises(SpanCutError, match="no column 'pickup_time'"):
        cut_spans([bad], str(tmp_path / "out2"), "pickup_time")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.txt").write_text("x")
    with pytest.raises(SpanCutError, match="not empty"):
        cut_spans([bad], str(tmp_path / "full"), "trip_start_timestamp")


def _span_dirs(root, spans, rows=1):
    for span in spans:
        os.makedirs(root / f"span-{span}", exist_ok=True)
        _write_csv(root / f"span-{span}" / "data.csv", [["1.0", _ts(2013, 2), "Cash"]] * rows)


def test_spans_on_disk_reads_span_numbers_from_the_pattern(tmp_path):
    _span_dirs(tmp_path, [1, 12, 3])
    os.makedirs(tmp_path / "span-x")
    (tmp_path / "span-x" / "data.csv").write_text("a\n")
    (tmp_path / "notes.csv").write_text("a\n")
    found = spans_on_disk(str(tmp_path), "span-{SPAN}/*")
    assert sorted(found) == [1, 3, 12]
    assert found[12] == [str(tmp_path / "span-12" / "data.csv")]
    assert sorted(spans_on_disk(str(tmp_path), "span-{SPAN}/*.tsv")) == []
    os.makedirs(tmp_path / "v" / "span-4" / "version-2")
    _write_csv(tmp_path / "v" / "span-4" / "version-2" / "data.csv", [])
    assert list(spans_on_disk(str(tmp_path / "v"), "span-{SPAN}/version-{VERSION}/*")) == [4]


def _config(tmp_path, *overrides):
    return load_config(SPANS_CONFIG, [f"data.path={tmp_path}", *overrides])


def test_backfill_window_is_the_train_spans_before_the_newest(tmp_path):
    _span_dirs(tmp_path, [3, 5, 6, 7])
    assert window_spans(_config(tmp_path, "data.spans.train_spans=2")) == ([5, 6], 7)
    assert window_spans(_config(tmp_path, "data.spans.train_spans=8")) == ([3, 5, 6], 7)
    # TFX's own fingerprint of a span: changes when its files do
    cfg = _config(tmp_path)
    before = fingerprint(cfg, 5)
    assert before.startswith("split:span,num_files:1") and before == fingerprint(cfg, 5)
    _write_csv(tmp_path / "span-5" / "data.csv", [["1.0", _ts(2013, 2), "Cash"]] * 3)
    assert fingerprint(cfg, 5) != before


def test_backfill_needs_two_spans_in_the_window(tmp_path):
    _span_dirs(tmp_path, [7])
    with pytest.raises(SpanDataError, match=r"at least 2 spans .* found \[7\] .* 'span-\{SPAN\}/\*'"):
        window_spans(_config(tmp_path))
    _span_dirs(tmp_path, [1])
    with pytest.raises(SpanDataError, match=r"no span to train on within data.spans.train_spans \(2\)"):
        window_spans(_config(tmp_path, "data.spans.train_spans=2"))


def _span_artifact(root, artifact_id, span, version=None, files=("part-0.gz",)):
    artifact = standard_artifacts.Examples()
    artifact.uri = str(root / f"examples-{artifact_id}")
    artifact.id = artifact_id
    artifact.split_names = json.dumps(["span"])
    artifact.set_int_custom_property("span", span)
    if version is not None:
        artifact.set_int_custom_property("version", version)
    artifact.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    os.makedirs(os.path.join(artifact.uri, "Split-span"))
    for name in files:
        with open(os.path.join(artifact.uri, "Split-span", name), "w") as f:
            f.write(f"{artifact_id}")
    return artifact


def test_time_split_evaluates_on_the_newest_span_and_trains_on_the_rest(tmp_path):
    spans = [_span_artifact(tmp_path, 1, 13), _span_artifact(tmp_path, 2, 14),
             _span_artifact(tmp_path, 3, 15, files=("a.gz", "b.gz")),
             _span_artifact(tmp_path, 4, 14)]  # span 14 ingested again: its newest artifact counts
    out = standard_artifacts.Examples()
    out.uri = str(tmp_path / "out")
    split_by_time(spans, out)
    assert decode_split_names(out.split_names) == ["train", "eval"] and out.span == 15
    assert sorted(os.listdir(tmp_path / "out" / "Split-train")) == ["span-13-part-0.gz", "span-14-part-0.gz"]
    assert (tmp_path / "out" / "Split-train" / "span-14-part-0.gz").read_text() == "4"
    assert sorted(os.listdir(tmp_path / "out" / "Split-eval")) == ["span-15-a.gz", "span-15-b.gz"]
    assert out.get_string_custom_property("train_spans") == "13,14"
    assert out.get_int_custom_property("eval_span") == 15
    assert json.loads(out.get_string_custom_property("span_versions"))["14"] == {"version": -1, "artifact_id": 4}
    assert out.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"


def test_time_split_prefers_the_highest_version_and_needs_two_spans(tmp_path):
    spans = [_span_artifact(tmp_path, 1, 5, version=2), _span_artifact(tmp_path, 2, 5, version=1),
             _span_artifact(tmp_path, 3, 6, version=0)]
    out = standard_artifacts.Examples()
    out.uri = str(tmp_path / "out")
    split_by_time(spans, out)
    assert (tmp_path / "out" / "Split-train" / "span-5-part-0.gz").read_text() == "1"
    with pytest.raises(SpanWindowError, match=r"at least 2 spans .* span\(s\) \[6\]"):
        split_by_time([spans[2]], out)


@pytest.mark.parametrize("overrides, key, expected", [
    (["data.spans.pattern=span-*/data.csv"], "data.spans.pattern", "one {SPAN}"),
    (["data.spans.pattern=span-{SPAN}/{SPAN}.csv"], "data.spans.pattern", "one {SPAN}"),
    (["data.spans.pattern=/abs/span-{SPAN}/*"], "data.spans.pattern", "relative to data.path"),
    (["data.spans.pattern='{YYYY}-{MM}-{DD}/*'"], "data.spans.pattern", "one {SPAN}"),
    (["data.spans.train_spans=0"], "data.spans.train_spans", "positive number of spans"),
    (["data.spans.window=3"], "data.spans.window", "unknown key"),
    (["data.path=tfx:chicago_taxi"], "data.path", "not the single taxi CSV"),
    (["validation.min_examples.test=10"], "validation.min_examples.test", "a split name from ['train', 'eval']"),
    (["validation.min_examples.eval=-1"], "validation.min_examples.eval", ">= 0"),
    (["validation.min_count_ratio=1.5"], "validation.min_count_ratio", "ratio in (0, 1]"),
    (["validation.max_count_ratio=0.5"], "validation.max_count_ratio", "ratio >= 1"),
])
def test_span_and_validation_config_errors_name_the_key(tmp_path, overrides, key, expected):
    _span_dirs(tmp_path, [1, 2])
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, *overrides)
    assert f"'{key}'" in str(err.value) and expected in str(err.value)


def test_missing_span_directory_says_how_to_make_spans():
    with pytest.raises(ConfigError, match=r"'data.path'.*span directories matching data.spans.pattern "
                                          r".*python -m pipeline spans"):
        load_config(SPANS_CONFIG, ["data.path=/nonexistent/spans"])


def test_spans_for_tsv_are_refused(tmp_path):
    liar = os.path.join(REPO_ROOT, "configs", "liar.yaml")
    with pytest.raises(ConfigError, match="'data.spans.pattern': expected no span pattern for data.format tsv"):
        load_config(liar, ["data.spans.pattern=span-{SPAN}/*"], require_data=False)
