"""Pipeline benchmark: our full DAG cold and warm vs TFX's own taxi example, in one run.

Usage: .venv/bin/python bench/pipeline_bench.py [WORK_DIR] [--set key=value ...]
Prints seconds per component (from each run's ML Metadata), totals and the
Evaluator's overall metrics for both pipelines, and our warm rerun time.
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(os.path.dirname(REPO), "shared", "tools", "tfx_taxi_example.py")
ENV = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0")


def component_seconds(metadata_path: str):
    """(component, seconds) per execution, from MLMD's own timestamps."""
    db = sqlite3.connect(metadata_path)
    rows = db.execute(
        "SELECT c.name, e.create_time_since_epoch, e.last_update_time_since_epoch, e.last_known_state "
        "FROM Execution e JOIN Association a ON a.execution_id = e.id JOIN Context c ON c.id = a.context_id "
        "JOIN Type t ON t.id = c.type_id WHERE t.name = 'node' ORDER BY e.id").fetchall()
    states = {3: "done", 4: "failed", 5: "cached"}
    return [(name.split(".", 1)[1], (end - start) / 1000.0, states.get(state, str(state)))
            for name, start, end, state in rows]


def run(cmd, log_path):
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=log, text=True)
    wall = time.time() - start
    with open(log_path, "a") as log:
        log.write(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log_path}")
    return proc.stdout, wall


def ours(work, overrides, label):
    cmd = [sys.executable, "-m", "pipeline", "run", "--config", "configs/taxi.yaml",
           "--set", f"run_dir={work}/ours", "--set", f"serving.push_dir={work}/ours/serving"]
    for o in overrides:
        cmd += ["--set", o]
    out, wall = run(cmd, os.path.join(work, f"ours_{label}.log"))
    total = float(re.search(r"^\s+total\s+([\d.]+)s", out, re.M).group(1))
    metrics = dict((m.group(1), float(m.group(2)))
                   for m in re.finditer(r"^\s{2}(auc|binary_accuracy|precision|recall|calibration)\s+([\d.]+)$",
                                        out, re.M))
    baselines = re.findall(r"baseline: (.+?)\s+([\d.]+) \(accuracy(.*)\)", out)
    return {"total_s": total, "wall_s": round(wall, 1), "metrics": metrics, "baselines": baselines,
            "stdout": out}


def reference(work):
    out_dir = os.path.join(work, "reference")
    out, wall = run([sys.executable, REFERENCE, out_dir, "in_memory"], os.path.join(work, "reference.log"))
    total = float(re.search(r"TOTAL_SECONDS ([\d.]+)", out).group(1))
    metrics = json.loads(out.strip().splitlines()[-1])
    return {"total_s": total, "wall_s": round(wall, 1), "metrics": metrics,
            "components": component_seconds(os.path.join(out_dir, "metadata.db"))}


def print_components(title, rows):
    print(f"\n{title}")
    for name, seconds, state in rows:
        print(f"  {name:<34} {state:<7} {seconds:7.1f}s")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work_dir", nargs="?", default="/tmp/pipeline_bench")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    work, overrides = os.path.abspath(args.work_dir), args.overrides
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cold = ours(work, overrides, "cold")
    cold_components = component_seconds(os.path.join(work, "ours", "taxi", "metadata.db"))
    warm = ours(work, overrides, "warm")
    ref = reference(work) if os.path.exists(REFERENCE) else None

    print_components("Ours, cold (seconds per component):", cold_components)
    if ref:
        print_components("TFX taxi example, in_memory (seconds per component):", ref["components"])
    print("\nTotals (orchestrator run time; wall time includes Python/TF start-up):")
    print(f"  ours cold            {cold['total_s']:7.1f}s   (wall {cold['wall_s']}s)")
    print(f"  ours warm (cached)   {warm['total_s']:7.1f}s   (wall {warm['wall_s']}s)")
    if ref:
        print(f"  TFX taxi example     {ref['total_s']:7.1f}s   (wall {ref['wall_s']}s)")
    print("\nEval metrics (eval split):")
    print("  ours: " + ", ".join(f"{k}={v:.4f}" for k, v in cold["metrics"].items()))
    for name, value, rest in cold["baselines"]:
        print(f"  baseline {name}: accuracy={value}{rest}")
    if ref:
        m = ref["metrics"]
        print("  TFX taxi example: " + ", ".join(f"{k}={m[k]:.4f}" for k in sorted(m) if m[k] is not None
                                              and k in ("auc", "binary_accuracy", "precision", "recall",
                                                        "calibration")))


if __name__ == "__main__":
    main(sys.argv[1:])
