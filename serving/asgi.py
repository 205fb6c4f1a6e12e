"""The gateway as an ASGI application, for uvicorn (``serving.server`` runs it).

Why ASGI: the HTTP layer (request parsing, keep-alive, pipelining, graceful
shutdown) is uvicorn's, with httptools (llhttp) as the parser, so malformed or
smuggling requests (a negative or doubled ``Content-Length``, HTTP/0.9) are
refused before they reach the gateway. What is ours:

* the body is read with a deadline and a size cap (413 before reading when
  ``Content-Length`` is over the limit, 408 when the body is too slow), so a
  slow or short body holds no thread;
* ``Gateway.handle`` (synchronous: TF calls, batching, file locks) runs in a
  bounded thread pool, or on the event loop when it is the only request in
  the server (``GatewayApp``'s ``inline_when_alone``);
* a cap on open connections and in-flight requests, answered with
  TF Serving's ``{"error": ...}`` body and status 503;
* ``HeadTimeoutProtocol``: uvicorn closes idle keep-alive connections, but
  has no deadline for a request's head; a client that opens a connection and
  sends nothing, or its headers a byte at a time (slow loris), is closed here.

A client that disconnects is no error: its answer is dropped silently.
"""
import asyncio
import concurrent.futures
import logging
import socket
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.api.dispatcher import Gateway
from serving.api.errors import error_response
from serving.api.request import Headers, Response
from serving.errors import ServingError, Unavailable
from serving.http_limits import HttpLimits

logger = logging.getLogger(__name__)

HTTP_VERSIONS = ("1.0", "1.1")  # not 0.9 (no status line, no headers), not 2 (not spoken here)
Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _Disconnected(Exception):
    """The client went away before its body arrived: there is no one to answer."""


class GatewayApp:
    """ASGI app answering every HTTP request with ``Gateway.handle``.

    ``load()`` tells how many connections and requests are open (uvicorn's
    server state, bound by ``serving.server``); None until bound.

    ``inline_when_alone``: a request that is the only one in the server runs
    ``Gateway.handle`` on the event loop instead of the pool. The hand-off
    (event loop -> pool thread -> event loop) wakes two sleeping threads, and
    each wake-up waits for a core: on this 2-core machine under load that was
    most of the gateway's overhead at concurrency 1 (1-row p50 3.3-4.1 ms
    inline against 7.9-12.8 ms through the pool, alternating runs, load
    average 8-11). A request arriving meanwhile waits in the socket for at
    most that one request; once two are in, all go to the pool, where they
    overlap and batch. Only inference requests (``Gateway.is_inference``:
    bounded by ``max_batch_rows``) and only with the in-process backend, whose
    handler never waits on the network (``serving.server`` decides); admin,
    feedback and status requests always go to the pool.
    """

    def __init__(self, gateway: Gateway, limits: HttpLimits = HttpLimits(),
                 inline_when_alone: bool = False) -> None:
        self._gateway = gateway
        self._limits = limits
        self._pool = concurrent.futures.ThreadPoolExecutor(limits.worker_threads,
                                                           thread_name_prefix="gateway")
        self.load: Optional[Callable[[], Tuple[int, int]]] = None
        self._inline_when_alone = inline_when_alone

    def close(self) -> None:
        """Waits for handlers still running (after the server stopped)."""
        self._pool.shutdown(wait=True)

    async def __call__(self, scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off and websockets are not served
        method = scope["method"]
        headers = Headers((name.decode("latin-1"), value.decode("latin-1"))
                          for name, value in scope["headers"])
        try:
            if scope.get("http_version") not in HTTP_VERSIONS:
                raise ServingError(f"HTTP/{scope.get('http_version')} is not supported; use HTTP/1.1",
                                   status=505)
            self._check_capacity()
            body = await self._read_body(headers, receive)
        except _Disconnected:
            return
        except ServingError as err:
            # The body is not (fully) read: answer, then drop the connection.
            await _send(send, method, error_response(err), close=True)
            return
        # raw_path keeps %-escapes: the handlers unquote URL parts themselves,
        # so '..%2F' is checked as a model name instead of changing the route.
        path = (scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1")
        if self._runs_inline(method, path):
            # The only request in the server: nothing to overlap with, so no hand-off.
            response = self._gateway.handle(method, path, headers, body)
        else:
            response = await asyncio.get_running_loop().run_in_executor(
                self._pool, self._gateway.handle, method, path, headers, body)
        await _send(send, method, response)

    def _runs_inline(self, method: str, path: str) -> bool:
        return (self._inline_when_alone and self.load is not None and self.load()[1] <= 1
                and self._gateway.is_inference(method, path))

    def _check_capacity(self) -> None:
        if self.load is None:
            return
        connections, requests = self.load()
        cap = self._limits.max_connections
        if connections > cap or requests > cap:
            raise Unavailable(f"the gateway is at its limit of {cap} open connections or requests "
                              f"({connections} connections, {requests} requests; --max_connections); "
                              "retry later")

    async def _read_body(self, headers: Headers, receive: Receive) -> bytes:
        """The whole body, within ``body_timeout_s`` and ``max_request_bytes``."""
        if headers.get("transfer-encoding"):
            raise ServingError("chunked request bodies are not supported; send Content-Length",
                               status=411)
        # httptools has already refused a Content-Length that is not a non-negative integer.
        length = int(headers.get("content-length") or 0)
        self._gateway.check_content_length(length)
        chunks: List[bytes] = []
        # One timer for the whole body (cheaper than a wait_for task per receive()):
        # it cancels this task, and the cancellation is told apart by ``expired``.
        expired: List[bool] = []
        task = asyncio.current_task()

        def expire() -> None:
            expired.append(True)
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self._limits.body_timeout_s, expire)
        more = True
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
        except asyncio.CancelledError:
            if not expired:
                raise
            raise ServingError(f"the request body ({length} bytes) did not arrive within "
                               f"{self._limits.body_timeout_s:g} s", status=408) from None
        finally:
            timer.cancel()
        return b"".join(chunks)


async def _send(send: Send, method: str, response: Response, close: bool = False) -> None:
    """Writes one response; uvicorn drops it when the client has gone."""
    headers = [(b"content-type", response.content_type.encode("latin-1")),
               (b"content-length", str(len(response.body)).encode("ascii"))]
    headers += [(name.encode("latin-1"), value.encode("latin-1"))
                for name, value in response.headers.items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})


def head_timeout_protocol(head_timeout_s: float) -> type:
    """uvicorn's httptools protocol with a deadline for each request's line and headers."""

    class HeadTimeoutProtocol(HttpToolsProtocol):
        """Closes a connection whose request head is not complete ``head_timeout_s`` after
        the connection opened or the request's first byte arrived."""

        _head_timer: Optional[asyncio.TimerHandle] = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, which
            # a socket bound by hand (proto 0) is not: without it, Nagle's algorithm and
            # the client's delayed ACK add ~40 ms to each keep-alive response.
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._arm_head_timer()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._head_timer is None:
                self._arm_head_timer()

        def on_headers_complete(self) -> None:
            self._cancel_head_timer()
            super().on_headers_complete()

        def connection_lost(self, exc: Optional[Exception]) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(head_timeout_s, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                # A request is still being answered: close after its response.
                self.cycle.keep_alive = False
            elif not self.transport.is_closing():
                logger.info("Closing a connection from %s: no complete request head within %g s",
                            self.client, head_timeout_s)
                self.transport.close()

    return HeadTimeoutProtocol
