"""Serving benchmark: the gateway on loopback beside the bare in-process model call.

Usage: .venv/bin/python bench/serving_bench.py --config configs/taxi.yaml
           [--model_base_path DIR] [--seconds 5] [--rows 64] [--out FILE.json]

Model: the newest version under ``--model_base_path`` (default: the config's
``<serving.push_dir>/<model_name>``); when none is pushed there, the tiny
taxi-shaped test model (testing/tiny_model.py) is built in a temp dir and
the report says so. The gateway runs as ``make serve`` runs it (batching,
schema validation and the request log on, into a temp dir).

Prints, for concurrency 1, 8 and 64 and for single-row and batched
(``--rows`` rows) requests: p50/p99 latency, requests/s, predictions/s and
errors; plus the bare ``serving_default`` call (1 row and ``--rows`` rows) in
this process (with cached and with freshly built input tensors), the
gateway overhead at concurrency 1 (p50 minus the bare p50, for 1 and
``--rows`` rows), and the request log's rows on disk after the gateway has
stopped (SIGTERM) against the rows answered. Clients are threads of this
process with keep-alive connections. The load average is printed: the
figures only compare on a quiet machine.
"""
import argparse
import concurrent.futures
import json
import os
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from common.loader import load_config  # noqa: E402
from serving.backends import scan_versions  # noqa: E402
from serving.client import Client  # noqa: E402
from serving.request_log import iter_window, list_spans  # noqa: E402
from serving.server import launch  # noqa: E402

CONCURRENCY = (1, 8, 64)


def percentile(values: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def bare_call(model_dir: str, instance: Dict[str, Any], rows: int, seconds: float) -> Dict[str, Any]:
    """serving_default called directly in this process, two ways.

    ``cached``: the same input tensors every call (TF's best case);
    ``fresh``: input tensors built from numpy arrays on each call, as any
    server must do for new requests (TF binds fresh tensors noticeably slower).
    """
    import tensorflow as tf

    fn = tf.saved_model.load(model_dir).signatures["serving_default"]
    specs = fn.structured_input_signature[1]
    arrays = {name: np.asarray([instance[name]] * rows, dtype=object if spec.dtype == tf.string
                               else spec.dtype.as_numpy_dtype) for name, spec in specs.items()}
    cached = {name: tf.constant(a, dtype=specs[name].dtype) for name, a in arrays.items()}
    calls = {
        "cached": lambda: fn(**cached),
        "fresh": lambda: fn(**{name: tf.constant(a, dtype=specs[name].dtype) for name, a in arrays.items()}),
    }
    figures: Dict[str, Any] = {"rows": rows}
    for kind, call in calls.items():
        for _ in range(20):
            call()
        latencies = []
        deadline = time.perf_counter() + seconds / 2
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            {k: v.numpy() for k, v in call().items()}
            latencies.append((time.perf_counter() - start) * 1000)
        figures[kind] = {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
                         "predictions_per_s": len(latencies) * rows / (sum(latencies) / 1000)}
    return figures


def load(base_url: str, path: str, body: Dict[str, Any], rows: int, concurrency: int,
         seconds: float) -> Dict[str, float]:
    """``concurrency`` keep-alive clients sending ``body`` for ``seconds``."""
    payload = json.dumps(body).encode()
    latencies: List[float] = []
    errors = [0]
    answered = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)
    stop = threading.Event()

    def client() -> None:
        mine, bad, good = [], 0, 0
        with Client(base_url) as c:
            status, _, _ = c.request("POST", path, raw=payload)  # connect + warm up
            good += rows if status == 200 else 0
            barrier.wait()
            while not stop.is_set():
                start = time.perf_counter()
                status, answer, _ = c.request("POST", path, raw=payload)
                mine.append((time.perf_counter() - start) * 1000)
                if status != 200 or len(answer.get("predictions", ())) != rows:
                    bad += 1
                else:
                    good += rows
        with lock:
            latencies.extend(mine)
            errors[0] += bad
            answered[0] += good

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(client) for _ in range(concurrency)]
        barrier.wait()
        start = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - start
    return {"concurrency": concurrency, "rows": rows, "requests": len(latencies),
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "requests_per_s": len(latencies) / elapsed,
            "predictions_per_s": len(latencies) * rows / elapsed, "errors": errors[0],
            "answered_rows": answered[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "taxi.yaml"))
    parser.add_argument("--model_base_path")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rows", type=int, default=64, help="rows per batched request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--out", help="also write the figures as JSON")
    args = parser.parse_args()
    cfg = load_config(args.config)
    work = tempfile.mkdtemp(prefix="serving-bench-")
    base = os.path.abspath(args.model_base_path or cfg.push_dir)
    model = "pushed model"
    if not scan_versions(base):
        from testing.tiny_model import push_version, save_tiny_model

        base = os.path.join(work, "serving", cfg.serving.model_name)
        push_version(base, 1, save_tiny_model(os.path.join(work, "tiny"), cfg, 0.0))
        model = "tiny test model (nothing pushed under the config's push_dir)"
    version = scan_versions(base)[-1]
    from testing.tiny_model import INSTANCE

    print(f"model: {model}: {base}/{version}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    results: Dict[str, Any] = {"model": model, "model_dir": f"{base}/{version}",
                               "bare": [], "gateway": []}
    for rows in (1, args.rows):
        figures = bare_call(os.path.join(base, str(version)), INSTANCE, rows, args.seconds)
        results["bare"].append(figures)
        for kind in ("cached", "fresh"):
            f = figures[kind]
            print(f"bare serving_default call, {rows:>3} row(s), {kind} tensors: p50 {f['p50_ms']:.3f} ms, "
                  f"p99 {f['p99_ms']:.3f} ms, {f['predictions_per_s']:.0f} predictions/s")
    log_dir = os.path.join(work, "request_log")
    gateway_args = ["--config", args.config, "--model_base_path", base,
                    "--models_config", os.path.join(work, "models.config"), "--request_log_dir", log_dir]
    with launch(gateway_args, startup_timeout_s=300) as server:
        path = f"/v1/models/{cfg.serving.model_name}:predict"
        print(f"{'requests':<10} {'conc.':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} "
              f"{'pred/s':>9} {'errors':>6}")
        for rows in (1, args.rows):
            for concurrency in args.concurrency:
                figures = load(server.base_url, path, {"instances": [INSTANCE] * rows}, rows,
                               concurrency, args.seconds)
                results["gateway"].append(figures)
                kind = "single" if rows == 1 else f"{rows} rows"
                print(f"{kind:<10} {concurrency:>5} {figures['p50_ms']:>8.3f} {figures['p99_ms']:>8.3f} "
                      f"{figures['requests_per_s']:>8.0f} {figures['predictions_per_s']:>9.0f} "
                      f"{figures['errors']:>6}")
    single_c1 = next(g for g in results["gateway"] if g["rows"] == 1 and g["concurrency"] == 1)
    results["overhead_p50_ms_c1"] = single_c1["p50_ms"] - results["bare"][0]["fresh"]["p50_ms"]
    results["overhead_vs_cached_p50_ms_c1"] = single_c1["p50_ms"] - results["bare"][0]["cached"]["p50_ms"]
    batched_c1 = next(g for g in results["gateway"] if g["rows"] == args.rows and g["concurrency"] == 1)
    results["overhead_batched_p50_ms_c1"] = batched_c1["p50_ms"] - results["bare"][1]["fresh"]["p50_ms"]
    results["answered_rows"] = sum(g["answered_rows"] for g in results["gateway"])
    results["logged_rows"] = sum(1 for span in list_spans(log_dir) for _ in iter_window(log_dir, span))
    results["best_batched_predictions_per_s"] = max(
        g["predictions_per_s"] for g in results["gateway"] if g["rows"] > 1)
    results["errors"] = sum(g["errors"] for g in results["gateway"])
    print(f"gateway overhead at concurrency 1 (p50, single row): {results['overhead_p50_ms_c1']:.3f} ms "
          f"over the bare call with fresh tensors, {results['overhead_vs_cached_p50_ms_c1']:.3f} ms over "
          "cached tensors (target <= 1 ms)")
    print(f"gateway overhead at concurrency 1 (p50, {args.rows} rows): "
          f"{results['overhead_batched_p50_ms_c1']:.3f} ms over the bare call with fresh tensors")
    print(f"best batched throughput: {results['best_batched_predictions_per_s']:.0f} predictions/s "
          f"(target >= 1000); errors: {results['errors']} (target 0)")
    print(f"request log: {results['logged_rows']} rows on disk for {results['answered_rows']} rows "
          f"answered ({results['answered_rows'] - results['logged_rows']} lost, target 0); "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
