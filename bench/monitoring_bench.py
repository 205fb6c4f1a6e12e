"""Monitoring bench on the taxi data: false alarms, detection power, span size, check time.

Not a test: prints figures. The taxi history (15,002 rows) is shuffled once
(seed fixed) into a reference (10,002 rows: what thresholds are calibrated on
and spans are compared with) and a holdout (5,000 rows) that spans are drawn
from, so no test span was seen by the calibration.

For each span size n: thresholds are calibrated on the reference at the budget
(skew comparator: span vs reference, Bonferroni over every feature's distance
and presence tests); then
- false alarms: same-distribution spans (n rows of the holdout) vs the
  reference; a span alarms when any test alarms;
- power: the same spans with one injected shift; detected when the span alarms
  (the shifted feature's own alarm rate is printed beside it).

    PYTHONPATH=. python bench/monitoring_bench.py [--sizes 100 200 500 1000 2000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow_data_validation as tfdv  # noqa: E402

from common.loader import load_config  # noqa: E402
from common.paths import REPO_ROOT  # noqa: E402
from monitoring.calibration import Calibration, calibrate, candidate_schema  # noqa: E402
from monitoring.distances import FeatureDistance, feature_distances  # noqa: E402
from monitoring.frames import typed_frame  # noqa: E402
from monitoring.history import load_history, monitored_features  # noqa: E402
from monitoring.presence import presence_distances  # noqa: E402
from monitoring.statistics import statistics_of  # noqa: E402

Shift = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


def _mapped(column: str, change: Callable[[pd.Series], pd.Series]) -> Shift:
    """Every value of ``column`` changed by ``change`` (a scale, a shift)."""
    def shift(span: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        span = span.copy()
        span[column] = change(span[column])
        return span
    return shift


def _share_moved(column: str, source: str, target: str, points: float) -> Shift:
    """``points`` of the span's rows move from value ``source`` to ``target``."""
    def shift(span: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        span = span.copy()
        rows = np.flatnonzero((span[column] == source).to_numpy(dtype=bool))
        moved = rng.choice(rows, size=min(len(rows), round(points * len(span))), replace=False)
        span.loc[moved, column] = target
        return span
    return shift


def _made_missing(column: str, share: float) -> Shift:
    def shift(span: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        span = span.copy()
        rows = rng.choice(len(span), size=round(share * len(span)), replace=False)
        span.loc[rows, column] = None
        return span
    return shift


SHIFTS: Dict[str, Tuple[str, Shift]] = {
    "fare x1.2": ("fare", _mapped("fare", lambda c: c * 1.2)),
    "trip_miles x1.2": ("trip_miles", _mapped("trip_miles", lambda c: c * 1.2)),
    "payment_type Cash->Credit Card 10 pts": (
        "payment_type", _share_moved("payment_type", "Cash", "Credit Card", 0.10)),
    "trip_seconds 50% missing": ("trip_seconds", _made_missing("trip_seconds", 0.5)),
    "trip_start_hour +3": ("trip_start_hour", _mapped("trip_start_hour", lambda c: (c + 3) % 24)),
}


class Checker:
    """A span's skew check against the reference with calibrated thresholds, both seen
    through the calibration's view (clipped numeric features)."""

    def __init__(self, reference: pd.DataFrame, schema, features: Sequence[str],
                 calibration: Calibration):
        self.schema = candidate_schema(schema, calibration)
        self.features = list(features)
        self.presence = calibration.presence_thresholds("skew")
        self.view = calibration.view
        self.reference_stats = statistics_of(self.view(reference), self.schema, self.features)

    def alarms(self, span: pd.DataFrame) -> List[FeatureDistance]:
        stats = statistics_of(self.view(span), self.schema, self.features)
        records = (feature_distances(stats, self.reference_stats, self.schema, "skew", self.features)
                   + presence_distances(stats, self.reference_stats, self.features, "skew",
                                        self.presence))
        return [r for r in records if r.alarmed]


def _spans(holdout: pd.DataFrame, size: int, count: int, seed: int) -> List[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    return [holdout.iloc[rng.choice(len(holdout), size=size, replace=False)].reset_index(drop=True)
            for _ in range(count)]


def _rate(hits: int, total: int) -> str:
    return f"{100.0 * hits / total:5.1f}%"


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO_ROOT, "configs", "taxi.yaml"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 500, 1000, 2000])
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--draws", type=int, default=None, help="calibration draws (default: fewest)")
    parser.add_argument("--null-spans", type=int, default=200)
    parser.add_argument("--shift-spans", type=int, default=50)
    parser.add_argument("--holdout", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = load_config(args.config)
    schema = tfdv.load_schema_text(config.schema_path)
    features = monitored_features(config, schema)
    history = load_history(config, schema, features)
    order = np.random.default_rng(args.seed).permutation(len(history))
    holdout = history.iloc[order[:args.holdout]].reset_index(drop=True)
    reference = history.iloc[order[args.holdout:]].reset_index(drop=True)
    print(f"taxi: {len(history)} rows -> reference {len(reference)}, holdout {len(holdout)}; "
          f"{len(features)} monitored features; budget {args.budget} per span (skew)")

    rows = []
    for size in args.sizes:
        started = time.perf_counter()
        calibration = calibrate(reference, schema, features, size, args.budget, draws=args.draws,
                                seed=args.seed, comparators=("skew",))
        calibrated_in = time.perf_counter() - started
        checker = Checker(reference, schema, features, calibration)
        null = _spans(holdout, size, args.null_spans, args.seed + 1)
        false_alarms = sum(bool(checker.alarms(span)) for span in null)
        row = {"n": size, "draws": calibration.draws, "calibrate_s": calibrated_in,
               "false_alarms": _rate(false_alarms, len(null))}
        rng = np.random.default_rng(args.seed + 2)
        for name, (feature, shift) in SHIFTS.items():
            spans = null[:args.shift_spans]
            alarms = [checker.alarms(shift(span, rng)) for span in spans]
            row[name] = (_rate(sum(bool(a) for a in alarms), len(spans)),
                         _rate(sum(any(r.feature == feature for r in a) for a in alarms), len(spans)))
        rows.append(row)
        print(f"n={size}: calibrated ({calibration.draws} draws) in {calibrated_in:.0f} s, "
              f"{row}", flush=True)

    print("\nspan size | draws | calibrate s | false alarms | "
          + " | ".join(f"{name} (span / feature)" for name in SHIFTS))
    for row in rows:
        print(f"{row['n']:>9} | {row['draws']:>5} | {row['calibrate_s']:>11.0f} | "
              f"{row['false_alarms']:>12} | "
              + " | ".join(f"{row[name][0]} / {row[name][1]}" for name in SHIFTS))
    for name in SHIFTS:
        reached = [row["n"] for row in rows if float(row[name][0].rstrip("%")) >= 90.0]
        print(f"smallest span size with >= 90% detection, {name}: "
              f"{min(reached) if reached else 'none of ' + str(args.sizes)}")

    _time_check(history, reference, schema, features, calibration, args.seed)
    return 0


def _time_check(history: pd.DataFrame, reference: pd.DataFrame, schema, features,
                calibration: Calibration, seed: int) -> None:
    """Seconds to check a 10,000-row span, everything included: the candidate schema and the
    reference's statistics (once per reference in a real check), the span's typing, view,
    statistics, distances and presence."""
    raw = history.iloc[np.random.default_rng(seed).choice(len(history), 10_000)]
    started = time.perf_counter()
    checker = Checker(reference, schema, features, calibration)
    reference_s = time.perf_counter() - started
    alarms = checker.alarms(typed_frame(raw, schema, features))
    total_s = time.perf_counter() - started
    print(f"check of a 10,000-row span: {total_s:.2f} s in all, of which the reference's "
          f"statistics ({len(reference)} rows) {reference_s:.2f} s; {len(alarms)} alarms with "
          f"thresholds for n={calibration.span_size}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
