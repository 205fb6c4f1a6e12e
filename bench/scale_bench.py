"""Scale benchmark: the full taxi DAG at 15 k / 150 k / 1.5 M rows, Beam in_memory vs multi_processing.

Usage: .venv/bin/python bench/scale_bench.py [WORK_DIR] [--sizes 15000,150000,1500000]
           [--modes in_memory,multi_processing] [--workers 2] [--set key=value ...]

15,000 rows is the taxi CSV itself; larger sizes are written by
``testing.taxi_scale`` (the same rows resampled with noise: cost, not quality).
Each (size, mode) is one cold ``python -m pipeline run`` in its own run
directory. For each it prints seconds per component (ML Metadata's own
timestamps), the orchestrator total, wall time and the peak RSS of the whole
process tree (the run and every process it starts, Beam workers and the model
server included, sampled every ``SAMPLE_SECONDS`` with psutil; pages shared
between processes are counted once per process, so this is an upper bound),
the peak RSS while each component executed (the samples inside its ML Metadata
interval: which component sets the peak), and then the log-log cost slope from
the second-largest to the largest size.
Results are also appended, one JSON line per run, to ``WORK_DIR/results.jsonl``
as each run ends, so a long series can be read while it runs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from typing import Dict, List, Sequence, Tuple

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.dirname(os.path.abspath(__file__))]
from pipeline_bench import ENV, executions, pipeline_cmd, total_seconds  # noqa: E402

from common.paths import TAXI_DEFAULT  # noqa: E402
from testing import taxi_scale  # noqa: E402

SOURCE_ROWS = 15_000
SAMPLE_SECONDS = 0.5
GB = 1024 ** 3


def data_dir(work: str, rows: int) -> str:
    """The taxi CSV itself at 15 k rows; a generated directory (written once) above."""
    if rows == SOURCE_ROWS:
        return TAXI_DEFAULT
    path = os.path.join(work, "data", f"taxi_{rows}")
    if not os.path.isfile(os.path.join(path, "data.csv")):
        taxi_scale.write_rows(path, rows)
    return path


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and all its descendants right now."""
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # ended between listing and reading
    return total


def run_sampled(cmd: List[str], log_path: str) -> Tuple[Dict[str, float], List[Tuple[float, int]]]:
    """Runs ``cmd``; returns wall seconds and the process tree's peak RSS, and the
    (epoch seconds, RSS bytes) samples; stdout goes to the log."""
    start = time.time()
    samples: List[Tuple[float, int]] = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT)
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            samples.append((time.time(), tree_rss(watched)))
            time.sleep(SAMPLE_SECONDS)
    wall = time.time() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log_path}")
    peak = max((rss for _, rss in samples), default=0)
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(peak / GB, 2)}, samples


def component_peaks(intervals: Sequence[Tuple[str, float, float]],
                    samples: Sequence[Tuple[float, int]]) -> Dict[str, float]:
    """Peak RSS in GB of the samples inside each (component, start s, end s) interval."""
    peaks: Dict[str, float] = {}
    for name, start, end in intervals:
        inside = [rss for at, rss in samples if start <= at <= end]
        if inside:
            peaks[name] = round(max(peaks.get(name, 0.0), max(inside) / GB), 2)
    return peaks


def run_once(work: str, rows: int, mode: str, workers: int, overrides: Sequence[str]) -> Dict[str, object]:
    label = f"{rows}_{mode}"
    run_dir = os.path.join(work, "runs", label)
    cmd = pipeline_cmd(run_dir, [f"data.path={data_dir(work, rows)}", f"beam.direct_running_mode={mode}",
                                 f"beam.direct_num_workers={workers if mode == 'multi_processing' else 1}",
                                 *overrides])
    log_path = os.path.join(work, f"{label}.log")
    result, samples = run_sampled(cmd, log_path)
    with open(log_path) as f:
        total = total_seconds(f.read())
    ran = executions(os.path.join(run_dir, "taxi", "metadata.db"))
    result.update(rows=rows, mode=mode, total_s=total,
                  components={name: round(end - start, 1) for name, start, end, _ in ran},
                  component_peak_rss_gb=component_peaks([(name, start, end) for name, start, end, _ in ran], samples))
    return result


def slope(small: float, large: float, ratio: float) -> float:
    """log-log slope: 1.0 is linear cost, below 1 is sub-linear."""
    return math.log(large / small) / math.log(ratio) if small > 0 and large > 0 else float("nan")


def print_table(results: List[Dict[str, object]]) -> None:
    heads = [f"{r['rows'] // 1000}k {'mem' if r['mode'] == 'in_memory' else 'mp'}" for r in results]
    names = list(dict.fromkeys(n for r in results for n in r["components"]))
    print("\nSeconds per component (ML Metadata):")
    print(f"  {'component':<34}" + "".join(f"{h:>10}" for h in heads))
    for name in names:
        print(f"  {name:<34}" + "".join(f"{r['components'].get(name, float('nan')):>10.1f}" for r in results))
    for key, title in (("total_s", "orchestrator total (s)"), ("wall_s", "wall (s)"),
                       ("peak_rss_gb", "peak RSS, process tree (GB)")):
        print(f"  {title:<34}" + "".join(f"{(r[key] or float('nan')):>10.1f}" for r in results))
    print("\nPeak RSS of the process tree while each component executed (GB):")
    for name in names:
        peaks = [r.get("component_peak_rss_gb", {}).get(name) for r in results]
        if any(peaks):
            print(f"  {name:<34}" + "".join(f"{p if p is not None else float('nan'):>10.2f}" for p in peaks))


def print_slopes(results: List[Dict[str, object]]) -> None:
    sizes = sorted({r["rows"] for r in results})
    if len(sizes) < 2:
        return
    small, large = sizes[-2], sizes[-1]
    print(f"\nCost slope, log-log {small} -> {large} rows (target <= 1.0):")
    for mode in sorted({r["mode"] for r in results}):
        by_size = {r["rows"]: r for r in results if r["mode"] == mode}
        if small in by_size and large in by_size:
            a, b = by_size[small], by_size[large]
            parts = [f"wall {slope(a['wall_s'], b['wall_s'], large / small):.2f}"]
            if a["total_s"] and b["total_s"]:
                parts.append(f"orchestrator {slope(a['total_s'], b['total_s'], large / small):.2f}")
            print(f"  {mode:<18} " + ", ".join(parts))


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work_dir", nargs="?", default="/tmp/scale_bench")
    parser.add_argument("--sizes", default="15000,150000,1500000")
    parser.add_argument("--modes", default="in_memory,multi_processing")
    parser.add_argument("--workers", type=int, default=2, help="direct_num_workers for multi_processing")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    results = []
    for rows in (int(s) for s in args.sizes.split(",")):
        for mode in args.modes.split(","):
            result = run_once(work, rows, mode, args.workers, args.overrides)
            results.append(result)
            with open(os.path.join(work, "results.jsonl"), "a") as f:
                f.write(json.dumps(result) + "\n")
            print(f"{rows} rows, {mode}: wall {result['wall_s']}s, orchestrator {result['total_s']}s, "
                  f"peak RSS {result['peak_rss_gb']} GB", flush=True)
    print_table(results)
    print_slopes(results)


if __name__ == "__main__":
    main(sys.argv[1:])
