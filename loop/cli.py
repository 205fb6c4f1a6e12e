"""``python -m loop --config configs/taxi-spans.yaml [--quick] [--work-dir DIR]`` (``make loop``).

Runs the production loop on the embedded taxi quarters (``loop.runner``) and prints
its timeline, then the path of the monitoring report. ``--quick``: six quarters, 150
rows of each replayed one, 150 training steps (the e2e test's plan). Exit status: 0 the
loop ran, 2 it could not (the message says which step).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional, Sequence

from common.cli_args import add_config_arguments
from common.paths import resolve_path
from loop.plan import FULL, QUICK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, tune_flag=False)
    parser.add_argument("--quick", action="store_true", help="the short plan (tests)")
    parser.add_argument("--work-dir", default="",
                        help="an empty directory for the loop's data, runs, models and logs "
                             "(default runs/loop-<time>)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from common.frozen_imports import frozen_imports

    with frozen_imports():  # TF, TFX and Beam: common.frozen_imports says why
        from loop.runner import Loop

    plan = QUICK if args.quick else FULL
    work_dir = args.work_dir or resolve_path(os.path.join("runs", f"loop-{time.strftime('%Y%m%d-%H%M%S')}"))
    loop = Loop(args.config, plan, work_dir, tuple(args.overrides))
    try:
        result = loop.run()
    except (ValueError, OSError, RuntimeError) as err:  # ConfigError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\ntimeline")
    print(result.timeline.table())
    print(f"\nretrainings: {result.retrainings}; loop time {result.timeline.seconds:.0f} s")
    with open(os.path.join(loop.work_dir, "timeline.json"), "w", encoding="utf-8") as f:
        json.dump(result.timeline.to_json(), f, indent=1)
    print(f"timeline: {os.path.join(loop.work_dir, 'timeline.json')}")
    print(f"monitoring report: {result.report}")
    return 0
