"""Feedback benchmark: accepting labels and joining them into a labelled span.

Usage: .venv/bin/python bench/feedback_bench.py [--config configs/taxi.yaml] [--labels 10000]
           [--out FILE.json]

In a temp dir: ``--labels`` one-row taxi requests are written to a request log
(as the gateway logs them), then timed:

* index rebuild: a restarted gateway reading the request ids back from the span;
* labels accepted in batches of 1000 (the endpoint's all-or-nothing path:
  checks, one write and one fsync per batch) and 200 single-label submissions
  (one fsync each, the slowest client);
* the join of all labels into version 1 of the labelled span (the budget: 10 s
  for 10,000 labels; wall and CPU time, the CPU time being what the join costs
  on an idle machine), the re-join with no new byte in the span (no version
  written, nothing read) and the join after one late label (version 2).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common.loader import load_config  # noqa: E402
from serving import request_log  # noqa: E402
from serving.feedback.join import join_span  # noqa: E402
from serving.feedback.labels import LabelSpec  # noqa: E402
from serving.feedback.service import Feedback  # noqa: E402
from testing.feedback import log_requests  # noqa: E402

BATCH = 1000
SINGLES = 200


def timed(call: Callable[[], Any]) -> "tuple[Any, float]":
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def cpu_timed(call: Callable[[], Any]) -> "tuple[Any, float, float]":
    """(result, wall seconds, CPU seconds of this process): the CPU time does not grow
    when other processes share the cores."""
    cpu = time.process_time()
    result, wall = timed(call)
    return result, wall, time.process_time() - cpu


def run(config: str, labels: int) -> Dict[str, Any]:
    cfg = load_config(config, require_data=False)
    spec = LabelSpec.from_config(cfg)
    window = cfg.serving.request_log_window_seconds
    with tempfile.TemporaryDirectory() as log_dir:
        ids = [f"req-{i}" for i in range(labels + SINGLES + 1)]
        now = time.time()
        timestamp = request_log.span_for(now, window) * window + 1  # one span
        log_requests(log_dir, cfg, ids, timestamp=timestamp)
        feedback, rebuild_s = timed(lambda: Feedback.open(log_dir, spec, window,
                                                          cfg.serving.feedback_window_spans))
        span = request_log.span_for(timestamp, window)

        def batches() -> None:
            for start in range(0, labels, BATCH):
                items = [{"request_id": ids[i], "label": float(i % 7)}
                         for i in range(start, min(start + BATCH, labels))]
                feedback.submit(cfg.serving.model_name, items, lambda i: f"feedback[{i}]")

        def singles() -> None:
            for i in range(labels, labels + SINGLES):
                feedback.submit(cfg.serving.model_name, [{"request_id": ids[i], "label": 1.0}], str)

        _, batch_s = timed(batches)
        _, single_s = timed(singles)
        first, join_s, join_cpu_s = cpu_timed(lambda: join_span(log_dir, span, spec))
        again, rejoin_s = timed(lambda: join_span(log_dir, span, spec))
        feedback.submit(cfg.serving.model_name, [{"request_id": ids[-1], "label": 2.0}], str)
        late, late_s = timed(lambda: join_span(log_dir, span, spec))
        assert (first.version, again.written, late.version) == (1, False, 2), (first, again, late)
        return {
            "requests_logged": len(ids),
            "index_rebuild_s": round(rebuild_s, 3),
            "labels_per_s_batched": round(labels / batch_s),
            "labels_per_s_single": round(SINGLES / single_s),
            "join_rows": first.rows,
            "join_s": round(join_s, 3),
            "join_cpu_s": round(join_cpu_s, 3),
            "rejoin_unchanged_s": round(rejoin_s, 3),
            "join_late_label_s": round(late_s, 3),
            "version_bytes": os.path.getsize(os.path.join(first.path, "data.tfrecord.gz")),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "taxi.yaml"))
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()
    figures = run(args.config, args.labels)
    for key, value in figures.items():
        print(f"{key:24s} {value}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
