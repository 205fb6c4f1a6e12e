"""The request log's encoder and file writer in a child process, off the gateway's GIL.

Why: encoding served rows as tf.Examples costs ~10 us of Python per taxi row.
On the log's writer thread that is GIL time taken from the request threads:
measured with ``bench/serving_bench.py`` on this 2-core machine, logging added
~0.15 ms to a 1-row request and ~0.33 ms to a 64-row request at concurrency 1
(p50), and cut 64-row throughput by a quarter. Here the writer thread only
pickles each request (~25 us for 64 taxi rows) and waits on a pipe (the wait
releases the GIL) while ``python -m serving.log_process`` encodes and appends
on the other core with the same ``serving.log_files.SpanFiles``.

Protocol (length-prefixed pickles on the child's stdin and stdout): the parent
sends ``("init", FilesSpec)`` once, then ``("write", [(rows, pickled
request), ...])`` or ``("sync", close)``, and the child answers each of those
with ``("done", written, failed, files_opened)`` once the rows are in the
OS's hands (or fsynced). The parent waits for that answer before it frees
the rows' room in the queue, so the back-pressure and durability rules of
``serving.request_log`` hold unchanged.

Failure handling (a prediction answered is a prediction logged):

* the child ignores SIGINT and SIGTERM (a Ctrl-C on the terminal reaches the
  whole process group) and exits when its stdin ends; so when the gateway is
  killed with ``kill -9`` the child still writes every row it was sent,
  fsyncs and exits;
* if the child dies or its pipe breaks, the parent logs an error and writes
  from then on in its own process (files named ``...-local-...``), starting
  with the batch whose answer did not come: rows the child wrote just before
  dying may then be written twice (at least once, never lost);
* a request that cannot be pickled is counted as failed rows, like a row
  that cannot be encoded.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from typing import Any, BinaryIO, List, Optional, Sequence, Tuple

from serving.log_encoder import Request
from serving.log_files import FilesSpec, SpanFiles, WriteResult

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("<Q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL
NICENESS = 10  # added to the gateway's nice value for the child (see main)
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class WriterProcessError(RuntimeError):
    """The child process is gone or answered out of protocol."""


class ProcessFiles:
    """``SpanFiles``' interface, carried out by a child process (see the module doc).

    One caller at a time (the request log's writer thread, or a late writer
    after close under the log's write lock).
    """

    def __init__(self, spec: FilesSpec) -> None:
        self.spec = spec
        self._local: Optional[SpanFiles] = None
        self._lock = threading.Lock()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "serving.log_process"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, close_fds=True)
        try:
            self._send(("init", spec))
        except OSError as error:
            self._fall_back(error)

    @property
    def in_process(self) -> bool:
        """True once the child is gone and rows are written in this process."""
        return self._local is not None

    @property
    def pid(self) -> Optional[int]:
        return None if self._local is not None else self._process.pid

    def write(self, batch: Sequence[Request]) -> WriteResult:
        """Rows of ``batch`` in the OS's hands (see ``SpanFiles.write``)."""
        with self._lock:
            if self._local is not None:
                return self._local.write(batch)
            payload: List[Tuple[int, bytes]] = []
            unpicklable = 0
            for request in batch:
                try:
                    payload.append((len(request.features), pickle.dumps(_fields(request), _PROTOCOL)))
                except Exception as error:  # pylint: disable=broad-except  # an odd row object
                    unpicklable += len(request.features)
                    logger.warning("request log: %d rows of request %s not logged: %s",
                                   len(request.features), request.request_id, error)
            try:
                answer = self._ask(("write", payload)) if payload else (0, 0, 0)
            except (OSError, EOFError, WriterProcessError) as error:
                self._fall_back(error)
                return self._local.write(batch)  # type: ignore[union-attr]
            written, failed, opened = answer
            return WriteResult(written=written, failed=failed + unpicklable, files_opened=opened)

    def sync(self, close: bool) -> None:
        """fsyncs what was written (and, on ``close``, closes the files and ends the child)."""
        with self._lock:
            if self._local is None:
                try:
                    self._ask(("sync", close))
                except (OSError, EOFError, WriterProcessError) as error:
                    self._fall_back(error)
            if self._local is not None:
                self._local.sync(close)
            elif close:
                self._end()
                self._local = self._in_process_files()  # rows answered during shutdown

    def _ask(self, message: Any) -> Tuple[int, int, int]:
        self._send(message)
        answer = _read_message(self._process.stdout)  # type: ignore[arg-type]
        if not (isinstance(answer, tuple) and len(answer) == 4 and answer[0] == "done"):
            raise WriterProcessError(f"unexpected answer {answer!r}")
        return answer[1], answer[2], answer[3]

    def _send(self, message: Any) -> None:
        _write_message(self._process.stdin, message)  # type: ignore[arg-type]

    def _fall_back(self, error: BaseException) -> None:
        code = self._process.poll()
        logger.error("request log: the writer process (pid %d) %s (%s); writing in the gateway's "
                     "own process from now on", self._process.pid,
                     "is gone" if code is None else f"exited with {code}", error)
        self._local = self._in_process_files()
        self._end()

    def _in_process_files(self) -> SpanFiles:
        """Files written in this process, named apart from the child's."""
        return SpanFiles(dataclasses.replace(self.spec, name_stem=self.spec.name_stem + "-local"))

    def _end(self) -> None:
        for stream in (self._process.stdin, self._process.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _fields(request: Request) -> Tuple[Any, ...]:
    return (request.request_id, request.model, request.version, request.role, request.features,
            request.outputs, request.latency_ms, request.timestamp)


def _write_message(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, _PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _read_message(stream: BinaryIO) -> Any:
    head = _read_exactly(stream, _LENGTH.size)
    return pickle.loads(_read_exactly(stream, _LENGTH.unpack(head)[0]))


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise EOFError("the pipe closed")
    return data


# ---------------------------------------------------------------- the child


def _serve(source: BinaryIO, sink: BinaryIO) -> int:
    """The child's loop: answers each message until its input ends, then closes the files."""
    kind, spec = _read_message(source)
    if kind != "init":
        raise WriterProcessError(f"expected init first, got {kind!r}")
    files = SpanFiles(spec)
    try:
        while True:
            try:
                kind, body = _read_message(source)
            except EOFError:
                return 0  # the gateway closed the pipe or died: everything received is written
            if kind == "write":
                requests, unreadable = _requests(body)
                result = files.write(requests)
                answer = ("done", result.written, result.failed + unreadable, result.files_opened)
            elif kind == "sync":
                files.sync(close=bool(body))
                answer = ("done", 0, 0, 0)
                if body:
                    _write_message(sink, answer)
                    return 0
            else:
                raise WriterProcessError(f"unknown message {kind!r}")
            try:
                _write_message(sink, answer)
            except BrokenPipeError:
                return 0  # the gateway is gone; keep what was written
    finally:
        files.sync(close=True)


def _requests(payload: Sequence[Tuple[int, bytes]]) -> Tuple[List[Request], int]:
    """The requests of one write, and the rows of those that cannot be read back (logged)."""
    requests, unreadable = [], 0
    for rows, blob in payload:
        try:
            requests.append(Request(*pickle.loads(blob)))
        except Exception as error:  # pylint: disable=broad-except
            unreadable += rows
            logger.warning("request log: %d rows not logged: cannot read them back: %s", rows, error)
    return requests, unreadable


def main() -> int:
    # Below the gateway's priority: when the cores are contended the requests go first and
    # the log catches up in the gaps; back-pressure bounds how far it may fall behind.
    os.nice(NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s request log writer: %(message)s")
    # The protocol owns the original stdout; anything printed goes to stderr instead.
    sink = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return _serve(sys.stdin.buffer, sink)


if __name__ == "__main__":
    sys.exit(main())
