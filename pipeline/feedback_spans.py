"""Feedback spans: labelled served traffic written as a pipeline data span, so retraining reads it.

Why: a model is retrained on what it served. Once the true outcomes of a
request-log span came back as feedback labels, its rows are training data like
any quarter of the CSV: written as ``span-<N>/data.csv`` in the config's span
layout (``data.spans.pattern``, ``data.csv`` as ``pipeline.span_cutter``
writes it, the header of the spans already on disk), the next run of the same
``create_pipeline`` ingests span N, its rolling window includes it, and its time
split evaluates on it when it is the newest.

Each row is one logged primary row with a label, as ``serving join``
(``serving.feedback.join.join_span``) joins them: the features exactly as the
gateway logged them (a feature ``serving.sensitive_features`` drops is an empty
field, a hashed one its hash; the log's ``__log_*`` metadata is gone) plus the
raw label column from the feedback; columns neither logged nor the label
(``data.excluded_columns`` such as census tracts) are empty.

Data-incident spans (``monitoring decide``'s excluded ones: a broken upstream)
are never exported: ``export_window`` refuses them. A data span is never
rewritten (a model may have trained on it): it is written into a hidden
directory, then renamed.
"""
from __future__ import annotations

import csv
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from common.checks.data import SPAN_SPEC, VERSION_SPEC
from common.config import PipelineConfig
from components.span_inputs import spans_on_disk
from monitoring import locations
from monitoring.served import feature_values
from pipeline.span_cutter import SPAN_FILE
from serving.feedback.join import DATA_FILE, join_span
from serving.feedback.labels import LabelSpec


class FeedbackSpanError(ValueError):
    """A feedback span cannot be written: names the span, directory or setting."""


@dataclass(frozen=True)
class ExportedSpan:
    """One request-log span written as a data span."""
    log_span: int
    data_span: int
    rows: int
    path: str          # the data span's CSV file
    labelled_version: int  # the ``serving join`` version the rows come from

    def describe(self) -> str:
        return (f"request-log span {self.log_span} -> data span {self.data_span}: {self.rows} labelled rows "
                f"({self.path})")


def span_directory(cfg: PipelineConfig, data_span: int) -> str:
    """``<data.path>/span-<N>``: the directory the config's span pattern names for span N."""
    pattern = cfg.data.spans.pattern
    if not pattern or cfg.data.format != "csv":
        raise FeedbackSpanError(f"{cfg.source_file}: feedback spans need CSV data in spans "
                                f"(data.format csv and data.spans.pattern); got format {cfg.data.format!r}, "
                                f"pattern {pattern!r}")
    if VERSION_SPEC in pattern or SPAN_SPEC not in os.path.dirname(pattern):
        raise FeedbackSpanError(f"{cfg.source_file}: data.spans.pattern {pattern!r}: expected {SPAN_SPEC} in "
                                f"a directory name and no {VERSION_SPEC} (e.g. 'span-{{SPAN}}/*')")
    return os.path.join(cfg.data_path, os.path.dirname(pattern).replace(SPAN_SPEC, str(data_span)))


def data_header(cfg: PipelineConfig) -> List[str]:
    """The CSV header of the spans on disk (the first file found), so ExampleGen reads every span
    with the same columns; without any span, the feature columns and the label column."""
    for files in spans_on_disk(cfg.data_path, cfg.data.spans.pattern).values():
        for path in files:
            with open(path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), None)
            if header:
                return header
    columns = [f.column for f in cfg.features]
    return list(dict.fromkeys(columns + [cfg.label.column]))


def labelled_rows(cfg: PipelineConfig, log_dir: str, log_span: int
                  ) -> Tuple[List[Dict[str, Any]], Optional[int]]:
    """(rows as {column: value}, the join version): the span's logged primary rows that have a
    feedback label, joined by ``serving join`` (which writes a new labelled version when labels
    changed)."""
    import tensorflow as tf  # the GZIP TFRecord reader of the labelled version

    joined = join_span(log_dir, log_span, LabelSpec.from_config(cfg))
    if joined.version is None or not joined.rows:
        return [], joined.version
    column_of = {f.name: f.column for f in cfg.features}
    rows = []
    path = os.path.join(joined.path, DATA_FILE)
    for record in tf.data.TFRecordDataset([path], compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        rows.append({column_of.get(name, name): (feature_values(feature) or [None])[0]
                     for name, feature in example.features.feature.items()})
    return rows, joined.version


def export_span(cfg: PipelineConfig, log_span: int, data_span: int, log_dir: Optional[str] = None,
                min_rows: int = 1) -> ExportedSpan:
    """Writes request-log span ``log_span``'s labelled rows as data span ``data_span`` (module doc)."""
    log_dir = log_dir or locations.request_log_dir(cfg)
    directory = span_directory(cfg, data_span)
    if os.path.exists(directory):
        raise FeedbackSpanError(f"{directory}: data span {data_span} exists; a data span is never rewritten "
                                "(a model may have trained on it): export into a new span number")
    rows, version = labelled_rows(cfg, log_dir, log_span)
    if len(rows) < min_rows:
        raise FeedbackSpanError(f"request-log span {log_span} in {log_dir}: {len(rows)} labelled rows, "
                                f"expected at least {min_rows} (feedback labels joined to logged rows)")
    header = data_header(cfg)
    unknown = sorted({name for row in rows for name in row} - set(header))
    if unknown:
        raise FeedbackSpanError(f"request-log span {log_span}: logged columns {unknown} are not in the data "
                                f"header {header} of {cfg.data_path}")
    staging = os.path.join(os.path.dirname(directory), f".{os.path.basename(directory)}.{uuid.uuid4().hex[:8]}")
    os.makedirs(staging)
    try:
        with open(os.path.join(staging, SPAN_FILE), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows([["" if row.get(c) is None else row[c] for c in header] for row in rows])
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportedSpan(log_span, data_span, len(rows), os.path.join(directory, SPAN_FILE), version)


def export_window(cfg: PipelineConfig, window: Sequence[int], incidents: Mapping[int, Any],
                  data_span_of: Mapping[int, int], log_dir: Optional[str] = None) -> List[ExportedSpan]:
    """Exports each request-log span of a decision's ``window`` that is not on disk yet.

    ``incidents``: the decision's data-incident spans (never exported: a span of the
    window that is one raises). ``data_span_of``: request-log span -> data span number.
    """
    exported: List[ExportedSpan] = []
    for log_span in window:
        if log_span in incidents:
            raise FeedbackSpanError(f"request-log span {log_span} is a data incident ({incidents[log_span]}): "
                                    "it is never written as training data")
        if log_span not in data_span_of:
            raise FeedbackSpanError(f"request-log span {log_span}: no data span number given for it")
        if not os.path.exists(span_directory(cfg, data_span_of[log_span])):
            exported.append(export_span(cfg, log_span, data_span_of[log_span], log_dir))
    return exported
