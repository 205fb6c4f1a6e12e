"""Seconds and peak RSS of one CSV ExampleGen executor alone: TFX 1.16's against ours.

    .venv/bin/python bench/example_gen_memory.py <csv dir> [--executors tfx,ours] [--work_dir D]

Each executor runs in a fresh process (DirectRunner in_memory, one worker, the
pipeline's split: train 2 buckets, eval 1) and prints its wall seconds and the
process's peak RSS (``ru_maxrss``), and the RSS before reading anything. Data:
``bench/scale_bench.py`` writes taxi-shaped CSVs of 150 k and 1.5 M rows under
``<its work dir>/data/taxi_<rows>/``. Why ours differs: ``components/csv_example_gen.py``.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def run_one(executor: str, data_dir: str, out: str) -> dict:
    """Runs in this process: one executor over ``data_dir`` into ``out``."""
    from tfx.components.example_gen.csv_example_gen import executor as tfx_csv

    from components.csv_example_gen import TwoPassCsvExecutor
    from testing.example_gen_run import run_csv_executor

    shutil.rmtree(out, ignore_errors=True)
    executor_class = {"tfx": tfx_csv.Executor, "ours": TwoPassCsvExecutor}[executor]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    start = time.time()
    run_csv_executor(executor_class, data_dir, out,
                     beam_pipeline_args=("--direct_running_mode=in_memory", "--direct_num_workers=1"))
    return {"executor": executor, "seconds": round(time.time() - start, 1), "rss_before_gb": round(before, 2),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", help="a directory of CSV files with a header row")
    parser.add_argument("--executors", default="tfx,ours")
    parser.add_argument("--work_dir", default=None, help="where the examples are written (default: a temp dir)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="example-gen-bench-")
    if args.child:
        print(json.dumps(run_one(args.child, os.path.abspath(args.data_dir), os.path.join(work, args.child))))
        return 0
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    print(f"{'executor':<8} {'seconds':>8} {'RSS before':>11} {'peak RSS':>9}   ({args.data_dir}, load average "
          f"{os.getloadavg()[0]:.1f})")
    for executor in args.executors.split(","):
        result = subprocess.run([sys.executable, __file__, args.data_dir, "--work_dir", work, "--child", executor],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if result.returncode != 0:
            print(f"{executor:<8} failed (exit {result.returncode})")
            continue
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{executor:<8} {figures['seconds']:>8.1f} {figures['rss_before_gb']:>9.2f} GB "
              f"{figures['peak_rss_gb']:>6.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
