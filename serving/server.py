"""The gateway as an HTTP server process, and ``launch()`` to start one as a child.

``serve()`` builds the backend, validator, router and request log from a
``GatewaySettings`` (the CLI fills it from the dataset config), prints
``LISTENING <port>`` once requests are accepted (``launch()``, the pipeline's
InfraValidator and the tests wait for that line) and serves until SIGTERM or
SIGINT.
"""
import contextlib
import dataclasses
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from common.config import BatchingConfig
from serving import openapi, prestart, routing
from serving.api.deps import Limits
from serving.api.dispatcher import Gateway
from serving.asgi import GatewayApp, head_timeout_protocol
from serving.backends import InProcessBackend, ProxyBackend
from serving.batching import Demand
from serving.feedback.settings import FeedbackSettings, attach
from serving.http_limits import HttpLimits
from serving.validation import SchemaValidator

logger = logging.getLogger(__name__)

LISTENING_PREFIX = "LISTENING"
SERVER_HEADER = "TFServingGateway/1.0"
# Python hands the GIL between threads every 5 ms by default: a request thread
# waiting behind the request-log writer or a batch worker would lose up to 5 ms
# per hand-off. 0.5 ms measured 40 -> 15 ms p50 for a 64-row request with the log on.
GIL_SWITCH_INTERVAL_S = 0.0005


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
    http: HttpLimits = HttpLimits()
    poll_interval_s: float = 1.0
    admin_token_env: str = "SERVING_ADMIN_TOKEN"
    rollout_state_dir: Optional[str] = None
    request_log_dir: Optional[str] = None
    request_log_window_seconds: int = 3600
    request_log_flush_seconds: float = 1.0
    request_log_writer: str = "process"  # where rows are encoded: "process" (off the GIL) or "thread"
    feature_dtypes: Tuple[Tuple[str, str], ...] = ()
    sensitive_features: Tuple[Tuple[str, str], ...] = ()
    feedback: Optional[FeedbackSettings] = None  # labels for logged requests (serving.feedback)


def build_gateway(settings: GatewaySettings) -> Gateway:
    """Backend (started), validator, router, request log, feedback and OpenAPI document."""
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
    if validator is not None and settings.feature_dtypes:
        validator = validator.only(name for name, _ in settings.feature_dtypes)

    def document() -> Dict[str, Any]:
        models = backend.model_names()
        labels = sorted({label for name in models for label in backend.labels(name)})
        return openapi.build(models, contract=openapi.Contract(
            validator.rules if validator else None, settings.limits.max_batch_rows, labels))
    token = os.environ.get(settings.admin_token_env) or None
    rollouts, router, request_log = _rollout_parts(settings, backend)
    request_log, feedback, feedback_unavailable = attach(settings.feedback, request_log)
    return Gateway(backend, validator, settings.limits, admin_token=token,
                   admin_token_env=settings.admin_token_env, router=router, rollouts=rollouts,
                   request_log=request_log, openapi=document, feedback=feedback,
                   feedback_unavailable=feedback_unavailable)


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
                     flush_seconds=settings.request_log_flush_seconds,
                     writer_process=settings.request_log_writer == "process")
    logger.info("Logging requests to %s (%d s windows)", log.directory, log.window_seconds)
    return log


def serve(settings: GatewaySettings) -> int:
    """Loads the models, prints LISTENING <port>, serves until SIGTERM or SIGINT.

    On the signal, uvicorn stops accepting connections, closes idle ones and
    lets in-flight requests finish (``HttpLimits.shutdown_grace_s`` at most)
    before the backend and the request log are closed; the exit code is 0.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        gateway = build_gateway(settings)
    except Exception as err:  # pylint: disable=broad-except
        logger.error("Cannot start the gateway: %s", err)
        return 1
    app = GatewayApp(gateway, settings.http, inline_when_alone=settings.backend == "inprocess")
    try:
        _run_uvicorn(app, settings, on_listening=lambda port: logger.info(
            "Serving %s on http://%s:%d (%s backend)", gateway.backend.model_names(),
            settings.host, port, settings.backend))
    finally:
        app.close()
        gateway.close()
        gateway.backend.close()
        if gateway.request_log is not None:
            gateway.request_log.close()
    return 0


def _run_uvicorn(app: GatewayApp, settings: GatewaySettings,
                 on_listening: Callable[[int], None]) -> None:
    """Binds the socket, runs uvicorn until a signal, prints LISTENING once it accepts."""
    import uvicorn

    limits = settings.http
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.create_server((settings.host, settings.port), family=family, backlog=128)
    config = uvicorn.Config(
        app, http=head_timeout_protocol(limits.head_timeout_s), loop=limits.event_loop, lifespan="off",
        ws="none", interface="asgi3", timeout_keep_alive=limits.keep_alive_s,
        timeout_graceful_shutdown=limits.shutdown_grace_s,
        access_log=False, log_config=None, server_header=False,
        headers=[("Server", SERVER_HEADER)])
    port = sock.getsockname()[1]

    class Server(uvicorn.Server):
        async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(f"{LISTENING_PREFIX} {port}", flush=True)
                on_listening(port)

    server = Server(config)
    app.load = lambda: (len(server.server_state.connections), len(server.server_state.tasks))
    # uvicorn handles SIGTERM/SIGINT while it runs, then re-raises the signal
    # with the handler found before it: an ignoring one, so the process exits 0
    # after the cleanup in serve().
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _log_signal)
    server.run(sockets=[sock])


def _log_signal(signum: int, frame: Any) -> None:
    """Outside uvicorn's run (the re-raised signal, or one during the cleanup): no exit."""
    del frame
    logger.info("Signal %d: the gateway is already stopping", signum)


# --------------------------------------------------------------------------
# Starting a gateway as a child process
# --------------------------------------------------------------------------

class ServerStartError(RuntimeError):
    """The child gateway exited or stayed silent before printing LISTENING."""


@dataclasses.dataclass(frozen=True)
class RunningServer:
    """A started child gateway: where to reach it, its process and its stderr (a file)."""
    port: int
    process: subprocess.Popen
    host: str = "127.0.0.1"
    stderr: Any = None

    def stderr_text(self) -> str:
        """Everything the child wrote to stderr so far (its log)."""
        return "" if self.stderr is None else _read_all(self.stderr)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def model_url(self, model_name: str) -> str:
        return f"{self.base_url}/v1/models/{model_name}"


@contextlib.contextmanager
def launch(args: Sequence[str], startup_timeout_s: float = 120.0,
           env: Optional[dict] = None) -> Iterator[RunningServer]:
    """Starts ``python -m serving start <args> --port 0`` and yields once it listens.

    With ``env`` None (this process's environment) a gateway process started
    ahead (``serving.prestart``: TensorFlow already imported) is taken when
    there is one; otherwise, or with another ``env``, a new one starts. Either
    way it is a ``serving.warm_start`` process, which serves exactly as ``python
    -m serving start`` and also stops when its stdin, held open here, closes: the
    child is terminated on exit, and ends by itself if this process is killed.
    The repo root is put on the child's PYTHONPATH so this works without
    installing the project.
    """
    arguments = [*args, "--port", "0"]
    taken = prestart.take(arguments) if env is None else None
    if taken is not None:
        logger.info("Gateway: taking the process started ahead (pid %d)", taken[0].pid)
    else:
        taken = prestart.WarmGateway(env).take(arguments)
        if taken is None:
            raise ServerStartError("gateway process exited before it was given its arguments")
    process, stderr = taken
    with stderr:
        try:
            port = _wait_for_listening(process, stderr, startup_timeout_s)
            yield RunningServer(port=port, process=process, stderr=stderr)
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
    return _read_all(stream)[-limit:].strip()


def _read_all(stream: Any) -> str:
    """A file the child writes to, read without moving the offset it shares with the child
    (a seek here would make the child's next lines overwrite the start)."""
    fd = stream.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")


def terminate(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream:
            with contextlib.suppress(OSError):
                stream.close()
