"""Pipeline benchmark: our full DAG cold, then rerun, vs TFX's own taxi example, in one run.

Usage: .venv/bin/python bench/pipeline_bench.py [WORK_DIR] [--rounds N] [--reference_modes M1,M2] [--set key=value ...]
Prints seconds per component (from each run's ML Metadata), totals and the
Evaluator's overall metrics for both pipelines, our no-op rerun (nothing changed:
answered from the recorded fingerprints) and our forced warm rerun (``--force``:
the DAG with every execution cached), and the load average before and after.

A single cold pair moves by about +-0.05 in the ratio on this 2-core machine from
one invocation to the next (other processes, page cache). ``--rounds N`` runs N
cold pairs back to back, ours then TFX's in each round, and prints every round's
ratios and their median: the figure to quote.
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _reference_script() -> str:
    """TFX's taxi example script: $TFX_TAXI_EXAMPLE, else ``shared/tools/`` beside the checkout
    or beside any directory above it (a git worktree lives one level deeper than main)."""
    if os.environ.get("TFX_TAXI_EXAMPLE"):
        return os.environ["TFX_TAXI_EXAMPLE"]
    here = REPO
    while os.path.dirname(here) != here:
        here = os.path.dirname(here)
        candidate = os.path.join(here, "shared", "tools", "tfx_taxi_example.py")
        if os.path.exists(candidate):
            return candidate
    return os.path.join(os.path.dirname(REPO), "shared", "tools", "tfx_taxi_example.py")


REFERENCE = _reference_script()
ENV = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0")


def executions(metadata_path: str):
    """(component, start s, end s, state) per execution, from MLMD's own timestamps."""
    db = sqlite3.connect(metadata_path)
    try:
        rows = db.execute(
            "SELECT c.name, e.create_time_since_epoch, e.last_update_time_since_epoch, e.last_known_state "
            "FROM Execution e JOIN Association a ON a.execution_id = e.id JOIN Context c ON c.id = a.context_id "
            "JOIN Type t ON t.id = c.type_id WHERE t.name = 'node' ORDER BY e.id").fetchall()
    finally:
        db.close()
    states = {3: "done", 4: "failed", 5: "cached"}
    return [(name.split(".", 1)[1], start / 1000.0, end / 1000.0, states.get(state, str(state)))
            for name, start, end, state in rows]


def component_seconds(metadata_path: str):
    """(component, seconds, state) per execution, from MLMD's own timestamps."""
    return [(name, end - start, state) for name, start, end, state in executions(metadata_path)]


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


def pipeline_cmd(run_dir, settings=(), flags=()):
    """``python -m pipeline run`` of the taxi config into ``run_dir`` (its push dir inside),
    with ``--set`` for each of ``settings`` (KEY=VALUE; later ones win) and ``flags``."""
    cmd = [sys.executable, "-m", "pipeline", "run", "--config", "configs/taxi.yaml",
           "--set", f"run_dir={run_dir}", "--set", f"serving.push_dir={run_dir}/serving", *flags]
    for setting in settings:
        cmd += ["--set", setting]
    return cmd


def total_seconds(out):
    """The orchestrator's total from a run's printed summary, or None (nothing ran)."""
    total = re.search(r"^\s+total\s+([\d.]+)s", out, re.M)
    return float(total.group(1)) if total else None


def ours(work, overrides, label, *flags):
    out, wall = run(pipeline_cmd(f"{work}/ours", overrides, flags), os.path.join(work, f"ours_{label}.log"))
    total = total_seconds(out) or 0.0  # a no-op rerun runs nothing
    metrics = dict((m.group(1), float(m.group(2)))
                   for m in re.finditer(r"^\s{2}(auc|binary_accuracy|precision|recall|calibration)\s+([\d.]+)$",
                                        out, re.M))
    baselines = re.findall(r"baseline: (.+?)\s+([\d.]+) \(accuracy(.*)\)", out)
    return {"total_s": total, "wall_s": round(wall, 1), "metrics": metrics, "baselines": baselines,
            "stdout": out}


def reference_run(work, mode):
    """TFX's example once, cold, in Beam ``mode`` (in_memory or multi_processing)."""
    out_dir = os.path.join(work, f"reference_{mode}")
    out, wall = run([sys.executable, REFERENCE, out_dir, mode], os.path.join(work, f"reference_{mode}.log"))
    total = float(re.search(r"TOTAL_SECONDS ([\d.]+)", out).group(1))
    metrics = json.loads(out.strip().splitlines()[-1])
    return {"mode": mode, "total_s": total, "wall_s": round(wall, 1), "metrics": metrics,
            "components": component_seconds(os.path.join(out_dir, "metadata.db"))}


def reference(work, modes):
    """TFX's example in each of ``modes``; the faster run (orchestrator time) is the reference,
    with every mode's totals under ``"modes"``."""
    runs = [reference_run(work, mode) for mode in modes]
    fastest = dict(min(runs, key=lambda r: r["total_s"]))
    fastest["modes"] = [(r["mode"], r["total_s"], r["wall_s"]) for r in runs]
    return fastest


def more_round(work, overrides, k, modes):
    """Round ``k``: ours cold in a fresh directory, then TFX's example (also fresh)."""
    round_dir = os.path.join(work, f"round{k}")
    os.makedirs(round_dir)
    return ours(round_dir, overrides, "cold"), reference(round_dir, modes)


def print_rounds(pairs):
    """Each round's totals and ratios, then the median ratios over the rounds."""
    print(f"\nCold rounds (ours then TFX's example, back to back), {len(pairs)} rounds:")
    orchestrator, wall = [], []
    for k, (mine, theirs) in enumerate(pairs, 1):
        orchestrator.append(mine["total_s"] / theirs["total_s"])
        wall.append(mine["wall_s"] / theirs["wall_s"])
        print(f"  round {k}: ours {mine['total_s']:.1f}s (wall {mine['wall_s']}s), TFX {theirs['mode']} "
              f"{theirs['total_s']:.1f}s "
              f"(wall {theirs['wall_s']}s): {orchestrator[-1]:.2f}x orchestrator, {wall[-1]:.2f}x wall")
    print(f"  median: {statistics.median(orchestrator):.2f}x orchestrator, {statistics.median(wall):.2f}x wall")


def print_components(title, rows):
    print(f"\n{title}")
    for name, seconds, state in rows:
        print(f"  {name:<34} {state:<7} {seconds:7.1f}s")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work_dir", nargs="?", default="/tmp/pipeline_bench")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rounds", type=int, default=1, help="cold pairs (ours, TFX's) to run; median ratio")
    parser.add_argument("--reference_modes", default="in_memory",
                        help="Beam modes to run TFX's example in, comma-separated (in_memory, "
                             "multi_processing); each round compares with the faster. in_memory alone by "
                             "default: its faster mode here (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.reference_modes.split(",") if m.strip()]
    work, overrides = os.path.abspath(args.work_dir), args.overrides
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    load_before = os.getloadavg()
    cold = ours(work, overrides, "cold")
    cold_components = component_seconds(os.path.join(work, "ours", "taxi", "metadata.db"))
    noop = ours(work, overrides, "noop")
    if "nothing changed since run" not in noop["stdout"]:
        raise SystemExit("the rerun with nothing changed executed; see ours_noop.log")
    warm = ours(work, overrides, "warm", "--force")
    ref = reference(work, modes) if os.path.exists(REFERENCE) else None
    pairs = ([(cold, ref)] + [more_round(work, overrides, k, modes) for k in range(2, args.rounds + 1)]) if ref else []
    load_after = os.getloadavg()

    print_components("Ours, cold (seconds per component):", cold_components)
    if ref:
        print_components(f"TFX taxi example, {ref['mode']} (seconds per component):", ref["components"])
    print("\nTotals (orchestrator run time; wall time includes Python/TF start-up):")
    print(f"  ours cold            {cold['total_s']:7.1f}s   (wall {cold['wall_s']}s)")
    print(f"  ours no-op rerun     {noop['total_s']:7.1f}s   (wall {noop['wall_s']}s)")
    print(f"  ours warm (--force)  {warm['total_s']:7.1f}s   (wall {warm['wall_s']}s)")
    if ref:
        for mode, total, wall in ref["modes"]:
            print(f"  TFX example, {mode:<16} {total:7.1f}s   (wall {wall}s)")
        print(f"  ours cold / TFX:     {cold['total_s'] / ref['total_s']:.2f}x orchestrator, "
              f"{cold['wall_s'] / ref['wall_s']:.2f}x wall")
    if len(pairs) > 1:
        print_rounds(pairs)
    print("  load average (1/5/15 min) before: " + " ".join(f"{x:.2f}" for x in load_before)
          + ", after: " + " ".join(f"{x:.2f}" for x in load_after))
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
