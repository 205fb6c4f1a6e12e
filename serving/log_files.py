"""The request log's files: encoded rows appended to one TFRecord file per span and role.

Why a module of its own: the encoding and the appends are the request log's
CPU-heavy half (~10 us per taxi row), and they run either on the log's writer
thread or in a child process off the gateway's GIL (``serving.log_process``);
both call this one class, so the files are the same whichever runs them.
No threads and no locks here: one caller at a time.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import Dict, List, Mapping, Sequence, Tuple

from serving import tfrecord
from serving.log_encoder import ExampleEncoder, MetadataNames, Request

logger = logging.getLogger(__name__)

SPAN_DIR_PREFIX = "span-"


@dataclasses.dataclass
class WriteResult:
    """What one ``SpanFiles.write`` did: rows written, rows failed, files opened."""
    written: int = 0
    failed: int = 0
    files_opened: int = 0


@dataclasses.dataclass(frozen=True)
class FilesSpec:
    """Everything a ``SpanFiles`` needs, picklable (the child process gets it as is)."""
    directory: str
    feature_dtypes: Mapping[str, str]
    sensitive: Mapping[str, str]
    salt: bytes
    names: MetadataNames
    window_seconds: int
    name_stem: str


class SpanFiles:
    """Encodes batches of requests and appends them, one open file per (span, role).

    A row is in the OS's hands once ``write`` returns (one ``os.write`` per
    file and batch, so a killed process leaves whole records); ``sync``
    fsyncs the files written since the last ``sync``. A new span closes
    (and fsyncs) the files of older ones.
    """

    def __init__(self, spec: FilesSpec) -> None:
        self.spec = spec
        self._encoder = ExampleEncoder(spec.feature_dtypes, spec.sensitive, spec.salt, spec.names)
        self._files: Dict[Tuple[int, str], int] = {}  # (span, role) -> fd
        self._dirty: set = set()  # files written since their last fsync
        self._newest_span = -1
        self._seq = 0

    def write(self, batch: Sequence[Request]) -> WriteResult:
        """Encodes and appends ``batch``; an unexpected error fails the rest of the batch
        (counted, logged), never the caller."""
        result = WriteResult()
        rows = sum(len(request.features) for request in batch)
        try:
            groups: Dict[Tuple[int, str], List[Request]] = {}
            for request in batch:
                span = span_for(request.timestamp, self.spec.window_seconds)
                groups.setdefault((span, request.role), []).append(request)
            if groups:
                self._roll_windows(max(span for span, _ in groups))
            for key, requests in sorted(groups.items()):
                encoded = self._encoder.encode(requests)
                if encoded.failures:
                    result.failed += len(encoded.failures)
                    request_id, row, reason = encoded.failures[0]
                    logger.warning("request log: %d rows not logged; first: row %d of request %s: %s",
                                   len(encoded.failures), row, request_id, reason)
                if not encoded.examples:
                    continue
                try:
                    fd = self._files.get(key)
                    if fd is None:
                        fd = self._open(*key)
                        result.files_opened += 1
                    write_all(fd, b"".join(tfrecord.frame(example) for example in encoded.examples))
                    self._dirty.add(key)
                    result.written += len(encoded.examples)
                except OSError as error:
                    result.failed += len(encoded.examples)
                    logger.error("request log: cannot write %d rows to %s: %s", len(encoded.examples),
                                 self.spec.directory, error)
        except Exception:  # pylint: disable=broad-except
            logger.exception("request log: %d requests not logged", len(batch))
            result.failed = rows - result.written
        return result

    def sync(self, close: bool) -> None:
        """fsyncs the files written since their last fsync (and closes all on ``close``)."""
        try:
            for key in list(self._files):
                if close:
                    close_fd(self._files.pop(key))
                elif key in self._dirty:
                    os.fsync(self._files[key])
            self._dirty.clear()
        except OSError as error:
            logger.error("request log: cannot sync files in %s: %s", self.spec.directory, error)

    def _roll_windows(self, newest: int) -> None:
        """Window roll: the older spans' files are finished; make them durable."""
        if newest <= self._newest_span:
            return
        for key in [k for k in self._files if k[0] < newest]:
            self._dirty.discard(key)
            close_fd(self._files.pop(key))
        self._newest_span = newest

    def _open(self, span: int, role: str) -> int:
        directory = span_dir(self.spec.directory, span)
        os.makedirs(directory, exist_ok=True)
        self._seq += 1
        path = os.path.join(directory, f"{role}-{self.spec.name_stem}-{self._seq:04d}.tfrecord")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o640)
        self._files[(span, role)] = fd
        return fd


def span_for(timestamp: float, window_seconds: int) -> int:
    """The span number of ``timestamp``: its window index since the epoch."""
    return int(math.floor(timestamp / window_seconds))


def span_dir(directory: str, span: int) -> str:
    """The directory holding span ``span``."""
    return os.path.join(directory, f"{SPAN_DIR_PREFIX}{span}")


def write_all(fd: int, data: bytes) -> None:
    """``data`` appended to ``fd`` whole (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def close_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
