"""The request log: served traffic as tf.Example TFRecords, one span per time window.

Why this format: monitoring must treat served traffic as just another data
span -- TFDV computes statistics over it and compares them with training
(skew) and with the previous span (drift), and ExampleGen can ingest it for a
retraining run. Both read uncompressed tf.Example TFRecords directly, so each
served row is written as one tf.Example holding:

* the raw features exactly as received, typed by the dataset config
  (``int`` -> int64_list, ``float`` -> float_list, ``string`` -> bytes_list;
  a missing or empty feature is absent, as in the training data), see
  ``serving.log_encoder``;
* metadata features whose names start with ``METADATA_PREFIX`` (request id,
  row index, model, version, role, output, latency, timestamp). They are not in
  the dataset schema: drop them before validation with ``strip_metadata``
  (statistics) or ``StatsOptions(feature_allowlist=...)``, see
  ``raw_feature_allowlist``.

Sensitive features (``serving.sensitive_features`` in the dataset config) are
never written as received: ``drop`` removes them; ``hash`` writes
``sha256(salt, feature name, value)`` as a hex string (a BYTES feature). The
salt comes from the ``REQUEST_LOG_SALT`` environment variable (or the ``salt``
argument); without one, a ``hash`` feature is a configuration error, because
an unsalted hash of a low-entropy value (a coordinate, a zip code) is
reversible by brute force.

Layout (``window_seconds`` per span; span number = floor(epoch / window))::

    <directory>/span-<span>/primary-<host>-<pid>-<token>-<seq>.tfrecord
    <directory>/span-<span>/shadow-<host>-<pid>-<token>-<seq>.tfrecord

Shadow answers go to their own files so that statistics over a span count
each served row once: ``EXAMPLE_GEN_PATTERN`` (``span-{SPAN}/primary-*.tfrecord``)
is the ImportExampleGen input pattern, ``window_glob(directory, span)`` the
TFDV ``data_location``. Several gateway processes can log into the same
directory: file names are unique per process and writer.

A prediction answered is a prediction logged:

* ``log`` only puts the request's rows on a bounded queue (no encoding on
  the request path); a background thread encodes whole batches of requests at
  once (``serving.log_encoder``) and appends them with one ``os.write``
  per file, so a record is in the OS's hands within milliseconds of the
  answer and survives ``kill -9`` of the process.
* Back-pressure, never a silent drop: when the writer falls behind -- more
  than ``queue_rows`` rows unwritten, or the oldest unwritten row queued
  more than half of ``flush_seconds`` ago -- ``log`` waits (counted in ``stats()``:
  ``waiting_requests``, ``waited_requests``, ``wait_seconds``). Only a writer
  stalled for ``max_wait_seconds`` (a hung disk) makes ``log`` give up; those
  rows are counted as ``dropped_rows`` and logged as an error.
* Every ``flush_seconds`` (``serving.request_log_flush_seconds``) the files
  written since the last flush are fsynced, so a machine crash loses at most
  that interval; a killed process loses only the rows not yet written, which
  back-pressure keeps younger than half of ``flush_seconds``.
* ``close()`` (the gateway calls it on shutdown; an ``atexit`` hook calls it
  otherwise) writes everything queued and fsyncs; a row logged after that
  (a request still finishing during shutdown) is written and fsynced on the
  caller's thread before ``log`` returns.

How the gateway uses it::

    log = RequestLog.from_config(cfg)            # once, at start
    stats = log.stats()                          # for /metrics (counters)
    log.log(request_id=rid, model=name, version=route.primary, role="primary",
            features=instances, outputs=predictions, latency_ms=ms)
    log.log(..., version=route.shadow, role="shadow", outputs=shadow_predictions, ...)
    log.close()                                  # at shutdown (flushes, fsyncs)

A span is complete once its window has ended and the writers have rolled
over (``closed_spans``); monitoring should read only closed spans.
"""
from __future__ import annotations

import atexit
import collections
import dataclasses
import glob
import logging
import os
import re
import socket
import threading
import time
import uuid
import weakref
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from tensorflow.core.example import example_pb2

from serving import tfrecord
from serving.log_encoder import DTYPES, MetadataNames, Request, safe_name
from serving.log_files import SPAN_DIR_PREFIX, FilesSpec, SpanFiles, span_dir, span_for
from serving.log_process import ProcessFiles

logger = logging.getLogger(__name__)

METADATA_PREFIX = "__log_"
REQUEST_ID = METADATA_PREFIX + "request_id"
ROW = METADATA_PREFIX + "row"
MODEL = METADATA_PREFIX + "model"
VERSION = METADATA_PREFIX + "version"
ROLE = METADATA_PREFIX + "role"
OUTPUT = METADATA_PREFIX + "output"          # or OUTPUT + "_<key>" for dict outputs
LATENCY_MS = METADATA_PREFIX + "latency_ms"
TIMESTAMP_MS = METADATA_PREFIX + "timestamp_ms"

ROLES = ("primary", "shadow")
SALT_ENV = "REQUEST_LOG_SALT"
EXAMPLE_GEN_PATTERN = SPAN_DIR_PREFIX + "{SPAN}/primary-*.tfrecord"
DEFAULT_FLUSH_SECONDS = 1.0
_SPAN_DIR = re.compile(r"^span-(\d+)$")
_MODES = ("drop", "hash")
_MAX_BATCH_ROWS = 2048  # rows encoded and written per writer round (at least one request)
# Group commit: the writer lets requests gather this long before encoding them in one call
# (an encoder call has a fixed cost of ~0.5 ms); a kill loses at most this much more.
_GATHER_SECONDS = 0.01
_GATHER_ROWS = _MAX_BATCH_ROWS // 4  # ... or until this many rows are queued
_NAMES = MetadataNames(request_id=REQUEST_ID, row=ROW, model=MODEL, version=VERSION, role=ROLE,
                       output=OUTPUT, latency_ms=LATENCY_MS, timestamp_ms=TIMESTAMP_MS)


class RequestLogError(ValueError):
    """The request log is misconfigured or misused; the message names the field."""


@dataclasses.dataclass
class _Control:
    """Flush/close marker processed in queue order by the writer thread."""
    close: bool
    done: threading.Event = dataclasses.field(default_factory=threading.Event)


@dataclasses.dataclass(frozen=True)
class _Queued:
    """A queue item and when it was queued (``time.monotonic``), for the lag bound."""
    item: Union[Request, _Control]
    at: float


class RequestLog:
    """Asynchronous, thread-safe writer of served rows as tf.Example TFRecords.

    ``feature_dtypes``: raw feature name -> ``int`` | ``float`` | ``string``
    (``{f.name: f.dtype for f in cfg.features}``; features not listed are
    not logged). ``sensitive``: feature -> ``drop`` | ``hash``.
    ``queue_rows`` bounds the rows waiting for the writer, ``flush_seconds``
    is the fsync interval (and twice the longest a row waits unwritten before
    ``log`` callers are held back), ``max_wait_seconds`` the longest a caller
    is held back before its rows are dropped (a stalled disk).
    """

    def __init__(self, directory: str, feature_dtypes: Mapping[str, str],
                 sensitive: Mapping[str, str] = {}, window_seconds: int = 3600, *,
                 queue_rows: int = 20_000, flush_seconds: float = DEFAULT_FLUSH_SECONDS,
                 max_wait_seconds: float = 10.0, salt: Optional[str] = None,
                 clock: Callable[[], float] = time.time, writer_process: bool = False) -> None:
        for name, dtype in feature_dtypes.items():
            if dtype not in DTYPES:
                raise RequestLogError(f"feature_dtypes.{name}: expected one of {list(DTYPES)}, got {dtype!r}")
            if name.startswith(METADATA_PREFIX):
                raise RequestLogError(
                    f"feature_dtypes.{name}: names starting with {METADATA_PREFIX!r} are reserved "
                    "for the log's metadata")
        for name, mode in sensitive.items():
            if name not in feature_dtypes:
                raise RequestLogError(
                    f"sensitive.{name}: expected one of the logged features {sorted(feature_dtypes)}")
            if mode not in _MODES:
                raise RequestLogError(f"sensitive.{name}: expected one of {list(_MODES)}, got {mode!r}")
        if isinstance(window_seconds, bool) or not isinstance(window_seconds, int) or window_seconds < 1:
            raise RequestLogError(f"window_seconds: expected a positive integer, got {window_seconds!r}")
        if queue_rows < 1:
            raise RequestLogError(f"queue_rows: expected a positive integer, got {queue_rows!r}")
        if not 0 < flush_seconds <= 60:
            raise RequestLogError(f"flush_seconds: expected a number of seconds in (0, 60], got {flush_seconds!r}")
        if max_wait_seconds <= 0:
            raise RequestLogError(f"max_wait_seconds: expected a positive number, got {max_wait_seconds!r}")
        salt = salt if salt is not None else os.environ.get(SALT_ENV)
        if any(mode == "hash" for mode in sensitive.values()) and not salt:
            hashed = sorted(n for n, m in sensitive.items() if m == "hash")
            raise RequestLogError(
                f"sensitive: {hashed} are hashed, which needs a secret salt: set ${SALT_ENV}")
        self.directory = os.path.abspath(directory)
        self.window_seconds = window_seconds
        self.flush_seconds = float(flush_seconds)
        self._clock = clock
        self._queue_rows = queue_rows
        self._max_wait_s = float(max_wait_seconds)
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)
        self._has_room = threading.Condition(self._lock)
        self._pending: Deque[_Queued] = collections.deque()
        self._queued_rows = 0  # queued or in the writer's hands, not yet written
        self._controls = 0  # flush/close markers in the queue (the writer then gathers no more)
        # The writer is letting requests gather: it wakes by itself, so ``log`` does not
        # wake it for each request (a thread wake-up per request, each wanting the GIL).
        self._gathering = False
        self._writing_since: Optional[float] = None  # when the writer's current batch was queued
        self._counters: Dict[str, float] = {
            "logged_rows": 0, "written_rows": 0, "dropped_rows": 0, "failed_rows": 0,
            "late_rows": 0, "files_opened": 0, "waiting_requests": 0, "waited_requests": 0,
            "wait_seconds": 0.0, "syncs": 0}
        self._closed = False
        os.makedirs(self.directory, exist_ok=True)
        spec = FilesSpec(directory=self.directory, feature_dtypes=dict(feature_dtypes),
                         sensitive=dict(sensitive), salt=(salt or "").encode("utf-8"), names=_NAMES,
                         window_seconds=window_seconds,
                         name_stem=f"{safe_name(socket.gethostname())}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        # Where rows are encoded and appended: a child process (off the GIL; the gateway's
        # choice, see serving.log_process) or this writer thread.
        self._files: Union[SpanFiles, ProcessFiles] = ProcessFiles(spec) if writer_process else SpanFiles(spec)
        self._write_lock = threading.Lock()  # files: the writer thread, or late writers after close
        self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
        self._thread.start()
        self._at_exit = _close_at_exit(weakref.ref(self))
        atexit.register(self._at_exit)

    @classmethod
    def from_config(cls, cfg: Any, directory: Optional[str] = None, **kwargs: Any) -> "RequestLog":
        """The log for a ``PipelineConfig``: its features, sensitive fields, window, flush interval
        and directory."""
        from common.paths import resolve_path  # the one place config paths are resolved

        kwargs.setdefault("flush_seconds", cfg.serving.request_log_flush_seconds)
        return cls(directory or resolve_path(cfg.serving.request_log_dir),
                   {f.name: f.dtype for f in cfg.features},
                   sensitive=dict(cfg.serving.sensitive_features),
                   window_seconds=cfg.serving.request_log_window_seconds, **kwargs)

    # ------------------------------------------------------------------ API

    def log(self, *, request_id: str, model: str, version: int, role: str,
            features: Sequence[Mapping[str, Any]], outputs: Sequence[Any], latency_ms: float,
            timestamp: Optional[float] = None) -> bool:
        """Queues one request's rows (waiting for room if the writer is behind).

        Returns False only if the rows were dropped: the writer made no room
        within ``max_wait_seconds``. ``features``: the raw rows as received
        (feature -> scalar or list); ``outputs``: one model output per row
        (number, list or dict of them). The rows must not be mutated
        afterwards (they are encoded later, off the request path). Mismatched
        lengths or a bad role are caller bugs and raise ``RequestLogError``.
        """
        if role not in ROLES:
            raise RequestLogError(f"role: expected one of {list(ROLES)}, got {role!r}")
        if len(features) != len(outputs):
            raise RequestLogError(
                f"outputs: expected one output per row ({len(features)} rows), got {len(outputs)}")
        rows = len(features)
        request = Request(request_id=str(request_id), model=str(model), version=int(version), role=role,
                          features=features, outputs=outputs, latency_ms=float(latency_ms),
                          timestamp=float(self._clock() if timestamp is None else timestamp))
        with self._lock:
            room = self._closed or self._wait_for_room(rows)
            if not room:
                self._counters["dropped_rows"] += rows
            elif not self._closed:
                self._pending.append(_Queued(request, time.monotonic()))
                self._queued_rows += rows
                self._counters["logged_rows"] += rows
                if not self._gathering or self._queued_rows >= _GATHER_ROWS:
                    self._has_work.notify()
                return True
            else:
                self._counters["logged_rows"] += rows
                self._counters["late_rows"] += rows
        if not room:
            logger.error("request log: %d rows of request %s dropped: the writer made no room in "
                         "%g s (is %s writable?)", rows, request_id, self._max_wait_s, self.directory)
            return False
        # Closed (shutting down): this answer is still logged, on the caller's thread.
        with self._write_lock:
            self._write_batch([request], queued=False)
            self._sync_files(close=False)
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Waits until every row logged before this call is on disk (fsynced).

        Returns False on timeout. Cheap to call; not needed on the request path.
        """
        return self._control(close=False, timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Writes what is queued, fsyncs and closes the files; later rows are written synchronously."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._has_room.notify_all()
        atexit.unregister(self._at_exit)
        self._control(close=True, timeout=timeout)
        self._thread.join(timeout)

    def stats(self) -> Dict[str, float]:
        """Counters for /metrics: rows logged, written, dropped (writer stalled), failed
        (unencodable or a write error) and written after close (late); files opened,
        fsync rounds; back-pressure (requests waiting now, requests that waited, total
        seconds waited); rows queued; 1 when rows are encoded in this process
        (``writer_in_process``)."""
        with self._lock:
            return dict(self._counters, queued_rows=self._queued_rows,
                        writer_in_process=int(self.writer_in_process))

    @property
    def dropped(self) -> int:
        """Rows dropped because the writer made no room in time."""
        return int(self.stats()["dropped_rows"])

    def span_for(self, timestamp: float) -> int:
        """The span (window index) a row logged at ``timestamp`` belongs to."""
        return span_for(timestamp, self.window_seconds)

    def __enter__(self) -> "RequestLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------- back-pressure

    def _wait_for_room(self, rows: int) -> bool:
        """Holds the caller (lock held) while the writer is behind; False on timeout."""
        if not self._behind(rows):
            return True
        started = time.monotonic()
        self._counters["waiting_requests"] += 1
        self._counters["waited_requests"] += 1
        try:
            while self._behind(rows) and not self._closed:
                remaining = started + self._max_wait_s - time.monotonic()
                if remaining <= 0:
                    return False
                self._has_room.wait(min(remaining, self.flush_seconds))
            return True
        finally:
            self._counters["waiting_requests"] -= 1
            self._counters["wait_seconds"] += time.monotonic() - started

    def _behind(self, rows: int) -> bool:
        """Too many rows unwritten, or the oldest unwritten one queued more than half the
        flush interval ago (so that a kill loses less than one flush interval).

        A request larger than ``queue_rows`` still gets in once everything is written.
        """
        if self._queued_rows == 0:
            return False
        if self._queued_rows + rows > self._queue_rows:
            return True
        oldest = self._pending[0].at if self._pending else None
        if self._writing_since is not None:
            oldest = self._writing_since if oldest is None else min(oldest, self._writing_since)
        return oldest is not None and time.monotonic() - oldest > self.flush_seconds / 2

    # --------------------------------------------------------- writer thread

    def _control(self, close: bool, timeout: float) -> bool:
        if not self._thread.is_alive():
            return False  # nothing can be written any more
        marker = _Control(close=close)
        with self._lock:
            self._pending.append(_Queued(marker, time.monotonic()))
            self._controls += 1
            self._has_work.notify()
        return marker.done.wait(timeout)

    def _take(self, timeout: float) -> List[Union[Request, _Control]]:
        """The next items (up to ``_MAX_BATCH_ROWS`` rows), waiting at most ``timeout``."""
        with self._lock:
            if not self._pending:
                self._has_work.wait(timeout)
            self._gathering = True
            try:
                while self._pending and not self._controls and self._queued_rows < _GATHER_ROWS:
                    gather = self._pending[0].at + _GATHER_SECONDS - time.monotonic()
                    if gather <= 0:
                        break
                    self._has_work.wait(gather)
            finally:
                self._gathering = False
            items: List[Union[Request, _Control]] = []
            rows = 0
            if self._pending:
                self._writing_since = self._pending[0].at
            while self._pending and (rows < _MAX_BATCH_ROWS or not items):
                item = self._pending.popleft().item
                items.append(item)
                if isinstance(item, Request):
                    rows += len(item.features)
                else:
                    self._controls -= 1
            return items

    def _run(self) -> None:
        """Writer loop: takes batches off the queue, encodes, appends, fsyncs every flush interval."""
        next_sync = time.monotonic() + self.flush_seconds
        while True:
            items = self._take(max(next_sync - time.monotonic(), 0.0))
            batch: List[Request] = []
            for item in items:
                if isinstance(item, Request):
                    batch.append(item)
                    continue
                with self._write_lock:
                    self._write_batch(batch)
                    self._sync_files(close=item.close)
                batch = []
                item.done.set()
                if item.close:
                    return
            if batch:
                with self._write_lock:
                    self._write_batch(batch)
            if time.monotonic() >= next_sync:
                with self._write_lock:
                    self._sync_files(close=False)
                next_sync = time.monotonic() + self.flush_seconds

    def _write_batch(self, batch: Sequence[Request], queued: bool = True) -> None:
        """Encodes and appends ``batch`` (failures counted, never raised); frees the rows'
        room in the queue."""
        if not batch:
            return
        rows = sum(len(request.features) for request in batch)
        result = None
        try:
            result = self._files.write(batch)
        finally:
            with self._lock:
                if queued:
                    self._queued_rows -= rows
                    self._writing_since = None
                    self._has_room.notify_all()
                written = result.written if result else 0
                self._counters["written_rows"] += written
                self._counters["failed_rows"] += result.failed if result else rows
                self._counters["files_opened"] += result.files_opened if result else 0

    def _sync_files(self, close: bool) -> None:
        """fsyncs the files written since their last fsync (and closes all on ``close``)."""
        self._files.sync(close)
        with self._lock:
            self._counters["syncs"] += 1

    @property
    def writer_pid(self) -> Optional[int]:
        """The writer process's pid (None when rows are encoded in this process)."""
        return None if isinstance(self._files, SpanFiles) else self._files.pid

    @property
    def writer_in_process(self) -> bool:
        """False while a child process encodes and writes the rows (``writer_process``)."""
        return not isinstance(self._files, ProcessFiles) or self._files.in_process


def _close_at_exit(ref: "weakref.ReferenceType[RequestLog]") -> Callable[[], None]:
    """An atexit hook that closes the log if it still exists (without keeping it alive)."""
    def hook() -> None:
        log = ref()
        if log is not None:
            log.close(timeout=10.0)
    return hook


# ---------------------------------------------------------------- reading

def window_glob(directory: str, span: int, role: Optional[str] = "primary") -> str:
    """The file pattern of one span, e.g. TFDV's ``data_location``.

    ``role=None`` matches primary and shadow rows (each primary row once, each
    shadowed row twice), so statistics should use the default ``primary``.
    """
    if role is not None and role not in ROLES:
        raise RequestLogError(f"role: expected one of {list(ROLES)} or None, got {role!r}")
    return os.path.join(span_dir(directory, span), f"{role or '*'}-*.tfrecord")


def list_spans(directory: str) -> List[int]:
    """The spans present under ``directory``, oldest first."""
    if not os.path.isdir(directory):
        return []
    spans = (_SPAN_DIR.match(name) for name in os.listdir(directory))
    return sorted(int(m.group(1)) for m in spans if m)


def closed_spans(directory: str, window_seconds: int, now: Optional[float] = None) -> List[int]:
    """Spans whose window has ended (no process writes them any more, clocks permitting)."""
    current = span_for(time.time() if now is None else now, window_seconds)
    return [span for span in list_spans(directory) if span < current]


def iter_window(directory: str, span: int, role: Optional[str] = "primary") -> Iterator[example_pb2.Example]:
    """The logged rows of one span, file by file, checksums verified.

    A record torn by a killed writer (the last one of its file) is skipped
    (``serving.tfrecord.read_records``).
    """
    for path in sorted(glob.glob(window_glob(directory, span, role))):
        for record in tfrecord.read_records(path):
            yield example_pb2.Example.FromString(record)


def read_window(directory: str, span: int, role: Optional[str] = "primary") -> List[example_pb2.Example]:
    """All logged rows of one span (``role=None``: primary and shadow)."""
    return list(iter_window(directory, span, role))


def is_metadata(feature_name: str) -> bool:
    """True for the log's own features (request id, version, output, ...)."""
    return feature_name.startswith(METADATA_PREFIX)


def raw_feature_allowlist(feature_names: Sequence[str]) -> List[str]:
    """For ``tfdv.StatsOptions(feature_allowlist=...)``: statistics over raw features only."""
    return [name for name in feature_names if not is_metadata(name)]


def strip_metadata(statistics: Any) -> Any:
    """A copy of a ``DatasetFeatureStatisticsList`` without the log's metadata features.

    Why: the metadata features are not part of the dataset schema, so
    validating served traffic against the schema's SERVING environment would
    report each of them as a new column. Monitoring calls this on the
    statistics of a span before ``tfdv.validate_statistics``.
    """
    stripped = type(statistics)()
    stripped.CopyFrom(statistics)
    for dataset in stripped.datasets:
        keep = [f for f in dataset.features if not is_metadata(_stats_name(f))]
        del dataset.features[:]
        dataset.features.extend(keep)
    return stripped


def strip_example(example: example_pb2.Example) -> example_pb2.Example:
    """A copy of a logged row with only its raw features (for replay or retraining)."""
    stripped = example_pb2.Example()
    for name, feature in example.features.feature.items():
        if not is_metadata(name):
            stripped.features.feature[name].CopyFrom(feature)
    return stripped


# ---------------------------------------------------------------- helpers

def _stats_name(feature: Any) -> str:
    return feature.path.step[0] if feature.HasField("path") and feature.path.step else feature.name
