"""What a logged model output predicts, and how a span's predictions are distributed.

The exported models answer per row with the ``outputs`` of ``trainer.model``:
a sigmoid probability of the positive class (binary labels: one value) or a
softmax over the classes (multi-class: ``num_classes`` values). The predicted
class is the one the evaluation scores: ``p > 0.5`` for one value, the argmax
otherwise.

Output drift is the L-infinity distance between two spans' predicted-class
shares: the largest change in the share of any class, the same measure TFDV
uses for a categorical feature, applied to the model's answers. It moves when
the model starts answering differently, whatever the inputs did.
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Sequence, Tuple

import numpy as np


def predicted_class(output: Sequence[float], num_classes: int) -> int:
    """The class an output vector predicts (see the module doc)."""
    if len(output) == 1 and num_classes == 2:
        return int(output[0] > 0.5)
    if len(output) != num_classes:
        raise ValueError(f"model output of {len(output)} values: expected 1 (binary probability) "
                         f"or {num_classes} (one per class)")
    return int(np.argmax(output))


def positive_score(output: Sequence[float]) -> float:
    """The binary score shown in the report: P(positive) of a one-value output, else the top
    class probability."""
    return float(output[0]) if len(output) == 1 else float(max(output))


def class_shares(classes: Iterable[int], num_classes: int) -> Tuple[float, ...]:
    """The share of rows predicted as each class (all zeros for no rows)."""
    counts = np.bincount(np.fromiter(classes, dtype=np.int64), minlength=num_classes)[:num_classes]
    total = counts.sum()
    return tuple(float(c) for c in (counts / total if total else counts.astype(float)))


def l_infinity(a: Sequence[float], b: Sequence[float]) -> float:
    """max_i |a_i - b_i|: the largest change of any class share."""
    if len(a) != len(b):
        raise ValueError(f"class shares of {len(a)} and {len(b)} classes cannot be compared")
    return float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))


def shares_by_version(outputs: Sequence[Sequence[float]], versions: Sequence[int],
                      num_classes: int) -> Dict[int, Tuple[float, ...]]:
    """Predicted-class shares of each model version's rows."""
    classes: Dict[int, list] = {}
    for output, version in zip(outputs, versions):
        classes.setdefault(version, []).append(predicted_class(output, num_classes))
    return {version: class_shares(c, num_classes) for version, c in sorted(classes.items())}


def all_shares(outputs: Sequence[Sequence[float]], num_classes: int) -> Tuple[float, ...]:
    """Predicted-class shares of all rows."""
    return class_shares((predicted_class(o, num_classes) for o in outputs), num_classes)


def output_drift(current: Mapping[int, Sequence[float]], previous: Sequence[float]) -> Dict[int, float]:
    """Per version of the span, the L-infinity distance of its shares to the previous span's."""
    return {version: l_infinity(shares, previous) for version, shares in current.items()}
