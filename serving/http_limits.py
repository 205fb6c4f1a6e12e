"""The HTTP-level limits of a gateway process (``python -m serving start`` flags).

A module of its own, importing nothing, so the CLI can show their defaults in
``--help`` without loading the server (uvicorn) or TensorFlow.
"""
import dataclasses

EVENT_LOOPS = ("uvloop", "asyncio")


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    """What one gateway process accepts at the HTTP level (``python -m serving start`` flags).

    ``max_connections`` bounds open connections and in-flight requests alike
    (beyond it: 503); ``head_timeout_s`` is the time a client has to send a
    request's line and headers, ``body_timeout_s`` its body (408); idle
    keep-alive connections are closed after ``keep_alive_s``;
    ``worker_threads`` run the handlers; on SIGTERM, in-flight requests get
    ``shutdown_grace_s`` to finish. ``event_loop`` runs the server: uvloop
    (libuv's loop, maintained by the asyncio core developers who wrote it) takes
    less time per request than the standard library's, which is the gateway's
    overhead at concurrency 1 (figures in docs/benchmarks.md#serving); "asyncio"
    is the fallback should a platform lack uvloop.
    """
    max_connections: int = 512
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    worker_threads: int = 64
    shutdown_grace_s: float = 30.0
    event_loop: str = "uvloop"

    def __post_init__(self) -> None:
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(f"--event_loop: expected one of {', '.join(EVENT_LOOPS)}, got {self.event_loop!r}")
