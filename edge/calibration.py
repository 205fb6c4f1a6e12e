"""The extension's true/false lean: a calibration map and a "not sure" threshold.

Why: the model's six-way distribution, shown as is, reads as noise (nearly every
statement "half-true" at 22-32 %). A reader wants one thing: does the statement
lean true (half-true or better: the config's ``label.positive_classes``) or
false, and how sure is that. The model's P(positive) is not a probability a
reader can take at face value, so it is mapped through an isotonic calibration
fitted on out-of-fold scores of the training file (k-fold cross-validation; the
validation file is only reported on), and a lean is shown only when its
calibrated confidence reaches a threshold chosen on those folds for a stated
precision of the verdicts shown; below it the badge says "not sure".

The threshold is chosen on cross-fitted scores: each fold's scores are
calibrated by a map fitted on the other folds, so the precision it promises is
not measured on the rows its own map was fitted to. The map that ships is then
fitted on every fold. ``extension/scorer.js`` applies the map (piecewise-linear
between the isotonic blocks' centres, clamped at both ends) and the threshold
exactly as ``apply`` and ``choose_threshold`` do here.

With ``--bound`` (a
confidence level such as 0.95) the stated precision is a promise, not a point
estimate: the threshold is the lowest whose shown leans' one-sided Wilson lower
bound at that level reaches it. Precision measured on the folds' few thousand
shown leans moves by about +-0.01 from sample to sample, and a page's reader
gets a new sample; the point estimate would land under the stated precision on
about half of them.

The map is fitted to fold models and ships with the model trained on the whole
file, which is sharper: on LIAR its statement-only P(true) lies 26 % further from
0.5 on average, so at the same threshold it shows about a third more leans, the
least sure ones, than the folds promised for. With ``--shipped_in_sample`` the
map's breakpoints are moved to the shipped model's scale (``transfer``): each
breakpoint keeps its quantile, from the fold models' scores of their own training
rows to the shipped model's scores of its own. Both are in-sample, so both carry
the same kind of optimism, and neither touches the validation file.

``python -m edge.calibration --scores oof.json --precision 0.7 --out calibration.json``
fits from a JSON file ``{"p": [...], "positive": [...], "fold": [...]}`` (what
``bench/liar_calibration.py`` writes); ``--validation valid.json`` adds the
selective accuracy/coverage curve on held-out scores (``{"p", "positive"}``, or
``{"p_by_fold", "positive"}``: the mean of the fold models' curves).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Dict, List, Optional, Sequence

import numpy as np

# A threshold promising a precision must rest on at least this many shown verdicts.
MIN_SHOWN = 50
CURVE_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


class CalibrationError(ValueError):
    """Scores that cannot be calibrated; the message names the field and what was expected."""


@dataclass
class Calibration:
    """An isotonic map from raw P(positive) to calibrated P(positive), as breakpoints."""
    x: List[float]
    y: List[float]
    method: str = "isotonic"


@dataclass
class Lean:
    """What the extension needs for its lean: the map, the threshold and where they came from."""
    calibration: Calibration
    threshold: float
    target_precision: float
    folds: int
    rows: int
    cross_fitted: Dict[str, float] = field(default_factory=dict)  # accuracy/coverage at the threshold
    bound: float = 0.0  # confidence level of the precision's lower bound (0: the point estimate)
    transfer: Dict[str, int] = field(default_factory=dict)  # in-sample rows the map was moved with

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)  # recurses into ``calibration``


def _check_scores(p: np.ndarray, positive: np.ndarray) -> None:
    if p.ndim != 1 or p.shape != positive.shape or len(p) == 0:
        raise CalibrationError(f"scores: expected equal-length non-empty lists 'p' and 'positive', "
                               f"got shapes {p.shape} and {positive.shape}")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise CalibrationError("scores.p: expected probabilities in [0, 1]")
    if not np.all(np.isin(positive, (0, 1))):
        raise CalibrationError("scores.positive: expected 0 or 1 per row")


def fit_isotonic(p: Sequence[float], positive: Sequence[int]) -> Calibration:
    """Pool-adjacent-violators on (p, positive): the non-decreasing step function closest in
    squared error, kept as one breakpoint per block (its mean p, its share positive)."""
    p, positive = np.asarray(p, dtype=np.float64), np.asarray(positive, dtype=np.float64)
    _check_scores(p, positive)
    # Equal scores start as one block, so breakpoints are strictly increasing in x.
    values, inverse, counts_of = np.unique(p, return_inverse=True, return_counts=True)
    positives_of = np.bincount(inverse, weights=positive)
    # Blocks as (sum of y, sum of x, count); merge while a block's mean is not above the last's.
    sums_y: List[float] = []
    sums_x: List[float] = []
    counts: List[int] = []
    for x, y, n in zip(values, positives_of, counts_of):
        sums_y.append(float(y))
        sums_x.append(float(x) * int(n))
        counts.append(int(n))
        while len(counts) > 1 and sums_y[-2] / counts[-2] >= sums_y[-1] / counts[-1]:
            y_last, x_last, n_last = sums_y.pop(), sums_x.pop(), counts.pop()
            sums_y[-1] += y_last
            sums_x[-1] += x_last
            counts[-1] += n_last
    centres = [sx / n for sx, n in zip(sums_x, counts)]
    means = [sy / n for sy, n in zip(sums_y, counts)]
    return Calibration(x=[round(v, 9) for v in centres], y=[round(v, 9) for v in means])


def apply(calibration: Calibration, p: Sequence[float]) -> np.ndarray:
    """Calibrated P(positive): linear between breakpoints, the end values beyond them."""
    return np.interp(np.asarray(p, dtype=np.float64), calibration.x, calibration.y)


def confidence(calibrated: Sequence[float]) -> np.ndarray:
    """The lean's confidence: the calibrated probability of the side it leans to."""
    c = np.asarray(calibrated, dtype=np.float64)
    return np.maximum(c, 1.0 - c)


def selective(calibrated: Sequence[float], positive: Sequence[int], threshold: float) -> Dict[str, float]:
    """Accuracy of the leans shown (confidence >= threshold) and the share of rows shown."""
    c = np.asarray(calibrated, dtype=np.float64)
    shown = confidence(c) >= threshold
    right = (c >= 0.5) == (np.asarray(positive) == 1)
    return {"threshold": float(threshold), "coverage": float(shown.mean()), "shown": int(shown.sum()),
            "accuracy": float(right[shown].mean()) if shown.any() else float("nan")}


def wilson_lower_bound(right: np.ndarray, shown: np.ndarray, level: float) -> np.ndarray:
    """One-sided Wilson score lower bound, at confidence ``level``, of the share right among
    ``shown`` (elementwise); ``level`` 0 gives the share itself."""
    right, shown = np.asarray(right, dtype=np.float64), np.asarray(shown, dtype=np.float64)
    share = right / shown
    if not level:
        return share
    z = float(NormalDist().inv_cdf(level))
    centre = share + z * z / (2 * shown)
    spread = z * np.sqrt(share * (1 - share) / shown + z * z / (4 * shown * shown))
    return (centre - spread) / (1 + z * z / shown)


def choose_threshold(calibrated: Sequence[float], positive: Sequence[int], precision: float,
                     min_shown: int = MIN_SHOWN, bound: float = 0.0) -> float:
    """The lowest confidence threshold (most statements shown) whose shown leans are right at
    least ``precision`` of the time (with ``bound``, whose Wilson lower bound at that confidence
    level is), over at least ``min_shown`` rows; 1.0 plus a hair (nothing shown) when no
    threshold reaches it."""
    c = np.asarray(calibrated, dtype=np.float64)
    q = confidence(c)
    right = ((c >= 0.5) == (np.asarray(positive) == 1)).astype(np.float64)
    order = np.argsort(-q, kind="stable")
    q_sorted, right_sorted = q[order], right[order]
    accuracy = wilson_lower_bound(np.cumsum(right_sorted), np.arange(1, len(q) + 1), bound)
    # Only cut between distinct confidences: rows with equal confidence are shown together.
    last_of_value = np.append(q_sorted[1:] != q_sorted[:-1], True)
    ok = last_of_value & (accuracy >= precision) & (np.arange(1, len(q) + 1) >= min_shown)
    if not ok.any():
        return 1.0 + 1e-9
    return float(q_sorted[np.flatnonzero(ok)[-1]])


def fit_lean(p: Sequence[float], positive: Sequence[int], fold: Sequence[int], precision: float,
             min_shown: int = MIN_SHOWN, bound: float = 0.0,
             in_sample: Optional[Sequence[Sequence[float]]] = None) -> Lean:
    """The map fitted on every fold, and the threshold chosen on cross-fitted scores (each
    fold calibrated by the map of the other folds); ``bound`` as in ``choose_threshold``.
    ``in_sample`` (the fold models' and the shipped model's scores of their own training
    rows) moves the map to the shipped model's scale (``transfer``); the threshold, a
    calibrated confidence, stays."""
    p, positive, fold = (np.asarray(v) for v in (p, positive, fold))
    _check_scores(p.astype(np.float64), positive)
    if fold.shape != p.shape:
        raise CalibrationError(f"scores.fold: expected one fold id per row ({p.shape}), got {fold.shape}")
    if not 0.5 <= precision < 1.0:
        raise CalibrationError(f"precision: expected a value in [0.5, 1), got {precision}")
    if not (bound == 0 or 0.5 <= bound < 1.0):
        raise CalibrationError(f"bound: expected 0 (point estimate) or a confidence level in [0.5, 1), "
                               f"got {bound}")
    folds = sorted(set(fold.tolist()))
    if len(folds) < 2:
        raise CalibrationError(f"scores.fold: expected at least two folds, got {folds}")
    cross = np.empty(len(p), dtype=np.float64)
    for f in folds:
        held = fold == f
        cross[held] = apply(fit_isotonic(p[~held], positive[~held]), p[held])
    threshold = choose_threshold(cross, positive, precision, min_shown, bound)
    mapping, moved_with = fit_isotonic(p, positive), {}
    if in_sample is not None:
        fitted_in_sample, shipped_in_sample = in_sample
        mapping = transfer(mapping, fitted_in_sample, shipped_in_sample)
        moved_with = {"fitted_rows": len(fitted_in_sample), "shipped_rows": len(shipped_in_sample)}
    return Lean(calibration=mapping, threshold=round(threshold, 6),
                target_precision=precision, folds=len(folds), rows=len(p),
                cross_fitted=selective(cross, positive, threshold), bound=bound, transfer=moved_with)


def transfer(calibration: Calibration, fitted_in_sample: Sequence[float],
             shipped_in_sample: Sequence[float]) -> Calibration:
    """``calibration`` (fitted on the scale of the models that scored ``fitted_in_sample``) moved
    to the scale of the model that scored ``shipped_in_sample``: each breakpoint's x goes to the
    shipped scores' quantile at the level it has among the fitted scores; its y is kept.
    Breakpoints that land on one x (beyond the range of either sample) keep their mean y."""
    fitted, shipped = (np.sort(np.asarray(v, dtype=np.float64)) for v in (fitted_in_sample, shipped_in_sample))
    for name, values in (("fitted_in_sample", fitted), ("shipped_in_sample", shipped)):
        if len(values) < MIN_SHOWN or np.any(~np.isfinite(values)) or np.any((values < 0) | (values > 1)):
            raise CalibrationError(f"{name}: expected at least {MIN_SHOWN} probabilities in [0, 1], "
                                   f"got {len(values)} values")
    levels = np.interp(calibration.x, fitted, (np.arange(len(fitted)) + 0.5) / len(fitted))
    moved = np.interp(levels, (np.arange(len(shipped)) + 0.5) / len(shipped), shipped)
    xs, inverse = np.unique(moved, return_inverse=True)
    ys = np.bincount(inverse, weights=np.asarray(calibration.y)) / np.bincount(inverse)
    return Calibration(x=[round(v, 9) for v in xs], y=[round(v, 9) for v in ys], method=calibration.method)


def curve(lean: Lean, p: Sequence[float], positive: Sequence[int],
          thresholds: Sequence[float] = CURVE_THRESHOLDS) -> List[Dict[str, float]]:
    """Selective accuracy and coverage of held-out scores at each threshold and at the chosen one."""
    calibrated = apply(lean.calibration, p)
    points = [selective(calibrated, positive, t) for t in sorted(set(thresholds) | {lean.threshold})]
    for point in points:
        point["chosen"] = point["threshold"] == lean.threshold
    return points


def mean_curve(lean: Lean, p_by_model: Sequence[Sequence[float]], positive: Sequence[int]
               ) -> List[Dict[str, float]]:
    """``curve`` for the same held-out rows scored by several models (one per fold), as the
    mean accuracy, coverage and shown count over the models."""
    curves = [curve(lean, p, positive) for p in p_by_model]
    out = []
    for points in zip(*curves):
        point = dict(points[0])
        for key in ("accuracy", "coverage", "shown"):
            point[key] = float(np.mean([q[key] for q in points]))
        out.append(point)
    return out


def _load_json(path: str) -> Dict[str, object]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_scores(path: str) -> Dict[str, np.ndarray]:
    """``{"p" (or "p_by_fold": one list per model), "positive"[, "fold", "in_sample_p"]}`` from a
    JSON file."""
    raw = _load_json(path)
    missing = [k for k in ("p", "positive") if k not in raw and not (k == "p" and "p_by_fold" in raw)]
    if missing:
        raise CalibrationError(f"{path}: missing {missing} (expected 'p', 'positive' and, to fit, 'fold')")
    return {k: np.asarray(v) for k, v in raw.items() if k in ("p", "p_by_fold", "positive", "fold", "in_sample_p")}


def load_lean(path: str) -> Lean:
    """A Lean written by ``main`` (the bundler reads it)."""
    raw = _load_json(path)
    try:
        return Lean(calibration=Calibration(**raw["calibration"]), threshold=float(raw["threshold"]),
                    target_precision=float(raw["target_precision"]), folds=int(raw["folds"]),
                    rows=int(raw["rows"]), cross_fitted=raw.get("cross_fitted", {}),
                    bound=float(raw.get("bound", 0.0)), transfer=raw.get("transfer", {}))
    except (KeyError, TypeError) as error:
        raise CalibrationError(f"{path}: not a calibration file ({error}); write one with "
                               "`python -m edge.calibration`") from error


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", required=True, help="out-of-fold scores: {p, positive, fold}")
    parser.add_argument("--precision", type=float, default=0.7, help="precision of the leans shown")
    parser.add_argument("--bound", type=float, default=0.0,
                        help="confidence level of the precision's lower bound (e.g. 0.95; 0: point estimate)")
    parser.add_argument("--shipped_in_sample", help="the shipped model's scores of its own training rows "
                        "{in_sample_p}: moves the map to its scale (needs in_sample_p in --scores)")
    parser.add_argument("--validation", help="held-out scores {p, positive} for the curve")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        scores = load_scores(args.scores)
        if "fold" not in scores:
            raise CalibrationError(f"{args.scores}: missing 'fold' (one fold id per row)")
        in_sample = None
        if args.shipped_in_sample:
            shipped = _load_json(args.shipped_in_sample)
            if "in_sample_p" not in shipped or "in_sample_p" not in scores:
                raise CalibrationError(f"{args.shipped_in_sample} and {args.scores}: expected 'in_sample_p' in "
                                       "both (bench/liar_calibration.py writes them)")
            in_sample = (scores["in_sample_p"], shipped["in_sample_p"])
        lean = fit_lean(scores["p"], scores["positive"], scores["fold"], args.precision, bound=args.bound,
                        in_sample=in_sample)
        out = lean.to_dict()
        if args.validation:
            held = load_scores(args.validation)
            out["validation_curve"] = (mean_curve(lean, held["p_by_fold"], held["positive"]) if "p_by_fold" in held
                                       else curve(lean, held["p"], held["positive"]))
    except CalibrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: out[k] for k in ("threshold", "cross_fitted")}))
    for point in out.get("validation_curve", []):
        print(f"threshold {point['threshold']:.3f}: accuracy {point['accuracy']:.3f} "
              f"coverage {point['coverage']:.3f}{'  (chosen)' if point['chosen'] else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
