"""Classification figures shared by the baselines and the error analysis.

One implementation for every scorer (rules, TF-IDF logistic regression, the
TFX model), so their numbers are comparable by construction.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    """Class ids from model outputs: one sigmoid column (binary) or a softmax row."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim == 1 or probabilities.shape[1] == 1:
        return (probabilities.reshape(-1) > 0.5).astype(np.int64)
    return probabilities.argmax(axis=1)


def positive_probability(probabilities: np.ndarray, positive_ids: Sequence[int]) -> np.ndarray:
    """P(positive) of each row: the sigmoid, or the summed softmax of the positive classes."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim == 1 or probabilities.shape[1] == 1:
        return probabilities.reshape(-1)
    return probabilities[:, list(positive_ids)].sum(axis=1)


def scores(labels: np.ndarray, predictions: np.ndarray, num_classes: int,
           binary_labels: np.ndarray = None, binary_predictions: np.ndarray = None) -> Dict[str, object]:
    """accuracy, macro-F1 and the confusion matrix (rows: true class); binary
    accuracy when folded labels and predictions are given."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    classes = list(range(num_classes))
    result: Dict[str, object] = {
        "examples": int(len(labels)),
        "accuracy": float(np.mean(labels == predictions)) if len(labels) else 0.0,
        "macro_f1": float(f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        "confusion_matrix": confusion_matrix(labels, predictions, labels=classes).tolist(),
    }
    if binary_labels is not None:
        result["binary_accuracy"] = float(np.mean(np.asarray(binary_labels) == np.asarray(binary_predictions)))
    return result


def calibration(positive_probabilities: np.ndarray, binary_labels: np.ndarray,
                bins: int = 10) -> Dict[str, object]:
    """Reliability of P(positive): per equal-width probability bin, the rows in it,
    their mean predicted probability and the share that is actually positive; and
    the expected calibration error (those gaps weighted by the bins' row shares).

    Why: a decision at 0.5 is only as good as the probability is honest. An
    over-trained model on LIAR's held-out folds said 0.35 where 46 % were
    positive, and so called too many statements false (docs/liar.md, "Model selection")."""
    p = np.clip(np.asarray(positive_probabilities, dtype=np.float64).reshape(-1), 0.0, 1.0)
    y = np.asarray(binary_labels).reshape(-1)
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    rows, gap = [], 0.0
    for b in range(bins):
        inside = index == b
        n = int(inside.sum())
        row = {"low": b / bins, "high": (b + 1) / bins, "examples": n}
        if n:
            row.update(mean_predicted=float(p[inside].mean()), positive_share=float(y[inside].mean()))
            gap += n * abs(row["mean_predicted"] - row["positive_share"])
        rows.append(row)
    return {"bins": rows, "expected_calibration_error": gap / len(p) if len(p) else 0.0}


def fold(class_ids: np.ndarray, positive_ids: Sequence[int]) -> np.ndarray:
    """Class ids -> 1 for the positive classes, 0 otherwise."""
    return np.isin(np.asarray(class_ids), list(positive_ids)).astype(np.int64)


def class_ids(names: Sequence[bytes], classes: List[str], what: str) -> np.ndarray:
    """Raw class names -> ids; an unknown name is an error naming it."""
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for name in names:
        text = name.decode("utf-8") if isinstance(name, bytes) else str(name)
        if text not in index:
            raise ValueError(f"{what}: label {text!r} is not one of the configured classes {classes}")
        out.append(index[text])
    return np.array(out, dtype=np.int64)
