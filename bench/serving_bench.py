"""Serving benchmark: the gateway on loopback beside the bare in-process model call.

Usage: .venv/bin/python bench/serving_bench.py --config configs/taxi.yaml
           [--model_base_path DIR] [--seconds 5] [--rows 64] [--out FILE.json]
           [--event_loop uvloop|asyncio]

Model: the newest version under ``--model_base_path`` (default: the config's
``<serving.push_dir>/<model_name>``); when none is pushed there, the tiny
taxi-shaped test model (testing/tiny_model.py) is built in a temp dir and
the report says so. The gateway runs as ``make serve`` runs it (batching,
schema validation and the request log on, into a temp dir).

Prints, in one run:

* the bare ``serving_default`` call in this process, 1 row and ``--rows``
  rows, three ways: ``strict`` gives numpy arrays of each input's dtype to
  the fastest call this code knows (``serving.signature_call``'s flat call,
  the one the gateway makes: tensors built on each call, as any server must
  for a new request); ``public`` builds the tensors with ``tf.constant`` and
  makes TF's public keyword call (~0.65 ms of binding and casting the
  gateway skips); ``cached`` reuses the same tensors in the public call (TF's
  best case for that call, which no server gets);
* where the gateway's own time goes: each stage of a predict (JSON parse,
  body and schema checks, rows to arrays, tensors and the model call (as the
  gateway makes them: ``serving.signature_call``), outputs to JSON, the
  answer's bytes, the request-log enqueue) timed alone in this
  process on a gateway built exactly as ``python -m serving start`` builds it
  (``serving.cli.start_settings``), beside the whole ``Gateway.handle`` call;
* the gateway over HTTP at concurrency 1, 8 and 64 for single-row and
  ``--rows``-row requests: p50/p99 latency, requests/s, predictions/s, errors;
* the gateway overhead at concurrency 1: HTTP p50 minus the bare p50, for
  1 and ``--rows`` rows; the headline is the *strict overhead*, over the
  ``strict`` call (what a server must at least do, done the fastest way
  known: everything above it is the gateway's); over the ``public`` and
  ``cached`` calls too, labelled so;
* the request log's rows on disk after the gateway has stopped (SIGTERM)
  against the rows answered.

Clients are threads of this process, each with one keep-alive connection
sending the prepared request bytes and reading the answer with a few lines
of socket code (``RawClient``: http.client's header parsing alone costs more
than the overhead being measured); every answer's status and row count are
checked. The load average is printed before and after: the figures only
compare on a quiet machine.
"""
import argparse
import concurrent.futures
import json
import os
import socket
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from common.loader import load_config  # noqa: E402
from serving.backends import scan_versions  # noqa: E402
from serving.request_log import iter_window, list_spans  # noqa: E402
from serving.server import launch  # noqa: E402

CONCURRENCY = (1, 8, 64)


def percentile(values: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


class BareCall:
    """serving_default called directly in this process, three ways (``KINDS``).

    ``strict``: numpy arrays of each input's dtype to ``SignatureCall`` (the
    flat call the gateway makes, tensors built from the arrays on each call):
    the least any server must do for a new request, the fastest way known;
    ``public``: tensors built with ``tf.constant`` on each call, then TF's
    public keyword call, which binds and casts them against the signature;
    ``cached``: the same tensors every call to the public call (its best case).
    """

    KINDS = ("strict", "public", "cached")

    def __init__(self, model_dir: str, instance: Dict[str, Any]) -> None:
        import tensorflow as tf

        from serving.codec import InputSpec
        from serving.signature_call import SignatureCall

        self._tf = tf
        self._fn = tf.saved_model.load(model_dir).signatures["serving_default"]
        self._specs = self._fn.structured_input_signature[1]
        self._strict = SignatureCall(self._fn, {name: InputSpec.of(name, spec)
                                                for name, spec in self._specs.items()})
        if not self._strict.flat:
            print("note: the signature has no flat call here; the strict baseline is the "
                  "public call with tensors built by SignatureCall")
        self._instance = instance

    def latencies(self, kind: str, rows: int, seconds: float) -> List[float]:
        """ms per call (outputs fetched as numpy) for ``seconds``, after 20 warm-up calls."""
        tf, fn, specs, strict = self._tf, self._fn, self._specs, self._strict
        arrays = {name: np.asarray([self._instance[name]] * rows,
                                   dtype=object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype)
                  for name, spec in specs.items()}
        cached = {name: tf.constant(a, dtype=specs[name].dtype) for name, a in arrays.items()}
        calls = {
            "strict": lambda: strict(arrays),
            "cached": lambda: fn(**cached),
            "public": lambda: fn(**{name: tf.constant(a, dtype=specs[name].dtype)
                                    for name, a in arrays.items()}),
        }
        call = calls[kind]
        for _ in range(20):
            call()
        latencies = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            {k: v.numpy() for k, v in call().items()}
            latencies.append((time.perf_counter() - start) * 1000)
        return latencies

    def figures(self, rows: int, seconds: float) -> Dict[str, Any]:
        figures: Dict[str, Any] = {"rows": rows}
        for kind in self.KINDS:
            latencies = self.latencies(kind, rows, seconds / len(self.KINDS))
            figures[kind] = {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
                             "predictions_per_s": len(latencies) * rows / (sum(latencies) / 1000)}
        return figures


def paired_overhead(bare: BareCall, host: str, port: int, path: str, instance: Dict[str, Any],
                    rows: int, rounds: int, seconds: float) -> Dict[str, Any]:
    """Gateway p50 at concurrency 1 minus the bare call's p50, in alternating windows.

    Each round times the bare call (each of ``BareCall.KINDS``) and the
    gateway for ``seconds`` each, back to back, and takes the differences of
    their p50s; the figure is the median over the rounds. On a machine whose
    load moves by the second, a difference between two windows minutes apart
    measures the load, not the gateway.
    """
    over: Dict[str, List[float]] = {kind: [] for kind in BareCall.KINDS}
    gateway, answered, errors = [], 0, 0
    for _ in range(rounds):
        bare_p50 = {kind: percentile(bare.latencies(kind, rows, seconds), 50) for kind in over}
        figures = load(host, port, path, {"instances": [instance] * rows}, rows, 1, seconds)
        answered += figures["answered_rows"]
        errors += figures["errors"]
        gateway.append(figures["p50_ms"])
        for kind, p50 in bare_p50.items():
            over[kind].append(figures["p50_ms"] - p50)
    return {"rows": rows, "rounds": rounds, "gateway_p50_ms": percentile(gateway, 50),
            **{f"over_{kind}_ms": percentile(values, 50) for kind, values in over.items()},
            "over_strict_range_ms": [min(over["strict"]), max(over["strict"])],
            "answered_rows": answered, "errors": errors}


def stage_costs(gateway_args: List[str], model_name: str, instance: Dict[str, Any],
                sizes: Sequence[int], calls: int) -> List[Dict[str, float]]:
    """Per row count in ``sizes`` (``rows`` key), p50 ms of each stage of a predict,
    each timed alone ``calls`` times, and of the whole ``Gateway.handle`` (which
    adds routing, metrics and request ids).

    The gateway is built once, in this process, as ``python -m serving start
    <gateway_args>`` builds it; the stages call the same functions its
    handler calls, in the same order, on the same body.
    """
    from serving.cli import start_settings
    from serving.server import build_gateway

    gateway = build_gateway(start_settings(gateway_args))
    try:
        return [{"rows": rows, **_stage_costs(gateway, model_name, instance, rows, calls)}
                for rows in sizes]
    finally:
        gateway.close()
        gateway.backend.close()
        if gateway.request_log is not None:
            gateway.request_log.close()


def _stage_costs(gateway: Any, model_name: str, instance: Dict[str, Any], rows: int,
                 calls: int) -> Dict[str, float]:
    """p50 ms of each stage of a ``rows``-row predict on ``gateway`` (see ``stage_costs``)."""
    from serving import codec
    from serving.api import request as req

    body = json.dumps({"instances": [instance] * rows}).encode()
    version = gateway.backend.versions(model_name)[-1]
    model = gateway.backend.servable(model_name, version)
    parsed = req.parse_json(body)
    arrays = model.parse_predict(parsed).inputs
    signature_call = model.signature_call("serving_default")
    outputs = {k: v.numpy() for k, v in signature_call(arrays).items()}
    answer = {"predictions": codec.format_row_outputs(outputs, rows)}
    headers = req.Headers([("Content-Type", "application/json"),
                           ("Content-Length", str(len(body)))])
    path = f"/v1/models/{model_name}:predict"
    stages = {
        "parse JSON": lambda: req.parse_json(body),
        "check body + schema": lambda: gateway.model.check_body("predict", parsed),
        "rows to arrays": lambda: model.parse_predict(parsed),
        "tensors + model call": lambda: {k: v.numpy() for k, v in signature_call(arrays).items()},
        "outputs to JSON values": lambda: codec.format_row_outputs(outputs, rows),
        "answer bytes": lambda: req.answer_response(200, answer),
        "request-log enqueue": lambda: gateway.request_log.log(
            request_id="bench", model=model_name, version=version, role="primary",
            features=parsed["instances"], outputs=answer["predictions"], latency_ms=1.0),
        "whole Gateway.handle": lambda: gateway.handle("POST", path, headers, body),
    }
    figures: Dict[str, float] = {}
    for stage, call in stages.items():
        for _ in range(min(20, calls)):
            call()
        latencies = []
        for _ in range(calls):
            start = time.perf_counter()
            call()
            latencies.append((time.perf_counter() - start) * 1000)
        figures[stage] = percentile(latencies, 50)
    return figures


class RawClient:
    """One keep-alive HTTP/1.1 connection sending one prepared request.

    A few microseconds of Python per request (``http.client`` spends more
    parsing response headers than the gateway overhead being measured); it
    reads exactly one answer per request by its Content-Length.
    """

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self._sock = socket.create_connection((host, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._request = request
        self._buffer = b""

    def send(self) -> Tuple[int, bytes]:
        """(status, body) of one request."""
        self._sock.sendall(self._request)
        while b"\r\n\r\n" not in self._buffer:
            self._recv()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lowered = head.lower()
        start = lowered.index(b"content-length:") + len(b"content-length:")
        length = int(lowered[start:lowered.index(b"\r\n", start) if b"\r\n" in lowered[start:]
                             else len(lowered)])
        while len(self._buffer) < length:
            self._recv()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return int(head[9:12]), body

    def _recv(self) -> None:
        chunk = self._sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the gateway closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        self._sock.close()


def http_request(host: str, port: int, path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body


def load(host: str, port: int, path: str, body: Dict[str, Any], rows: int, concurrency: int,
         seconds: float) -> Dict[str, float]:
    """``concurrency`` keep-alive clients sending ``body`` for ``seconds``."""
    request = http_request(host, port, path, json.dumps(body).encode())
    latencies: List[float] = []
    errors = [0]
    answered = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)
    stop = threading.Event()

    def ok(status: int, answer: bytes) -> bool:
        return status == 200 and len(orjson.loads(answer).get("predictions", ())) == rows

    def client() -> None:
        mine, bad, good = [], 0, 0
        c = RawClient(host, port, request)
        try:
            good += rows if ok(*c.send()) else 0  # warm up
            barrier.wait()
            while not stop.is_set():
                start = time.perf_counter()
                status, answer = c.send()
                mine.append((time.perf_counter() - start) * 1000)
                if ok(status, answer):
                    good += rows
                else:
                    bad += 1
        finally:
            c.close()
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


TARGET_OVERHEAD_MS = {1: 0.5, 64: 1.0}  # issue 17: gateway p50 over the strict bare call, concurrency 1
BARE_LABELS = {"strict": "strict call (numpy arrays, flat call)",
               "public": "public call (tf.constant + keyword call)",
               "cached": "public call with cached tensors"}
TARGET_PREDICTIONS_PER_S = 5000          # issue 18 item 5: with batching, zero errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "taxi.yaml"))
    parser.add_argument("--model_base_path")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rows", type=int, default=64, help="rows per batched request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--stage_calls", type=int, default=300, help="calls per stage timed in-process")
    parser.add_argument("--rounds", type=int, default=10,
                        help="alternating bare/gateway rounds for the overhead at concurrency 1")
    parser.add_argument("--round_seconds", type=float, default=1.0, help="per side of a round")
    parser.add_argument("--out", help="also write the figures as JSON")
    parser.add_argument("--event_loop", help="the gateway's --event_loop (default: the gateway's own)")
    parser.add_argument("--request_log_writer", choices=("process", "thread"),
                        help="the gateway's --request_log_writer (default: the gateway's own)")
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

    name = cfg.serving.model_name
    print(f"model: {model}: {base}/{version}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    results: Dict[str, Any] = {"model": model, "model_dir": f"{base}/{version}",
                               "load_average_start": os.getloadavg()[0], "bare": [], "stages": [],
                               "gateway": []}
    sizes = (1, args.rows)
    bare = BareCall(os.path.join(base, str(version)), INSTANCE)
    for rows in sizes:
        figures = bare.figures(rows, args.seconds)
        results["bare"].append(figures)
        for kind in BareCall.KINDS:
            f = figures[kind]
            print(f"bare serving_default call, {rows:>3} row(s), {BARE_LABELS[kind]}: p50 "
                  f"{f['p50_ms']:.3f} ms, p99 {f['p99_ms']:.3f} ms, "
                  f"{f['predictions_per_s']:.0f} predictions/s")

    def gateway_args(tag: str) -> List[str]:
        return ["--config", args.config, "--model_base_path", base, "--models_config",
                os.path.join(work, tag, "models.config"), "--request_log_dir",
                os.path.join(work, tag, "request_log")] + (
                    ["--event_loop", args.event_loop] if args.event_loop else []) + (
                    ["--request_log_writer", args.request_log_writer] if args.request_log_writer else [])

    results["stages"] = stage_costs(gateway_args("stages"), name, INSTANCE, sizes, args.stage_calls)
    print(f"stage p50 ms, in-process ({args.stage_calls} calls each): "
          + ", ".join(f"{rows} row(s)" for rows in sizes))
    for stage in results["stages"][0]:
        if stage != "rows":
            print(f"  {stage:<24}" + "".join(f"{s[stage]:>9.3f}" for s in results["stages"]))
    log_dir = os.path.join(work, "http", "request_log")
    with launch(gateway_args("http"), startup_timeout_s=300) as server:
        path = f"/v1/models/{name}:predict"
        print(f"{'requests':<10} {'conc.':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} "
              f"{'pred/s':>9} {'errors':>6}")
        for rows in sizes:
            for concurrency in args.concurrency:
                figures = load(server.host, server.port, path, {"instances": [INSTANCE] * rows}, rows,
                               concurrency, args.seconds)
                results["gateway"].append(figures)
                kind = "single" if rows == 1 else f"{rows} rows"
                print(f"{kind:<10} {concurrency:>5} {figures['p50_ms']:>8.3f} {figures['p99_ms']:>8.3f} "
                      f"{figures['requests_per_s']:>8.0f} {figures['predictions_per_s']:>9.0f} "
                      f"{figures['errors']:>6}")
        results["overhead_c1"] = [
            paired_overhead(bare, server.host, server.port, path, INSTANCE, rows, args.rounds,
                            args.round_seconds) for rows in sizes]
    handle = {s["rows"]: s["whole Gateway.handle"] for s in results["stages"]}
    for overhead in results["overhead_c1"]:
        rows = overhead["rows"]
        target = TARGET_OVERHEAD_MS.get(rows)
        low, high = overhead["over_strict_range_ms"]
        print(f"strict overhead at concurrency 1, {rows} row(s), p50, median of {overhead['rounds']} "
              f"alternating rounds: {overhead['over_strict_ms']:.3f} ms over the {BARE_LABELS['strict']} "
              f"(rounds {low:.3f} to {high:.3f})" + (f", target <= {target:g} ms" if target else "")
              + f"; HTTP p50 {overhead['gateway_p50_ms']:.3f} ms vs Gateway.handle in-process "
              f"{handle[rows]:.3f} ms")
        print(f"  over the {BARE_LABELS['public']}: {overhead['over_public_ms']:.3f} ms; over the "
              f"{BARE_LABELS['cached']}: {overhead['over_cached_ms']:.3f} ms")
    results["answered_rows"] = (sum(g["answered_rows"] for g in results["gateway"])
                                + sum(o["answered_rows"] for o in results["overhead_c1"]))
    results["logged_rows"] = sum(1 for span in list_spans(log_dir) for _ in iter_window(log_dir, span))
    batched = [g["predictions_per_s"] for g in results["gateway"] if g["rows"] > 1]
    results["best_batched_predictions_per_s"] = max(batched, default=0.0)
    results["errors"] = sum(g["errors"] for g in results["gateway"] + results["overhead_c1"])
    results["load_average_end"] = os.getloadavg()[0]
    print(f"best batched throughput: {results['best_batched_predictions_per_s']:.0f} predictions/s "
          f"(target >= {TARGET_PREDICTIONS_PER_S}); errors: {results['errors']} (target 0)")
    print(f"request log: {results['logged_rows']} rows on disk for {results['answered_rows']} rows "
          f"answered ({results['answered_rows'] - results['logged_rows']} lost, target 0); "
          f"load average {results['load_average_end']:.1f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
