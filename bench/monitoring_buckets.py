"""Which histogram view resolves numeric shifts: TFDV's Jensen-Shannon divergence per feature.

Not a test: prints, per numeric monitored taxi feature and per variant (standard-histogram
bucket count; optionally the config's ``log1p`` features in log space), the share of
shifted spans whose distance to the reference is above the largest of the null spans'
distances (a stand-in for a calibrated threshold, cheaper than calibrating each variant).
Spans: n rows of the bench's holdout vs its reference (``monitoring_bench``'s split),
clipped at the reference's [q, 1 - q] quantiles, q = ``clip_quantile_for(n)``.
Shifts apply to every numeric feature at once (each feature's distance sees only its own
column): scale, spread around the reference median, and an offset in reference sd units.

    PYTHONPATH=. python bench/monitoring_buckets.py --buckets 10 30 [--log1p] [--weak]
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from typing import Dict, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow_data_validation as tfdv  # noqa: E402
from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: E402

from common.loader import load_config  # noqa: E402
from common.paths import REPO_ROOT  # noqa: E402
from monitoring.distances import feature_distances, is_categorical  # noqa: E402
from monitoring.frames import schema_feature  # noqa: E402
from monitoring.history import load_history, monitored_features  # noqa: E402
from monitoring.view import clip_bounds, clip_quantile_for, clipped  # noqa: E402


def _float_schema(schema: schema_pb2.Schema, names: Sequence[str]) -> schema_pb2.Schema:
    """``names`` as FLOAT features: log and shifted values of INT columns are not integers."""
    out = copy.deepcopy(schema)
    for feature in out.feature:
        if feature.name in names:
            feature.type = schema_pb2.FLOAT
            feature.ClearField("int_domain")
    return out


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO_ROOT, "configs", "taxi.yaml"))
    parser.add_argument("--buckets", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--log1p", action="store_true", help="also each count with log1p features")
    parser.add_argument("--weak", action="store_true", help="x1.1, x0.92, spread x1.15, +0.07 sd")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--null-spans", type=int, default=300)
    parser.add_argument("--shift-spans", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = load_config(args.config)
    schema = tfdv.load_schema_text(config.schema_path)
    numeric = [f for f in monitored_features(config, schema)
               if not is_categorical(schema_feature(schema, f))]
    logged = [f.column for f in config.features if f.log1p and f.column in numeric]
    history = load_history(config, schema, tuple(numeric))
    order = np.random.default_rng(args.seed).permutation(len(history))
    holdout = history.iloc[order[:5000]].reset_index(drop=True).astype(float)
    reference = history.iloc[order[5000:]].reset_index(drop=True).astype(float)
    bounds = clip_bounds(reference, schema, numeric, clip_quantile_for(args.size))
    schema = _float_schema(schema, numeric)
    median, sd = reference.median(), reference.std()
    scale, shrink, spread, offset = (1.1, 0.92, 1.15, 0.07) if args.weak else (1.2, 0.85, 1.3, 0.15)
    shifts = {f"x{scale}": lambda s: s * scale, f"x{shrink}": lambda s: s * shrink,
              f"spread x{spread}": lambda s: median + (s - median) * spread,
              f"+{offset} sd": lambda s: s + offset * sd}
    rng = np.random.default_rng(args.seed + 1)
    spans = [holdout.iloc[rng.choice(len(holdout), args.size, replace=False)].reset_index(drop=True)
             for _ in range(args.null_spans)]

    for log in ((False, True) if args.log1p else (False,)):
        for buckets in args.buckets:
            options = tfdv.StatsOptions(schema=schema, feature_allowlist=numeric,
                                        num_histogram_buckets=buckets)

            def statistics(frame: pd.DataFrame):
                frame = clipped(frame, bounds)
                for name in logged if log else ():
                    frame[name] = np.log1p(frame[name])
                return tfdv.generate_statistics_from_dataframe(frame, options)

            def distances(frame: pd.DataFrame) -> Dict[str, float]:
                return {r.feature: r.distance for r in feature_distances(
                    statistics(frame), baseline, schema, "skew", numeric)}

            started = time.perf_counter()
            baseline = statistics(reference)
            null = pd.DataFrame([distances(span) for span in spans])
            table = pd.DataFrame({name: (pd.DataFrame([distances(shift(span))
                                                       for span in spans[:args.shift_spans]])
                                         > null.max()).mean()
                                  for name, shift in shifts.items()})
            table["null max"], table["null p99"] = null.max(), null.quantile(0.99)
            print(f"\n{buckets} buckets{', log1p features in log space' if log else ''} "
                  f"({time.perf_counter() - started:.0f} s): share of shifted spans above the "
                  f"null max\n{table.round(4).to_string()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
