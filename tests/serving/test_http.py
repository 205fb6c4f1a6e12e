"""The gateway's HTTP layer against hostile clients, over raw sockets.

One gateway process (uvicorn + httptools) with small limits so that each
limit is reached quickly: request smuggling through a negative or doubled
Content-Length, HTTP/0.9, slow request heads and short bodies, idle
connections (no thread each), the connection cap, clients that disconnect
mid-response (no traceback), and SIGTERM draining the requests in flight.
Each test runs on both event loops the gateway offers (``--event_loop``).
"""
import json
import os
import signal
import socket
import struct
import threading
import time

import pytest

from serving import models_config
from serving.client import Client
from serving.http_limits import EVENT_LOOPS
from serving.server import launch
from testing.tiny_model import INSTANCE, gateway_args, gateway_env, push_version
from tests.conftest import TAXI_CONFIG

pytestmark = pytest.mark.integration

HEAD_TIMEOUT_S = 1.5
BODY_TIMEOUT_S = 4.0
KEEP_ALIVE_S = 1.0
MAX_CONNECTIONS = 20
PREDICT = json.dumps({"instances": [INSTANCE]}).encode()


@pytest.fixture(scope="module", params=EVENT_LOOPS)
def gateway(request, tmp_path_factory, tiny_models):
    root = str(tmp_path_factory.mktemp("http"))
    base = os.path.join(root, "serving", "taxi")
    push_version(base, 1, tiny_models[1])
    models_config.write(os.path.join(root, "serving", "models.config"), [models_config.ModelEntry(
        "taxi", base, versions=(1,), labels={"stable": 1})])
    args = gateway_args(TAXI_CONFIG, root, "--no_request_log",
                        "--head_timeout_seconds", str(HEAD_TIMEOUT_S),
                        "--body_timeout_seconds", str(BODY_TIMEOUT_S),
                        "--keep_alive_seconds", str(KEEP_ALIVE_S),
                        "--max_connections", str(MAX_CONNECTIONS), "--event_loop", request.param)
    with launch(args, env=gateway_env()) as server:
        yield server


def connect(gateway, timeout=10.0):
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock, limit_s=10.0):
    """Everything the server sends until it closes the connection (fails after ``limit_s``)."""
    sock.settimeout(limit_s)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def request_head(method, path, length=None, extra=b""):
    head = f"{method} {path} HTTP/1.1\r\nHost: gateway\r\n".encode()
    if length is not None:
        head += f"Content-Length: {length}\r\n".encode()
    return head + extra + b"\r\n"


def test_a_negative_content_length_cannot_smuggle_a_second_request(gateway):
    sock = connect(gateway)
    sock.sendall(b"POST /v1/models/taxi:predict HTTP/1.1\r\nHost: gateway\r\nContent-Length: -5\r\n\r\n"
                 + request_head("GET", "/v1/models/taxi"))
    data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert data.count(b"HTTP/1.1") == 1  # the smuggled GET got no answer: the connection closed


@pytest.mark.parametrize("lengths", [[b"abc"], [b"5", b"50"], [b"1e3"], [b"+5"]])
def test_invalid_or_conflicting_content_lengths_are_400_and_close(gateway, lengths):
    sock = connect(gateway)
    headers = b"".join(b"Content-Length: " + value + b"\r\n" for value in lengths)
    sock.sendall(b"POST /v1/models/taxi:predict HTTP/1.1\r\nHost: gateway\r\n" + headers + b"\r\nhello")
    data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 ") and data.count(b"HTTP/1.1") == 1


def test_content_length_with_transfer_encoding_is_refused(gateway):
    sock = connect(gateway)
    sock.sendall(b"POST /v1/models/taxi:predict HTTP/1.1\r\nHost: gateway\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + request_head("GET", "/healthz"))
    data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 ") and data.count(b"HTTP/1.1") == 1


@pytest.mark.parametrize("line", [b"GET /v1/models/taxi\r\n\r\n", b"GET /v1/models/taxi HTTP/0.9\r\n\r\n"])
def test_http_0_9_gets_no_answer_in_its_format(gateway, line):
    sock = connect(gateway)
    sock.sendall(line)
    data = read_until_closed(sock)
    status, _, body = data.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 505 ")  # a status line and headers, never a bare body
    assert "HTTP/0.9" in json.loads(body)["error"]


@pytest.mark.parametrize("sent", [b"", b"GET /v1/models/taxi HTTP/1.1\r\nHost: gatew"])
def test_a_silent_or_slow_loris_client_is_closed_after_the_head_timeout(gateway, sent):
    sock = connect(gateway)
    started = time.monotonic()
    for _ in range(3 if sent else 0):  # a header byte now and then does not extend the deadline
        sock.sendall(sent)
        sent = b"a"
        time.sleep(HEAD_TIMEOUT_S / 4)
    assert read_until_closed(sock, limit_s=HEAD_TIMEOUT_S * 4) == b""
    assert time.monotonic() - started < HEAD_TIMEOUT_S * 3


def test_a_short_body_is_408_after_the_body_timeout(gateway):
    sock = connect(gateway)
    started = time.monotonic()
    sock.sendall(request_head("POST", "/v1/models/taxi:predict", len(PREDICT)) + PREDICT[:10])
    data = read_until_closed(sock, limit_s=BODY_TIMEOUT_S * 3)
    assert BODY_TIMEOUT_S * 0.9 <= time.monotonic() - started < BODY_TIMEOUT_S * 2.5
    status, _, body = data.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408 ") and b"connection: close" in status.lower()
    assert "did not arrive within" in json.loads(body)["error"]


def test_an_idle_keep_alive_connection_is_closed(gateway):
    sock = connect(gateway)
    sock.sendall(request_head("GET", "/healthz"))
    data = read_until_closed(sock, limit_s=KEEP_ALIVE_S * 5)
    assert data.startswith(b"HTTP/1.1 200 ") and data.count(b"HTTP/1.1") == 1


def test_keep_alive_responses_are_not_held_back_by_nagle(gateway):
    """Without TCP_NODELAY on accepted sockets each keep-alive answer waits ~40 ms for
    the client's delayed ACK; a median under 20 ms shows it is set."""
    with Client(gateway.base_url) as client:
        took = []
        for _ in range(15):
            started = time.perf_counter()
            assert client.request("POST", "/v1/models/taxi:predict", raw=PREDICT)[0] == 200
            took.append(time.perf_counter() - started)
    assert sorted(took)[len(took) // 2] < 0.020, took


def threads_of(process):
    with open(f"/proc/{process.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def test_idle_connections_cost_no_thread_and_the_cap_answers_503(gateway):
    with Client(gateway.base_url) as client:
        assert client.request("GET", "/healthz")[0] == 200
    before = threads_of(gateway.process)
    idle = [connect(gateway) for _ in range(300)]
    try:
        time.sleep(0.3)
        assert threads_of(gateway.process) <= before + 2
        with Client(gateway.base_url) as client:
            status, answer, headers = client.request("POST", "/v1/models/taxi:predict", raw=PREDICT)
        assert status == 503 and "--max_connections" in answer["error"]
        assert headers["Connection"] == "close"
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    with Client(gateway.base_url) as client:
        assert client.request("POST", "/v1/models/taxi:predict", raw=PREDICT)[0] == 200


def reset(sock):
    """Close with a TCP RST (SO_LINGER 0), as a client that crashed or timed out does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_clients_that_disconnect_mid_response_leave_no_traceback(gateway):
    for _ in range(10):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.connect(("127.0.0.1", gateway.port))
        sock.sendall(request_head("GET", "/openapi.json"))  # a ~30 kB answer
        sock.recv(100)
        reset(sock)
        sock = connect(gateway)
        sock.sendall(request_head("POST", "/v1/models/taxi:predict", len(PREDICT)) + PREDICT)
        reset(sock)  # before the answer
        sock = connect(gateway)
        sock.sendall(request_head("POST", "/v1/models/taxi:predict", len(PREDICT)) + PREDICT[:5])
        reset(sock)  # in the middle of the body
    time.sleep(0.5)
    with Client(gateway.base_url) as client:
        assert client.request("POST", "/v1/models/taxi:predict", raw=PREDICT)[0] == 200
    log = gateway.stderr_text()
    assert "Traceback" not in log and "Exception" not in log, log[-3000:]


def test_sigterm_drains_the_requests_in_flight(gateway):
    """Runs last: it stops the module's gateway. Requests whose body is still on
    its way when SIGTERM arrives are answered (200), then the process exits 0."""
    socks = [connect(gateway) for _ in range(5)]
    half = len(PREDICT) // 2
    for sock in socks:
        sock.sendall(request_head("POST", "/v1/models/taxi:predict", len(PREDICT)) + PREDICT[:half])
    time.sleep(0.3)
    gateway.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    answers = []

    def finish(sock):
        sock.sendall(PREDICT[half:])
        answers.append(read_until_closed(sock))

    threads = [threading.Thread(target=finish, args=(sock,)) for sock in socks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 5
    for data in answers:
        status, _, body = data.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 200 "), data
        assert len(json.loads(body)["predictions"]) == 1
    assert gateway.process.wait(timeout=30) == 0
    with pytest.raises(OSError):
        connect(gateway, timeout=2)
    assert "Traceback" not in gateway.stderr_text()
