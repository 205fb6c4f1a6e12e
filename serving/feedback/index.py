"""Which request ids the gateway logged in the recent spans: the check behind a 404.

Why an index and not the log: feedback must name a request the gateway
served, and the gateway must answer at once without reading a span of
TFRecords per label. The index holds, per request id, only where the request
is (span), whom it went to (model), how many rows it had and when it was
logged -- about 170 bytes per request with the id itself, for the last
``serving.feedback_window_spans`` spans and at most
``serving.feedback_max_request_ids`` ids (the oldest span goes first).

It is fed twice:

* by the gateway itself (``IndexedRequestLog`` wraps the request log): a
  request is known the moment its rows are queued for the log, so a label can
  follow its prediction immediately;
* from the log files on disk (``refresh``): at start (after a restart the
  index is rebuilt from the recent spans) and again whenever a lookup misses,
  reading only the bytes appended since the last read -- so requests that
  another gateway process (or this one before a restart) logged into the same
  directory are found too.

A client may reuse an ``X-Request-Id``: an id logged for two different
requests (different log timestamps) is ambiguous, and feedback for it is
refused rather than attached to the wrong row. A reuse is seen as soon as the
index holds both requests (at once for this gateway's own requests; for
another process's, after the next read of the files); the join leaves out any
labelled row logged twice in its span, whatever the index knew.
"""
from __future__ import annotations

import dataclasses
import glob
import logging
import os
import struct
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

import google_crc32c
from google.protobuf.message import DecodeError
from tensorflow.core.example import example_pb2

from serving import request_log

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<QI")


@dataclasses.dataclass(frozen=True)
class LoggedRequest:
    """One logged request id: its span, model, row count and log timestamps."""
    span: int
    model: str
    rows: int
    timestamps_ms: Tuple[int, ...]

    @property
    def ambiguous(self) -> bool:
        """The id was logged for more than one request (a reused X-Request-Id)."""
        return len(self.timestamps_ms) > 1


class RequestIndex:
    """request id -> ``LoggedRequest`` over the recent spans of one request log directory.

    ``window_spans``: spans kept, counting the current one (by ``clock``);
    ``max_ids``: a hard bound on ids held. Thread-safe.
    """

    def __init__(self, directory: str, window_seconds: int, window_spans: int,
                 max_ids: int = 1_000_000, clock: Callable[[], float] = time.time,
                 scan: bool = True) -> None:
        if window_spans < 1 or max_ids < 1:
            raise ValueError(f"window_spans and max_ids must be positive, got {window_spans}, {max_ids}")
        self.directory = os.path.abspath(directory)
        self.window_seconds = window_seconds
        self.window_spans = window_spans
        self.max_ids = max_ids
        self._clock = clock
        self._lock = threading.Lock()
        # span -> {request id: timestamp_ms << 32 | model number << 20 | rows}: one small
        # int per id (about 200 bytes with the id and the dict slot); a whole span goes at once.
        self._spans: Dict[int, Dict[str, int]] = {}
        self._newest_first: List[int] = []  # the keys of _spans, newest first
        self._models: List[str] = []
        self._model_numbers: Dict[str, int] = {}
        self._count = 0
        self._reused: Dict[str, Set[int]] = {}  # ids logged for several requests: their timestamps
        self._scan_lock = threading.Lock()   # one refresh at a time; guards _offsets
        self._offsets: Dict[Tuple[int, str], int] = {}   # (span, log file) -> bytes read
        if scan:
            self.refresh()

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def oldest_span(self) -> int:
        """The oldest span still looked at (older requests are unknown by design)."""
        return request_log.span_for(self._clock(), self.window_seconds) - self.window_spans + 1

    def add(self, request_id: str, model: str, timestamp: float, rows: int) -> None:
        """A request the gateway is logging now (primary rows only)."""
        timestamp_ms = int(round(timestamp * 1000))
        span = request_log.span_for(timestamp, self.window_seconds)
        oldest = self.oldest_span()
        with self._lock:
            if self._newest_first and self._newest_first[-1] < oldest:
                self._evict(oldest)
            if span >= oldest:
                self._merge(request_id, model, span, timestamp_ms, rows)
                self._bound()

    def find(self, request_id: str) -> Optional[LoggedRequest]:
        """The logged request, reading newly written log bytes first if it is not known yet."""
        found = self._lookup(request_id)
        if found is None and self.refresh():
            found = self._lookup(request_id)
        if found is not None and found.span < self.oldest_span():
            return None
        return found

    def _lookup(self, request_id: str) -> Optional[LoggedRequest]:
        with self._lock:
            located = self._locate(request_id)
            if located is None:
                return None
            span, packed = located
            timestamp_ms, model, rows = self._unpack(packed)
            stamps = self._reused.get(request_id, {timestamp_ms})
            return LoggedRequest(span, model, rows, tuple(sorted(stamps)))

    def refresh(self) -> int:
        """Reads what was appended to the primary log files of the window since the
        last call; returns the number of rows read. Files are read outside the
        lock the request path takes (``add``), so a long scan never slows a prediction."""
        read = 0
        with self._scan_lock:
            oldest = self.oldest_span()
            with self._lock:
                self._evict(oldest)
            for key in [k for k in self._offsets if k[0] < oldest]:
                del self._offsets[key]
            for span in request_log.list_spans(self.directory):
                if span < oldest:
                    continue
                for path in sorted(glob.glob(request_log.window_glob(self.directory, span))):
                    rows = self._read_file(span, path)
                    read += len(rows)
                    with self._lock:
                        for row in rows:
                            self._merge(*row)
                        self._bound()
        return read

    # ------------------------------------------------------------ internals

    def _read_file(self, span: int, path: str) -> List[Tuple[str, str, int, int, int]]:
        """(request id, model, span, timestamp ms, rows so far) per new record of one file."""
        key = (span, path)
        offset = self._offsets.get(key, 0)
        rows: List[Tuple[str, str, int, int, int]] = []
        try:
            if os.path.getsize(path) <= offset:
                return rows
            for record, end in read_records(path, offset):
                self._offsets[key] = end
                row = _request_of(record, path)
                if row is not None:
                    rows.append((row[0], row[1], span, row[2], row[3]))
        except (OSError, ValueError) as error:
            size = os.path.getsize(path) if os.path.exists(path) else offset
            logger.error("feedback index: cannot read %s: %s (bytes %d..%d skipped)", path, error,
                         self._offsets.get(key, offset), size)
            self._offsets[key] = size
        return rows

    def _locate(self, request_id: str) -> Optional[Tuple[int, int]]:
        """(span, packed entry) of an id, newest span first; locked by the caller."""
        for span in self._newest_first:
            packed = self._spans[span].get(request_id)
            if packed is not None:
                return span, packed
        return None

    def _unpack(self, packed: int) -> Tuple[int, str, int]:
        return packed >> 32, self._models[(packed >> 20) & 0xFFF], packed & 0xFFFFF

    def _merge(self, request_id: str, model: str, span: int, timestamp_ms: int, rows: int) -> None:
        """Adds one request (or one of its rows); locked by the caller."""
        number = self._model_numbers.get(model)
        if number is None:
            if len(self._models) > 0xFFF:
                logger.warning("feedback index: over 4096 model names; %r not indexed", model)
                return
            number = self._model_numbers[model] = len(self._models)
            self._models.append(model)
        located = self._locate(request_id)
        if located is None:
            if span not in self._spans:
                self._spans[span] = {}
                self._newest_first = sorted(self._spans, reverse=True)
            self._spans[span][request_id] = timestamp_ms << 32 | number << 20 | min(rows, 0xFFFFF)
            self._count += 1
            return
        known_span, packed = located
        known_ms, known_model, known_rows = self._unpack(packed)
        if known_ms != timestamp_ms:  # the same id for another request
            self._reused.setdefault(request_id, {known_ms}).add(timestamp_ms)
        elif rows > known_rows:
            self._spans[known_span][request_id] = packed - known_rows + min(rows, 0xFFFFF)

    def _evict(self, oldest: int) -> None:
        for span in [s for s in self._spans if s < oldest]:
            self._drop_span(span)

    def _bound(self) -> None:
        """At most ``max_ids`` ids: whole oldest spans go first (the newest always stays)."""
        while self._count > self.max_ids and len(self._spans) > 1:
            oldest = self._newest_first[-1]
            logger.warning("feedback index: over %d request ids (serving.feedback_max_request_ids); "
                           "forgetting span %d: feedback for its requests now gets 404",
                           self.max_ids, oldest)
            self._drop_span(oldest)

    def _drop_span(self, span: int) -> None:
        dropped = self._spans.pop(span, {})
        self._newest_first = sorted(self._spans, reverse=True)
        self._count -= len(dropped)
        for request_id in [r for r in self._reused if r in dropped]:
            del self._reused[request_id]


def _request_of(record: bytes, path: str) -> Optional[Tuple[str, str, int, int]]:
    """(request id, model, timestamp ms, row + 1) of one logged row, None if unreadable."""
    try:
        features = example_pb2.Example.FromString(record).features.feature
        return (features[request_log.REQUEST_ID].bytes_list.value[0].decode("utf-8"),
                features[request_log.MODEL].bytes_list.value[0].decode("utf-8"),
                features[request_log.TIMESTAMP_MS].int64_list.value[0],
                features[request_log.ROW].int64_list.value[0] + 1)
    except (DecodeError, IndexError, UnicodeDecodeError, ValueError) as error:
        logger.warning("feedback index: a row of %s has no readable request metadata: %s", path, error)
        return None


def read_records(path: str, offset: int = 0) -> Iterator[Tuple[bytes, int]]:
    """(record, offset after it) for each complete TFRecord from ``offset`` on.

    Stops quietly at an incomplete last record (a writer still appending; the
    next read continues there); raises ``ValueError`` on a checksum mismatch.
    """
    with open(path, "rb") as f:
        f.seek(offset)
        while True:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            length, length_crc = _HEADER.unpack(header)
            if _masked_crc(header[:8]) != length_crc:
                raise ValueError(f"{path}: corrupt record length at byte {offset}")
            body = f.read(length + 4)
            if len(body) < length + 4:
                return
            data = body[:length]
            if _masked_crc(data) != struct.unpack("<I", body[length:])[0]:
                raise ValueError(f"{path}: corrupt record at byte {offset}")
            offset += _HEADER.size + length + 4
            yield data, offset


def _masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C (the format's checksum of length and data)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class IndexedRequestLog:
    """The gateway's request log, telling ``index`` about each primary request it queues.

    Everything else (``flush``, ``close``, ``stats``, ...) is the wrapped log's.
    """

    def __init__(self, log: Any, index: RequestIndex) -> None:
        self._log = log
        self.index = index

    def log(self, *, request_id: str, model: str, version: int, role: str,
            features: Sequence[Mapping[str, Any]], outputs: Sequence[Any], latency_ms: float,
            timestamp: Optional[float] = None) -> bool:
        timestamp = time.time() if timestamp is None else timestamp
        queued = self._log.log(request_id=request_id, model=model, version=version, role=role,
                               features=features, outputs=outputs, latency_ms=latency_ms,
                               timestamp=timestamp)
        if queued and role == "primary" and features:
            self.index.add(request_id, model, timestamp, len(features))
        return queued

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)
