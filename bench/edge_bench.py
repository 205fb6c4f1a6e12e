"""Per-row latency and batch throughput: SavedModel vs TFLite vs TF.js (Node).

    .venv/bin/python bench/edge_bench.py --model_dir runs/serving/taxi/<version>
    .venv/bin/python bench/edge_bench.py              # trains a tiny taxi model first (as the tests do)

The same taxi eval rows go to the three runtimes: ``serving_default`` of the
SavedModel (what TF Serving runs), ``tf.lite.Interpreter`` on model.tflite,
and the TF.js graph model in Node with the pure-JS CPU backend. Single-row
calls give the per-row latency (p50/p99 in ms), one call over all rows the
batch throughput (rows/s). Each runtime also reports its largest difference
from the SavedModel. Not part of ``make test``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.loader import load_config  # noqa: E402
from edge import runtime  # noqa: E402
from testing.edge_model import read_taxi_csv, serving_rows, train_and_export  # noqa: E402
from tests.conftest import TAXI_CONFIG  # noqa: E402

RUNTIMES = {"SavedModel": runtime.saved_model, "TFLite": runtime.tflite, "TF.js (Node)": runtime.tfjs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", help="a model with assets.extra/ edge files (default: train a tiny one)")
    parser.add_argument("--config", default=TAXI_CONFIG)
    parser.add_argument("--single_rows", type=int, default=300, help="rows sent one at a time")
    parser.add_argument("--batch_rows", type=int, default=2000, help="rows sent in one call")
    args = parser.parse_args()
    cfg = load_config(args.config)
    model_dir = args.model_dir
    if not model_dir:
        model_dir, _, _, seconds = train_and_export(cfg, tempfile.mkdtemp(prefix="edge_bench_"))
        print(f"trained a tiny model; the export took {seconds:.1f} s (incl. edge exports)")
    rows = serving_rows(cfg, read_taxi_csv(cfg, 5000, max(args.single_rows, args.batch_rows)))
    reference = runtime.saved_model(model_dir, rows[:args.batch_rows]).outputs
    print(f"model: {model_dir}\nrows: {args.single_rows} single-row calls, one call of {args.batch_rows} rows\n")
    print(f"{'runtime':14} {'p50 ms/row':>11} {'p99 ms/row':>11} {'mean ms/row':>12} "
          f"{'batch rows/s':>13} {'max |diff|':>11}")
    for name, run in RUNTIMES.items():
        single = run(model_dir, rows[:args.single_rows], single=True)
        batch = run(model_dir, rows[:args.batch_rows])
        per_row = np.array(single.per_row_ms)
        diff = float(np.max(np.abs(batch.outputs - reference)))
        print(f"{name:14} {np.percentile(per_row, 50):11.3f} {np.percentile(per_row, 99):11.3f} "
              f"{per_row.mean():12.3f} {args.batch_rows / (batch.batch_ms / 1000):13.0f} {diff:11.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
