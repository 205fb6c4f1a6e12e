"""``python -m monitoring <command>``: the data-monitoring commands.

``calibrate``: thresholds for spans of ``--span-size`` rows at a false-alarm
``--budget``, from the config's accepted history, written as a candidate
schema plus a JSON sidecar (``monitoring.artifacts``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

import tensorflow_data_validation as tfdv

from common.cli_args import add_config_arguments
from common.loader import load_config
from common.paths import resolve_path
from monitoring.artifacts import write_calibration
from monitoring.calibration import calibrate, candidate_schema
from monitoring.history import load_history, monitored_features


def _calibrate(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    schema = tfdv.load_schema_text(config.schema_path)
    features = monitored_features(config, schema)
    history = load_history(config, schema, features)
    started = time.perf_counter()
    calibration = calibrate(history, schema, features, args.span_size, args.budget,
                            draws=args.draws, seed=args.seed, comparators=args.comparators)
    out = args.out or resolve_path(os.path.join(config.run_dir, "monitoring", config.name,
                                                f"span_{args.span_size}"))
    paths = write_calibration(out, candidate_schema(schema, calibration), calibration,
                              config.schema_path)
    print(f"calibrated {len(features)} features of {len(history)} rows, spans of "
          f"{args.span_size}, {calibration.draws} draws in {time.perf_counter() - started:.0f} s")
    for path in paths:
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitoring", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    cal = commands.add_parser("calibrate", help="thresholds at a false-alarm budget")
    add_config_arguments(cal, tune_flag=False)
    cal.add_argument("--span-size", type=int, required=True,
                     help="rows of the spans the thresholds are for (the expected span size)")
    cal.add_argument("--budget", type=float, default=0.05,
                     help="false-alarm probability of one comparison of one span (default 0.05)")
    cal.add_argument("--draws", type=int, default=None,
                     help="null draws R (default: the fewest the budget split allows)")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument("--comparators", nargs="+", choices=("skew", "drift"),
                     default=["skew", "drift"])
    cal.add_argument("--out", default="",
                     help="output directory (default <run_dir>/monitoring/<name>/span_<n>)")
    cal.set_defaults(run=_calibrate)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, OSError) as err:  # ConfigError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
