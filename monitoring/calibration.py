"""Thresholds calibrated to a false-alarm budget, from same-distribution spans of history.

A TFDV distance between two samples of one distribution is not 0: it shrinks
with sample size (the Jensen-Shannon divergence of TFDV's 10-bucket
histograms is ~0.24 between 10 and 1,000 draws of one normal, ~0.02 between
1,000 and 14,000), so a hand-set threshold is either blind or noisy depending
on the span size. Here the threshold of each test is read off the null
distribution of its own distance at the expected span size.

The null distribution. Each of R draws permutes the accepted history (N rows,
``seed`` fixed) and takes the first ``span_size`` rows as a span A:

- skew: A vs the other N - n rows (the reference a check will use is the
  whole history; a random split of N exchangeable rows gives two independent
  samples of the two sizes, so this mimics "fresh span vs reference");
- drift: A vs the next ``span_size`` rows B (two consecutive spans).

Every draw yields, per monitored feature, TFDV's distance
(``monitoring.distances``) and the missing-fraction distance
(``monitoring.presence``), on the monitoring view of the history: numeric
features clipped to the history's central range (``monitoring.view``: TFDV's
equal-width histograms are otherwise ruled by outliers). The clip bounds are
part of the calibration; a check applies them to its span and reference.

The budget. ``budget`` is the family-wise false-alarm rate of one comparison
of one span (skew of the span, or drift of the span): the probability that any
of its tests alarms when nothing changed. It is split over the m tests of
that comparison by Bonferroni: m = for each monitored feature, its distance
measures (one, unless the schema configures two) plus its presence test, and
each test gets ``budget / m``. Bonferroni holds whatever the dependence between
features. A check running both skew and drift on a span makes two comparisons:
give each ``budget / 2`` to keep the span's total at ``budget``.

The quantile. With R null distances of a test and per-test budget a, the
threshold is the k-th smallest, k = ceil((1 - a) (R + 1)). For a new span
exchangeable with the draws, P(distance > k-th smallest of R) <= (R + 1 - k) /
(R + 1) <= a, exactly and for any distribution (ties only lower it). This
needs k <= R, i.e. R >= 1/a - 1 draws (``required_draws``); with fewer, no
threshold honours the budget and calibration refuses. E.g. taxi monitors 14
features: m = 28 per comparison, a = 0.05 / 28 ~ 0.0018, R >= 559.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from monitoring.distances import (
    COMPARATOR_FIELDS,
    COMPARATORS,
    Comparator,
    FeatureDistance,
    feature_distances,
    measures_of,
)
from monitoring.frames import schema_feature
from monitoring.presence import presence_distances
from monitoring.statistics import HISTOGRAM_BUCKETS, statistics_of
from monitoring.view import clip_bounds, clip_quantile_for, clipped

_EPSILON = 1e-9  # (1 - a)(R + 1) computed in floating point may land a hair above an integer
LEGACY_HISTOGRAM_BUCKETS = 10  # TFDV's default, used before the count was recorded
NULL_QUANTILES = (0.5, 0.9, 0.99)  # recorded in the sidecar to show each null distribution's shape


def per_test_budget(budget: float, n_tests: int) -> float:
    """Bonferroni: each of ``n_tests`` tests gets ``budget / n_tests``."""
    if not 0.0 < budget < 1.0:
        raise ValueError(f"budget {budget}: expected a false-alarm probability in (0, 1)")
    if n_tests < 1:
        raise ValueError(f"n_tests {n_tests}: expected at least one test to split the budget over")
    return budget / n_tests


def order_statistic_rank(draws: int, test_budget: float) -> int:
    """k = ceil((1 - a)(R + 1)): the rank (1-based) of the null distance used as threshold."""
    return max(1, math.ceil((1.0 - test_budget) * (draws + 1) - _EPSILON))


def required_draws(test_budget: float) -> int:
    """The fewest null draws R for which the rank k is at most R (R >= 1/a - 1)."""
    draws = max(1, math.ceil(1.0 / test_budget - 1.0 - _EPSILON))
    while order_statistic_rank(draws, test_budget) > draws:
        draws += 1
    return draws


def threshold_from_null(distances: Sequence[float], test_budget: float) -> float:
    """The k-th smallest null distance: a new null distance exceeds it with probability <= a."""
    values = np.sort(np.asarray(distances, dtype=float))
    rank = order_statistic_rank(len(values), test_budget)
    if rank > len(values):
        raise ValueError(f"{len(values)} null draws cannot honour a per-test budget of "
                         f"{test_budget:.6g}: at least {required_draws(test_budget)} are needed")
    return float(values[rank - 1])


@dataclass(frozen=True)
class Threshold:
    """The calibrated threshold of one test and the null distribution it came from."""
    feature: str
    comparator: Comparator
    measure: str
    threshold: float
    null_quantiles: Mapping[str, float] = field(default_factory=dict)  # "p50", ..., "max"


@dataclass(frozen=True)
class Calibration:
    """Everything a review (and a later check) needs to trust and reuse the thresholds."""
    budget: float
    span_size: int
    draws: int
    seed: int
    history_rows: int
    features: Tuple[str, ...]
    comparators: Tuple[Comparator, ...]
    tests_per_comparison: Mapping[str, int]
    test_budget: Mapping[str, float]
    rank: Mapping[str, int]
    thresholds: Tuple[Threshold, ...]
    clip_quantile: float = 0.0
    clip_bounds: Mapping[str, Tuple[float, float]] = field(default_factory=dict)
    histogram_buckets: int = HISTOGRAM_BUCKETS  # the statistics the thresholds were read off

    def view(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` as the thresholds expect it: clipped with the calibration's bounds."""
        return clipped(frame, self.clip_bounds)

    def threshold(self, feature: str, comparator: Comparator, measure: str) -> float:
        for t in self.thresholds:
            if (t.feature, t.comparator, t.measure) == (feature, comparator, measure):
                return t.threshold
        raise KeyError(f"no calibrated {comparator} {measure} threshold for feature {feature!r} "
                       f"(calibrated features: {list(self.features)})")

    def presence_thresholds(self, comparator: Comparator) -> Dict[str, float]:
        """feature -> missing-fraction threshold, as ``presence_distances`` takes them."""
        return {t.feature: t.threshold for t in self.thresholds
                if t.comparator == comparator and t.measure == "missing_fraction"}

    def to_json(self) -> Dict[str, Any]:
        """The sidecar: settings, the budget split, and per-test thresholds with null quantiles."""
        return {
            "tfdv_version": tfdv.__version__,
            "budget": self.budget,
            "budget_meaning": "family-wise false-alarm probability of one comparison (skew or "
                              "drift) of one span; split equally over its tests (Bonferroni)",
            "span_size": self.span_size,
            "draws": self.draws,
            "seed": self.seed,
            "history_rows": self.history_rows,
            "null_spans": {"skew": f"{self.span_size} rows vs the other "
                                   f"{self.history_rows - self.span_size} rows of history",
                           "drift": f"{self.span_size} rows vs the next {self.span_size} rows"},
            "threshold_rule": "k-th smallest of the draws' distances, k = ceil((1 - a)(R + 1)); "
                              "a test alarms when its distance is above the threshold",
            "features": list(self.features),
            "clip_quantile": self.clip_quantile,
            "clip_bounds": {name: list(b) for name, b in self.clip_bounds.items()},
            "histogram_buckets": self.histogram_buckets,
            "comparators": list(self.comparators),
            "tests_per_comparison": dict(self.tests_per_comparison),
            "test_budget": dict(self.test_budget),
            "rank": dict(self.rank),
            "thresholds": [{"feature": t.feature, "comparator": t.comparator, "measure": t.measure,
                            "threshold": t.threshold, "null_quantiles": dict(t.null_quantiles)}
                           for t in self.thresholds],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "Calibration":
        return cls(budget=raw["budget"], span_size=raw["span_size"], draws=raw["draws"],
                   seed=raw["seed"], history_rows=raw["history_rows"],
                   features=tuple(raw["features"]), comparators=tuple(raw["comparators"]),
                   tests_per_comparison=raw["tests_per_comparison"], test_budget=raw["test_budget"],
                   rank=raw["rank"], clip_quantile=raw["clip_quantile"],
                   clip_bounds={name: tuple(b) for name, b in raw["clip_bounds"].items()},
                   # sidecars written before the count was recorded used TFDV's default
                   histogram_buckets=raw.get("histogram_buckets", LEGACY_HISTOGRAM_BUCKETS),
                   thresholds=tuple(Threshold(t["feature"], t["comparator"], t["measure"],
                                              t["threshold"], t["null_quantiles"])
                                    for t in raw["thresholds"]))


def monitored_tests(schema: schema_pb2.Schema, features: Sequence[str],
                    comparator: Comparator) -> List[Tuple[str, str]]:
    """(feature, measure) of every test one comparison runs: distances, then presence."""
    tests = [(name, measure) for name in features
             for measure in measures_of(schema_feature(schema, name), comparator)]
    return tests + [(name, "missing_fraction") for name in features]


def _compare(span: statistics_pb2.DatasetFeatureStatisticsList,
             baseline: statistics_pb2.DatasetFeatureStatisticsList, schema: schema_pb2.Schema,
             features: Sequence[str], comparator: Comparator) -> List[FeatureDistance]:
    return (feature_distances(span, baseline, schema, comparator, features)
            + presence_distances(span, baseline, features, comparator))


def null_distances(frame: pd.DataFrame, schema: schema_pb2.Schema, features: Sequence[str],
                   span_size: int, draws: int, seed: int,
                   comparators: Sequence[Comparator] = COMPARATORS
                   ) -> Dict[Tuple[str, str, str], np.ndarray]:
    """(feature, comparator, measure) -> the R null distances (see the module doc).

    ``frame`` is the accepted history, typed (``monitoring.frames.typed_frame``).
    """
    rows = len(frame)
    needed = 2 * span_size if "drift" in comparators else span_size + 1
    if span_size < 1 or rows < needed:
        raise ValueError(f"span size {span_size}: the history has {rows} rows, {needed} needed "
                         f"for {'/'.join(comparators)} draws")
    expected = {comparator: set(monitored_tests(schema, features, comparator))
                for comparator in comparators}
    collected: Dict[Tuple[str, str, str], List[float]] = {
        (name, comparator, measure): [] for comparator in comparators
        for name, measure in expected[comparator]}
    rng = np.random.default_rng(seed)
    for draw in range(draws):
        order = rng.permutation(rows)
        span = statistics_of(frame.iloc[order[:span_size]], schema, features)
        for comparator in comparators:
            other = order[span_size:] if comparator == "skew" else order[span_size:2 * span_size]
            baseline = statistics_of(frame.iloc[other], schema, features)
            records = _compare(span, baseline, schema, features, comparator)
            got = {(r.feature, r.measure) for r in records}
            if got != expected[comparator]:
                lacking = sorted(expected[comparator] - got)
                raise ValueError(f"{comparator} draw {draw} (seed {seed}, span size {span_size}): "
                                 f"TFDV measured no distance for {lacking}: the feature had no "
                                 "values in a span or its baseline; monitor it at a larger span "
                                 "size or by presence only")
            for r in records:
                collected[(r.feature, comparator, r.measure)].append(r.distance)
    return {key: np.asarray(values) for key, values in collected.items()}


def _null_quantiles(values: np.ndarray) -> Dict[str, float]:
    summary = {f"p{round(q * 100)}": float(np.quantile(values, q)) for q in NULL_QUANTILES}
    summary["max"] = float(values.max())
    return summary


def calibrate(frame: pd.DataFrame, schema: schema_pb2.Schema, features: Sequence[str],
              span_size: int, budget: float, draws: Optional[int] = None, seed: int = 0,
              comparators: Sequence[Comparator] = COMPARATORS,
              clip_quantile: Optional[float] = None) -> Calibration:
    """Per-test thresholds honouring ``budget`` per comparison of a ``span_size``-row span.

    ``draws``: R; default the fewest the budget split allows (``required_draws``).
    ``clip_quantile``: the monitoring view's clipping (``monitoring.view``; 0: none;
    default ``clip_quantile_for(span_size)``).
    """
    comparators = tuple(comparators)
    tests = {c: len(monitored_tests(schema, features, c)) for c in comparators}
    test_budget = {c: per_test_budget(budget, n) for c, n in tests.items()}
    fewest = max(required_draws(a) for a in test_budget.values())
    draws = fewest if draws is None else draws
    if draws < fewest:
        raise ValueError(f"draws {draws}: a budget of {budget} over {max(tests.values())} tests "
                         f"per comparison needs at least {fewest} draws")
    if clip_quantile is None:
        clip_quantile = clip_quantile_for(span_size)
    bounds = clip_bounds(frame, schema, features, clip_quantile)
    null = null_distances(clipped(frame, bounds), schema, features, span_size, draws, seed,
                          comparators)
    thresholds = tuple(
        Threshold(name, comparator, measure, threshold_from_null(values, test_budget[comparator]),
                  _null_quantiles(values))
        for (name, comparator, measure), values in sorted(null.items()))
    return Calibration(budget=budget, span_size=span_size, draws=draws, seed=seed,
                       history_rows=len(frame), features=tuple(features), comparators=comparators,
                       tests_per_comparison=tests, test_budget=test_budget,
                       rank={c: order_statistic_rank(draws, a) for c, a in test_budget.items()},
                       thresholds=thresholds, clip_quantile=clip_quantile, clip_bounds=bounds)


def candidate_schema(schema: schema_pb2.Schema, calibration: Calibration) -> schema_pb2.Schema:
    """A copy of ``schema`` whose calibrated features' comparators carry the calibrated thresholds.

    Only distance thresholds have a place in the schema; the missing-fraction
    thresholds live in the calibration sidecar. Features not calibrated keep
    their comparators as curated.
    """
    candidate = copy.deepcopy(schema)
    by_feature = {f.name: f for f in candidate.feature}
    for comparator in calibration.comparators:
        for name in calibration.features:
            by_feature[name].ClearField(f"{comparator}_comparator")
    for t in calibration.thresholds:
        if t.measure in COMPARATOR_FIELDS:
            message = getattr(by_feature[t.feature], f"{t.comparator}_comparator")
            getattr(message, COMPARATOR_FIELDS[t.measure]).threshold = t.threshold
    return candidate
