"""The gateway as an HTTP server process, and ``launch()`` to start one as a child.

``serve()`` builds the backend, validator, router and request log from a
``GatewaySettings`` (the CLI fills it from the dataset config), prints
``LISTENING <port>`` once requests are accepted (``launch()``, the pipeline's
InfraValidator and the tests wait for that line) and serves until SIGTERM or
SIGINT.
"""
import contextlib
import dataclasses
import http.server
import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from common.config import BatchingConfig
from serving import openapi, routing
from serving.api.deps import Limits
from serving.api.dispatcher import Gateway
from serving.api.errors import error_response
from serving.api.request import Response
from serving.backends import InProcessBackend, ProxyBackend
from serving.batching import Demand
from serving.errors import ServingError
from serving.validation import SchemaValidator

logger = logging.getLogger(__name__)

LISTENING_PREFIX = "LISTENING"
# Python hands the GIL between threads every 5 ms by default: a request thread
# waiting behind the request-log writer or a batch worker would lose up to 5 ms
# per hand-off. 0.5 ms measured 40 -> 15 ms p50 for a 64-row request with the log on.
GIL_SWITCH_INTERVAL_S = 0.0005
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class GatewaySettings:
    """Everything a gateway process needs (see ``serving.cli`` for the flags)."""
    model_name: str
    model_base_path: str = ""
    models_config: Optional[str] = None
    schema_path: Optional[str] = None
    backend: str = "inprocess"
    proxy_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8501
    batching: BatchingConfig = BatchingConfig()
    limits: Limits = Limits()
    poll_interval_s: float = 1.0
    admin_token_env: str = "SERVING_ADMIN_TOKEN"
    rollout_state_dir: Optional[str] = None
    request_log_dir: Optional[str] = None
    request_log_window_seconds: int = 3600
    request_log_flush_seconds: float = 1.0
    feature_dtypes: Tuple[Tuple[str, str], ...] = ()
    sensitive_features: Tuple[Tuple[str, str], ...] = ()


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) adapter: reads the body, calls Gateway.handle."""

    protocol_version = "HTTP/1.1"
    server_version = "TFServingGateway/1.0"
    # Headers and body are two writes: without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._respond("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._respond("POST")

    def __getattr__(self, name: str) -> Any:
        """Any other method (PUT, DELETE, TRACE, ...) gets a JSON 405/404 from
        the gateway instead of http.server's HTML 501."""
        if name.startswith("do_") and name[3:].isalpha() and name[3:].isupper():
            return lambda: self._respond(name[3:])
        raise AttributeError(name)

    def _respond(self, method: str) -> None:
        gateway: Gateway = self.server.gateway
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                raise ServingError("chunked request bodies are not supported; send Content-Length",
                                   status=411)
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise ServingError("Content-Length is not a number", status=400) from None
            gateway.check_content_length(length)
        except ServingError as err:
            # The body is not read: answer and drop the connection.
            self.close_connection = True
            self._write(error_response(err), close=True)
            return
        body = self.rfile.read(length) if length > 0 else b""
        self._write(gateway.handle(method, self.path, self.headers, body))

    def _write(self, response: Response, close: bool = False) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s - %s", self.address_string(), format % args)


class GatewayHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], gateway: Gateway) -> None:
        super().__init__(address, GatewayHandler)
        self.gateway = gateway

    @property
    def port(self) -> int:
        return self.server_address[1]


def build_gateway(settings: GatewaySettings) -> Gateway:
    """Backend (started), validator, router, request log and OpenAPI document."""
    demand = Demand()
    if settings.backend == "proxy":
        if not settings.proxy_url:
            raise ValueError("--backend proxy needs --proxy_url (TF Serving's REST address)")
        backend: Any = ProxyBackend(settings.proxy_url, settings.models_config, (settings.model_name,))
    else:
        backend = InProcessBackend({settings.model_name: settings.model_base_path},
                                   settings.models_config, settings.batching, demand,
                                   settings.poll_interval_s)
    backend.start()
    validator = SchemaValidator.from_file(settings.schema_path) if settings.schema_path else None
    properties = openapi.feature_properties(validator.kinds) if validator else None

    def document() -> Dict[str, Any]:
        return openapi.build(backend.model_names(), feature_properties=properties)
    token = os.environ.get(settings.admin_token_env) or None
    rollouts, router, request_log = _rollout_parts(settings, backend)
    return Gateway(backend, validator, settings.limits, admin_token=token,
                   admin_token_env=settings.admin_token_env, router=router, rollouts=rollouts,
                   request_log=request_log, openapi=document)


def _rollout_parts(settings: GatewaySettings, backend: Any) -> Tuple[Any, Any, Any]:
    """Rollout controllers (one per model, created on first use), router, request log.

    Rollouts need a models.config path (where labels live); without one the
    gateway routes like TF Serving (labels from nothing, latest version).
    """
    request_log = _request_log(settings)
    if not settings.models_config:
        return None, None, request_log
    from serving.rollout import RolloutController

    controllers: Dict[str, Any] = {}
    lock = threading.Lock()

    def controller_for(model: str) -> Any:
        with lock:
            if model not in controllers:
                base = settings.model_base_path if model == settings.model_name else None
                controllers[model] = RolloutController(
                    settings.models_config, routing.state_path_for(settings.models_config, model),
                    model, available_versions=lambda: backend.available_versions(model),
                    base_path=base)
            return controllers[model]

    return controller_for, routing.RolloutRouter(backend, controller_for), request_log


def _request_log(settings: GatewaySettings) -> Any:
    """The request log (None when disabled or when no feature types are known)."""
    if not settings.request_log_dir:
        return None
    if not settings.feature_dtypes:
        logger.warning("Request log disabled: feature types come from the dataset config (--config)")
        return None
    from serving.request_log import RequestLog

    log = RequestLog(settings.request_log_dir, dict(settings.feature_dtypes),
                     sensitive=dict(settings.sensitive_features),
                     window_seconds=settings.request_log_window_seconds,
                     flush_seconds=settings.request_log_flush_seconds)
    logger.info("Logging requests to %s (%d s windows)", log.directory, log.window_seconds)
    return log


def _stop_on_signals(server: GatewayHTTPServer) -> None:
    """SIGTERM/SIGINT stop serve_forever; shutdown() must run off the loop."""
    def _handler(signum: int, frame: Any) -> None:
        del frame
        logger.info("Got signal %d, shutting down", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def serve(settings: GatewaySettings) -> int:
    """Loads the models, prints LISTENING <port>, serves until a signal."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        gateway = build_gateway(settings)
    except Exception as err:  # pylint: disable=broad-except
        logger.error("Cannot start the gateway: %s", err)
        return 1
    server = GatewayHTTPServer((settings.host, settings.port), gateway)
    _stop_on_signals(server)
    print(f"{LISTENING_PREFIX} {server.port}", flush=True)
    logger.info("Serving %s on http://%s:%d (%s backend)", gateway.backend.model_names(),
                settings.host, server.port, settings.backend)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        gateway.close()
        gateway.backend.close()
        if gateway.request_log is not None:
            gateway.request_log.close()
    return 0


# --------------------------------------------------------------------------
# Starting a gateway as a child process
# --------------------------------------------------------------------------

class ServerStartError(RuntimeError):
    """The child gateway exited or stayed silent before printing LISTENING."""


@dataclasses.dataclass(frozen=True)
class RunningServer:
    """A started child gateway: where to reach it and its process."""
    port: int
    process: subprocess.Popen
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def model_url(self, model_name: str) -> str:
        return f"{self.base_url}/v1/models/{model_name}"


@contextlib.contextmanager
def launch(args: Sequence[str], startup_timeout_s: float = 120.0,
           env: Optional[dict] = None) -> Iterator[RunningServer]:
    """Starts ``python -m serving start <args> --port 0`` and yields once it listens.

    The child is always terminated on exit. The repo root is put on the
    child's PYTHONPATH so this works without installing the project.
    """
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, child_env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "serving", "start", *args, "--port", "0"]
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   env=child_env)
        try:
            port = _wait_for_listening(process, stderr, startup_timeout_s)
            yield RunningServer(port=port, process=process)
        finally:
            terminate(process)


def launch_model(model_base_path: str, model_name: str, *extra: str,
                 startup_timeout_s: float = 120.0, env: Optional[dict] = None
                 ) -> "contextlib.AbstractContextManager[RunningServer]":
    """``launch`` for one model base path (TF Serving's --model_name/--model_base_path)."""
    return launch(["--model_name", model_name, "--model_base_path", model_base_path, *extra],
                  startup_timeout_s, env)


def _wait_for_listening(process: subprocess.Popen, stderr: Any, timeout_s: float) -> int:
    lines: "queue.Queue[Optional[str]]" = queue.Queue()

    def _read_stdout() -> None:
        try:
            for line in process.stdout:
                lines.put(line)
        except (OSError, ValueError):  # stdout closed by terminate()
            pass
        lines.put(None)

    threading.Thread(target=_read_stdout, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))
        except queue.Empty:
            continue
        if line is None:
            process.wait()
            raise ServerStartError(f"gateway exited with code {process.returncode} before "
                                   f"listening: {_tail(stderr)}")
        if line.startswith(LISTENING_PREFIX + " "):
            return int(line.split()[1])
    raise ServerStartError(f"gateway did not listen within {timeout_s:g} s: {_tail(stderr)}")


def _tail(stream: Any, limit: int = 2000) -> str:
    stream.flush()
    stream.seek(0)
    return stream.read()[-limit:].strip()


def terminate(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout:
        process.stdout.close()
