"""Per-statement latency of the browser extension: full TF.js export vs statement-only bundle.

    .venv/bin/python bench/extension_bench.py --model_dir runs/serving/liar/<version> \\
        --statements valid.tsv [--config configs/liar.yaml] [--limit 60] [--rounds 3]

Both bundles are built from the same pushed model (``edge.browser_extension``:
``--full_model`` and the default statement-only specialisation), then timed one
statement per call, as a user checks them: in Node through the extension's own
scorer.js (``bench/extension_bench.mjs``, calls interleaved) and in headless
Chromium through the service worker (``tests/extension/drive_extension.mjs``,
bundles alternated, ``--rounds`` times). Also prints the largest difference
between the two bundles' page scores. Chromium's timer is coarse (0.1 ms).
``--statements``: a JSON list, a TSV with the config's columns (the text
feature's column is read), or one statement per line. Not part of ``make test``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from common.config import PipelineConfig  # noqa: E402
from common.loader import load_config  # noqa: E402
from edge import browser_extension  # noqa: E402

NODE_BENCH = os.path.join(REPO_ROOT, "bench", "extension_bench.mjs")
CHROMIUM_DRIVER = os.path.join(REPO_ROOT, "tests", "extension", "drive_extension.mjs")


def read_statements(path: str, cfg: PipelineConfig, limit: int) -> List[str]:
    """Statements from a JSON list, a headerless TSV with the config's columns, or plain lines."""
    with open(path, encoding="utf-8") as f:
        if path.endswith(".json"):
            statements = json.load(f)
        elif path.endswith(".tsv"):
            names = [c.name for c in cfg.data.columns]
            column = browser_extension.text_feature(cfg)
            if column not in names:
                raise SystemExit(f"{path}: the config's columns {names} have no {column!r}")
            statements = [line.rstrip("\r\n").split("\t")[names.index(column)] for line in f]
        else:
            statements = [line.strip() for line in f]
    statements = [s for s in statements if isinstance(s, str) and s.strip()][:limit]
    if not statements:
        raise SystemExit(f"{path}: no statements")
    return statements


def _run(cmd: List[str]) -> dict:
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a pushed model version with assets.extra/ edge files")
    parser.add_argument("--statements", required=True, help="JSON list, TSV (config columns) or one per line")
    parser.add_argument("--config", default="configs/liar.yaml")
    parser.add_argument("--limit", type=int, default=60, help="statements used")
    parser.add_argument("--rounds", type=int, default=3, help="Chromium runs per bundle; Node passes")
    args = parser.parse_args()
    cfg = load_config(args.config, require_data=False)
    statements = read_statements(args.statements, cfg, args.limit)
    with tempfile.TemporaryDirectory(prefix="extension_bench_") as tmp:
        bundles = {"full": browser_extension.build(cfg, os.path.join(tmp, "full"), args.model_dir,
                                                   full_model=True),
                   "statement_only": browser_extension.build(cfg, os.path.join(tmp, "statement_only"),
                                                             args.model_dir)}
        statements_file = os.path.join(tmp, "statements.json")
        with open(statements_file, "w", encoding="utf-8") as f:
            json.dump(statements, f)
        node = _run(["node", NODE_BENCH, "--statements", statements_file, "--rounds", str(args.rounds),
                     *bundles.values()])
        chromium: Dict[str, List[float]] = {name: [] for name in bundles}
        pages: Dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, path in bundles.items():
                result = _run(["node", CHROMIUM_DRIVER, path, statements_file])
                chromium[name].append(result["latency"]["median_ms"])
                pages[name] = np.array([v["raw"] for v in result["verdicts"]])  # the claim sentences
    print(f"model: {args.model_dir}\nstatements: {len(statements)}, one per call; rounds: {args.rounds}\n")
    print(f"{'bundle':16} {'Node median':>12} {'Node p90':>9} {'Chromium median':>16}  (ms per statement)")
    for name, path in bundles.items():
        n = node[path]
        print(f"{name:16} {n['median_ms']:12.2f} {n['p90_ms']:9.2f} {statistics.median(chromium[name]):16.2f}"
              f"   Chromium runs: {', '.join(f'{v:.1f}' for v in chromium[name])}")
    print(f"\nmax |full - statement_only| on the page scores: "
          f"{float(np.max(np.abs(pages['full'] - pages['statement_only']))):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
