"""Labelled performance: the logged predictions of a span scored against feedback labels.

Feedback labels (``serving.feedback``) carry the raw label column as the
training data holds it, filed per span under the request's (request id, row).
The labelled spans ``python -m serving join`` writes drop the log's metadata
(the model output among it), so the score is computed here from the two
sources directly: the span's logged rows (output, version, raw features) and
the span's label files (``serving.feedback.store.read_span_labels``; the first
label received for a row counts, as in the join).

The true class follows the pipeline's own rule (``trainer.preprocessing.make_label``):

* ``ratio_threshold``: ``label > fraction * denominator``, the denominator
  (taxi's ``fare``) read from the logged row, 0 when missing;
* ``column``: the integer label itself;
* ``classes``: the class name's index in ``label.classes``, or, for a binary
  fold, 1 when it is one of ``positive_classes``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from common.config import LabelConfig, PipelineConfig
from monitoring.predictions import predicted_class
from monitoring.served import ServedSpan
from serving.feedback.store import read_span_labels


@dataclass(frozen=True)
class LabelledScore:
    """How one model version's labelled rows of a span were predicted."""
    version: int
    rows: int       # labelled rows of this version
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.rows if self.rows else float("nan")

    def to_json(self) -> Dict[str, Any]:
        return {"version": self.version, "rows": self.rows, "correct": self.correct,
                "accuracy": self.accuracy if self.rows else None}


def true_class(label: LabelConfig, value: Any, row: Mapping[str, Any]) -> int:
    """The training label of a feedback label ``value`` for a logged ``row`` (module doc)."""
    if label.kind == "ratio_threshold":
        denominator = row.get(label.denominator or "")
        denominator = 0.0 if denominator is None else float(denominator)
        return int(float(value) > label.fraction * denominator)
    if label.kind == "column":
        return int(value)
    if value not in label.classes:
        raise ValueError(f"label {value!r}: expected one of label.classes {list(label.classes)}")
    if label.is_binary_fold:
        return int(value in label.positive_classes)
    return label.classes.index(value)


def row_truths(cfg: PipelineConfig, log_dir: str, served: ServedSpan) -> List[Optional[int]]:
    """Each served row's true class from its feedback label; None for a row without a label
    (or with a label filed for another model)."""
    labels = read_span_labels(log_dir, served.span).first
    if not labels:
        return [None] * len(served.keys)
    records = served.frame.to_dict("records")
    truths: List[Optional[int]] = []
    for index, key in enumerate(served.keys):
        record = labels.get(key)
        usable = record is not None and record.model == served.model
        truths.append(true_class(cfg.label, record.label, records[index]) if usable else None)
    return truths


def labelled_scores(cfg: PipelineConfig, log_dir: str, served: ServedSpan) -> Dict[int, LabelledScore]:
    """Per model version, the accuracy of the span's labelled rows (versions without labels
    are left out). Labels for another model, or rows not in the log, are ignored."""
    rows, correct = {}, {}
    for index, truth in enumerate(row_truths(cfg, log_dir, served)):
        if truth is None:
            continue
        version = served.versions[index]
        predicted = predicted_class(served.outputs[index], cfg.num_classes)
        rows[version] = rows.get(version, 0) + 1
        correct[version] = correct.get(version, 0) + int(truth == predicted)
    return {v: LabelledScore(v, rows[v], correct[v]) for v in sorted(rows)}


def accuracy_floor(cfg: PipelineConfig) -> float:
    """``monitoring.min_labelled_accuracy``, or the blessing floor ``evaluation.min_accuracy``."""
    floor: Optional[float] = cfg.monitoring.min_labelled_accuracy
    return cfg.evaluation.min_accuracy if floor is None else floor
