"""Crash safety: SIGKILL a taxi run in each component, rerun it, compare.

Usage: python bench/kill_rerun.py [WORK_DIR] [--components Trainer Pusher ...]

Run A (the first 300 rows) pushes a model; its run directory is kept as a
snapshot. Run B (the first 400 rows, so every component executes anew) is run
once uninterrupted from the snapshot (the reference), then, per component,
from a fresh copy of the snapshot: started, SIGKILLed (whole process group)
while that component executes, checked (ML Metadata opens, the served versions
are byte-identical), and rerun to its end. Prints the kill-and-rerun table;
writes it as JSON to WORK_DIR/kill_rerun.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components.pusher import PUSH_COMPLETE_FILE  # noqa: E402
from pipeline.results import RunResult, collect  # noqa: E402
from pipeline.run_paths import local_paths  # noqa: E402
from testing import kill_rerun  # noqa: E402
from tests.conftest import TAXI_CONFIG  # noqa: E402
from tests.e2e.conftest import config_for, small_overrides, write_sample  # noqa: E402

COMPONENTS = ("CsvExampleGen", "Transform", "Trainer", "Evaluator", "Pusher")
TOLERANCE = 1e-6


def _overrides(root: str, data_dir: str):
    return small_overrides(root, data_dir) + kill_rerun.FAST_TAXI


def _outcome(result: RunResult) -> dict:
    numbers = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
    return {"metrics": numbers, "blessed": result.model_blessed, "infra_blessed": result.infra_blessed,
            "pushed": result.pushed}


def _max_diff(a: dict, b: dict) -> float:
    if set(a) != set(b):
        return math.inf
    return max((abs(a[k] - b[k]) for k in a), default=0.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dir", nargs="?", default="/tmp/kill_rerun")
    parser.add_argument("--components", nargs="+", default=list(COMPONENTS), choices=COMPONENTS)
    args = parser.parse_args(argv)
    work = os.path.abspath(args.work_dir)
    root, snapshot = os.path.join(work, "root"), os.path.join(work, "snapshot")
    data_a = write_sample(os.path.join(work, "data_a"), rows=300)
    data_b = write_sample(os.path.join(work, "data_b"), rows=400)
    cfg = config_for(root, data_b, *kill_rerun.FAST_TAXI)
    paths = local_paths(cfg)
    run_b = kill_rerun.run_command(TAXI_CONFIG, _overrides(root, data_b))
    log = os.path.join(work, "runs.log")

    if not os.path.isdir(snapshot):
        os.makedirs(root, exist_ok=True)
        if kill_rerun.run_to_end(kill_rerun.run_command(TAXI_CONFIG, _overrides(root, data_a)), log) != 0:
            print(f"run A failed: see {log}", file=sys.stderr)
            return 1
        kill_rerun.restore(root, snapshot)
    kill_rerun.restore(snapshot, root)
    served_a = kill_rerun.served_digest(cfg.push_dir)
    print(f"run A: {len({k.split('/')[0] for k in served_a})} served version(s)", flush=True)
    reference_file = os.path.join(work, "reference.json")
    if os.path.isfile(reference_file):  # kept beside the snapshot: a bench rerun skips run B
        with open(reference_file) as f:
            reference = json.load(f)
    else:
        start = time.time()
        if kill_rerun.run_to_end(run_b, log) != 0:
            print(f"reference run B failed: see {log}", file=sys.stderr)
            return 1
        reference = _outcome(collect(paths.metadata, cfg.pipeline_name))
        with open(reference_file, "w") as f:
            json.dump(reference, f)
        print(f"reference run B: {time.time() - start:.0f}s", flush=True)
    print(f"reference run B: {reference}", flush=True)

    rows = []
    for node in args.components:
        kill_rerun.restore(snapshot, root)
        check = kill_rerun.kill_in(node, run_b, paths.pipeline_root, paths.metadata, cfg.pipeline_name,
                                   cfg.push_dir, log)
        start = time.time()
        code = kill_rerun.run_to_end(run_b, log)
        result = collect(paths.metadata, cfg.pipeline_name) if code == 0 else None
        pushed_to = result.pushed_to if result is not None else ""
        outcome = _outcome(result) if result is not None else {}
        diff = _max_diff(outcome.get("metrics", {}), reference["metrics"]) if outcome else math.inf
        same = bool(outcome) and diff <= TOLERANCE and all(
            outcome[k] == reference[k] for k in ("blessed", "infra_blessed", "pushed"))
        row = {"component": node, "killed": check.kill.killed, "kill_after_s": round(check.kill.seconds, 1),
               "state_after_kill": check.states[-1] if check.states else "-",
               "previous_untouched": check.previous_untouched, "published": check.published,
               "staging_left": check.staging,
               "rerun_exit": code, "rerun_s": round(time.time() - start), "max_metric_diff": diff,
               "equals_reference": same,
               "rerun_pushed_complete": bool(outcome.get("pushed")) and _complete(pushed_to)}
        row["served"] = _served(row, pushed_to)
        rows.append(row)
        print(json.dumps(row), flush=True)

    print("\n| component | killed after | its execution after the kill | served versions after the kill "
          "| rerun | rerun equals uninterrupted run |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        killed = f"{r['kill_after_s']}s" if r["killed"] else "not killed (run ended first)"
        rerun = f"exit {r['rerun_exit']}, {r['rerun_s']}s" + (", pushed" if r["rerun_pushed_complete"] else "")
        equal = f"yes (max metric diff {r['max_metric_diff']:.1g})" if r["equals_reference"] else \
            f"NO (max metric diff {r['max_metric_diff']:.3g})"
        print(f"| {r['component']} | {killed} | {r['state_after_kill']} | "
              f"{r['served']} | {rerun} | {equal} |")
    with open(os.path.join(work, "kill_rerun.json"), "w") as f:
        json.dump({"reference": reference, "rows": rows}, f, indent=1, default=str)
    return 0 if all(not r["served"].startswith("NO") and r["equals_reference"] for r in rows) else 1


def _served(row: dict, rerun_pushed_to: str) -> str:
    """What the kill did to the served versions: unchanged, or (a Pusher killed after its
    rename) the whole version the rerun then records; anything else starts with NO."""
    if not row["previous_untouched"]:
        return "NO: an earlier version changed"
    if not row["published"]:
        return "unchanged"
    if row["component"] == "Pusher" and row["published"] == [os.path.basename(rerun_pushed_to)]:
        return f"its push done (version {row['published'][0]}), recorded by the rerun"
    return f"NO: added {row['published']}"


def _complete(version_dir: str) -> bool:
    return os.path.isfile(os.path.join(version_dir, PUSH_COMPLETE_FILE)) if version_dir else False


if __name__ == "__main__":
    sys.exit(main())
