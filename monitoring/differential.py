"""Differential test between two model versions: one served span replayed through both.

Why: before a candidate answers users, the same real inputs tell how it differs
from the stable version: which rows change class (flips), by how much the
scores move, and, on the rows users labelled (feedback), whether any slice of
``evaluation.slices`` loses accuracy. TFMA's flip metrics compare on the eval
split offline; this compares on served traffic.

Inputs: the span's primary rows of the model as logged (``serving.request_log``),
their ``__log_*`` metadata stripped, fed as serialized tf.Examples to each
version's tf.Example signature (``serving.servable.ServedModel``, the gateway's
loader). Raw features the log drops or hashes (``serving.sensitive_features``)
reach both versions in the same logged form, so the comparison stays fair but
is not the users' exact input for those features.

Thresholds: ``differential`` config section; each figure is a
``monitoring.alerts.Measurement`` (comparator ``differential``), failing when alarmed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from common.config import DifferentialConfig
from monitoring.alerts import BELOW, Measurement, alerts_of

COMPARATOR = "differential"
ALL_ROWS = "all labelled rows"


@dataclass(frozen=True)
class SliceDelta:
    """Labelled accuracy of both versions on one slice value."""
    slice: str
    rows: int
    stable_accuracy: float
    candidate_accuracy: float

    @property
    def delta(self) -> float:
        return self.candidate_accuracy - self.stable_accuracy


@dataclass
class DiffReport:
    """What replaying one span through two versions showed."""
    rows: int
    flipped: List[int]                 # row indices whose predicted class changed
    mean_difference: float
    max_difference: float
    slices: List[SliceDelta]
    measurements: List[Measurement] = field(default_factory=list)

    @property
    def flip_rate(self) -> float:
        return len(self.flipped) / self.rows if self.rows else 0.0

    @property
    def failures(self) -> List[Measurement]:
        return alerts_of(self.measurements)


def predicted_classes(scores: np.ndarray, num_classes: int) -> np.ndarray:
    """Classes of a [rows, k] score matrix, as ``monitoring.predictions.predicted_class`` rules."""
    if scores.shape[1] == 1:
        return (scores[:, 0] > 0.5).astype(int)
    if scores.shape[1] != num_classes:
        raise ValueError(f"outputs of {scores.shape[1]} values: expected 1 (binary) or {num_classes}")
    return np.argmax(scores, axis=1)


def _slice_deltas(truths: np.ndarray, stable: np.ndarray, candidate: np.ndarray,
                  slices: Mapping[str, Sequence[Any]]) -> List[SliceDelta]:
    """Per slice value (``name=value``) and over all labelled rows; truth -1 = unlabelled."""
    labelled = truths >= 0
    groups: Dict[str, List[int]] = {ALL_ROWS: list(np.flatnonzero(labelled))}
    for name, values in slices.items():
        for index in np.flatnonzero(labelled):
            groups.setdefault(f"{name}={values[index]}", []).append(int(index))
    out = []
    for name, rows in groups.items():
        if not rows:
            continue
        chosen = np.asarray(rows)
        out.append(SliceDelta(name, len(rows), float(np.mean(stable[chosen] == truths[chosen])),
                              float(np.mean(candidate[chosen] == truths[chosen]))))
    return out


def compare(stable: np.ndarray, candidate: np.ndarray, num_classes: int, truths: np.ndarray,
            slices: Mapping[str, Sequence[Any]], limits: DifferentialConfig) -> DiffReport:
    """The differential figures of two [rows, k] score matrices on the same rows.

    ``truths``: each row's true class, -1 when unlabelled. ``slices``: slice name ->
    each row's value. A slice's accuracy drop is judged from ``limits.min_slice_rows``
    labelled rows; figures below that are reported without a threshold.
    """
    if stable.shape != candidate.shape:
        raise ValueError(f"outputs of shape {stable.shape} (stable) and {candidate.shape} (candidate) "
                         "cannot be compared")
    rows = stable.shape[0]
    stable_classes = predicted_classes(stable, num_classes)
    candidate_classes = predicted_classes(candidate, num_classes)
    difference = np.abs(candidate.astype(float) - stable.astype(float))
    report = DiffReport(rows=rows, flipped=[int(i) for i in np.flatnonzero(stable_classes != candidate_classes)],
                        mean_difference=float(difference.mean()) if rows else 0.0,
                        max_difference=float(difference.max()) if rows else 0.0,
                        slices=_slice_deltas(truths, stable_classes, candidate_classes, slices))
    report.measurements = [
        Measurement(COMPARATOR, "predicted_class", "flip_rate", report.flip_rate, limits.max_flip_rate,
                    threshold_source="differential.max_flip_rate",
                    detail=f"{len(report.flipped)} of {rows} rows changed class"),
        Measurement(COMPARATOR, "outputs", "mean_difference", report.mean_difference,
                    limits.max_mean_difference, threshold_source="differential.max_mean_difference"),
        Measurement(COMPARATOR, "outputs", "max_difference", report.max_difference,
                    limits.max_difference, threshold_source="differential.max_difference")]
    for s in report.slices:
        enough = s.rows >= limits.min_slice_rows
        report.measurements.append(Measurement(
            COMPARATOR, s.slice, "accuracy_delta", s.delta,
            -limits.max_slice_accuracy_drop if enough else None, direction=BELOW,
            threshold_source="differential.max_slice_accuracy_drop" if enough else "",
            detail=f"{s.rows} labelled rows: stable {s.stable_accuracy:.4f}, candidate "
                   f"{s.candidate_accuracy:.4f}"
                   + ("" if enough else f"; fewer than differential.min_slice_rows {limits.min_slice_rows}")))
    return report


def flipped_rows(report: DiffReport, keys: Sequence[Tuple[str, int]], stable: np.ndarray,
                 candidate: np.ndarray, num_classes: int, truths: np.ndarray) -> List[Dict[str, Any]]:
    """The rows that changed class: request id, row, both outputs and classes, the label's class."""
    stable_classes = predicted_classes(stable, num_classes)
    candidate_classes = predicted_classes(candidate, num_classes)
    return [{"request_id": keys[i][0], "row": keys[i][1],
             "stable_output": [float(v) for v in stable[i]],
             "candidate_output": [float(v) for v in candidate[i]],
             "stable_class": int(stable_classes[i]), "candidate_class": int(candidate_classes[i]),
             "true_class": None if truths[i] < 0 else int(truths[i])}
            for i in report.flipped]


def report_json(report: DiffReport, flips: List[Dict[str, Any]], **context: Any) -> Dict[str, Any]:
    """The report as written to disk: context (span, versions), figures, slices, checks, flips."""
    return {**context, "rows": report.rows, "flip_rate": report.flip_rate,
            "mean_difference": report.mean_difference, "max_difference": report.max_difference,
            "slices": [{"slice": s.slice, "rows": s.rows, "stable_accuracy": s.stable_accuracy,
                        "candidate_accuracy": s.candidate_accuracy, "delta": s.delta}
                       for s in report.slices],
            "measurements": [m.to_json() for m in report.measurements],
            "failed": bool(report.failures), "flipped_rows": flips}


def unknown_slices(slices: Sequence[Tuple[str, ...]], columns: Sequence[str]) -> List[str]:
    """Slice specs naming a key the logged rows do not hold (e.g. a transformed ``*_seen`` key)."""
    return [" x ".join(spec) for spec in slices if any(key not in columns for key in spec)]


def slice_values(frame: Any, slices: Sequence[Tuple[str, ...]]) -> Dict[str, List[Any]]:
    """Per slice spec whose keys are all logged columns: each row's value (``a=x, b=y`` joined)."""
    out: Dict[str, List[Any]] = {}
    for spec in slices:
        if any(key not in frame.columns for key in spec):
            continue
        name = " x ".join(spec)
        out[name] = [", ".join(str(v) for v in values) if len(spec) > 1 else values[0]
                     for values in frame[list(spec)].itertuples(index=False, name=None)]
    return out


def optional_truths(values: Sequence[Optional[int]]) -> np.ndarray:
    return np.asarray([-1 if v is None else v for v in values], dtype=int)
