"""A prediction answered is a prediction logged: the gateway as a child process
under load (64-row requests, 8 clients), then killed.

SIGKILL: the rows missing from the log must all belong to requests answered
in the last flush interval before the kill (the writer appends each batch
at once, so in practice none are missing). SIGTERM: every answered row is in
the log.
"""
import collections
import os
import signal
import threading
import time

import pytest

from serving import request_log
from serving.client import Client
from serving.server import launch
from testing.tiny_model import INSTANCE, gateway_args, gateway_env, push_version
from tests.conftest import TAXI_CONFIG

pytestmark = pytest.mark.integration

ROWS = 64
CLIENTS = 8
FLUSH_SECONDS = 0.5
LOAD_SECONDS = 4.0


def logged_rows(directory):
    """Request id -> rows in the log (every span, primary rows)."""
    counts = collections.Counter()
    for span in request_log.list_spans(directory):
        for example in request_log.iter_window(directory, span):
            counts[example.features.feature[request_log.REQUEST_ID].bytes_list.value[0].decode()] += 1
    return counts


def run_until_signal(tmp_path, tiny_models, signum):
    """Loads a gateway, sends ``signum`` while the clients run; returns
    (answered: request id -> time answered, signal time, log directory)."""
    root = str(tmp_path)
    push_version(os.path.join(root, "serving", "taxi"), 1, tiny_models[1])
    args = gateway_args(TAXI_CONFIG, root, "--set", "serving.max_batch_rows=1024",
                        "--set", "serving.max_request_bytes=1048576",
                        "--set", f"serving.request_log_flush_seconds={FLUSH_SECONDS}")
    answered = {}
    lock = threading.Lock()
    body = {"instances": [INSTANCE] * ROWS}
    with launch(args, env=gateway_env()) as server:
        def client(number):
            with Client(server.base_url, timeout_s=30) as c:
                sent = 0
                while True:
                    request_id = f"c{number}-{sent}"
                    sent += 1
                    try:
                        status, answer, _ = c.request("POST", "/v1/models/taxi:predict", body,
                                                      headers={"X-Request-Id": request_id})
                    except OSError:
                        return  # the gateway is gone
                    if status == 200:
                        assert len(answer["predictions"]) == ROWS
                        with lock:
                            answered[request_id] = time.monotonic()
                    elif status != 503:  # 503: shutting down
                        raise AssertionError(f"{status}: {answer}")

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        signalled = time.monotonic()
        server.process.send_signal(signum)
        server.process.wait(timeout=60)
        for thread in threads:
            thread.join(timeout=60)
    return answered, signalled, os.path.join(root, "request_log")


def test_kill_9_loses_at_most_the_rows_answered_in_the_last_flush_interval(tmp_path, tiny_models):
    answered, killed, directory = run_until_signal(tmp_path, tiny_models, signal.SIGKILL)
    logged = logged_rows(directory)
    assert len(answered) > 10, "too little load to test anything"
    lost = {rid: t for rid, t in answered.items() if logged.get(rid, 0) < ROWS}
    recent = {rid for rid, t in answered.items() if t >= killed - FLUSH_SECONDS - 0.5}
    assert set(lost) <= recent, (f"{len(lost)} answered requests not logged, "
                                 f"{len(set(lost) - recent)} of them older than the flush interval")
    print(f"\nSIGKILL: {len(answered) * ROWS} rows answered, {(len(answered) - len(lost)) * ROWS} logged, "
          f"{len(lost) * ROWS} lost (bound: {len(recent) * ROWS} answered in the last "
          f"{FLUSH_SECONDS + 0.5:g} s)")


def test_sigterm_logs_every_answered_row(tmp_path, tiny_models):
    answered, _, directory = run_until_signal(tmp_path, tiny_models, signal.SIGTERM)
    logged = logged_rows(directory)
    assert len(answered) > 10, "too little load to test anything"
    missing = sorted(rid for rid in answered if logged.get(rid, 0) != ROWS)
    assert missing == [], f"{len(missing)} of {len(answered)} answered requests not fully logged"
    print(f"\nSIGTERM: {len(answered) * ROWS} rows answered, all logged "
          f"({sum(logged.values())} rows in the log)")
