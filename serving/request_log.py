"""The request log: served traffic as tf.Example TFRecords, one span per time window.

Why this format: monitoring must treat served traffic as just another data
span -- TFDV computes statistics over it and compares them with training
(skew) and with the previous span (drift), and ExampleGen can ingest it for a
retraining run. Both read uncompressed tf.Example TFRecords directly, so each
served row is written as one tf.Example holding:

* the raw features exactly as received, typed by the dataset config
  (``int`` -> int64_list, ``float`` -> float_list, ``string`` -> bytes_list;
  a missing or empty feature is absent, as in the training data);
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

Writing never slows a request: ``log`` only puts the rows on a bounded queue;
a background thread encodes them and appends whole records with one
``os.write`` per batch (no user-space buffer), so a crash of the process
leaves every record written so far complete and readable. When the queue is
full, rows are dropped and counted (``stats()["dropped_rows"]``), never
blocking the caller.

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

import base64
import dataclasses
import glob
import hashlib
import json
import logging
import math
import numbers
import os
import queue
import re
import socket
import struct
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import google_crc32c
from tensorflow.core.example import example_pb2, feature_pb2

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
SPAN_DIR_PREFIX = "span-"
EXAMPLE_GEN_PATTERN = SPAN_DIR_PREFIX + "{SPAN}/primary-*.tfrecord"
_SPAN_DIR = re.compile(r"^span-(\d+)$")
_DTYPES = ("int", "float", "string")
_MODES = ("drop", "hash")
_MAX_BATCH = 256  # queue items encoded and written per os.write
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class RequestLogError(ValueError):
    """The request log is misconfigured or misused; the message names the field."""


class _RowError(ValueError):
    """One row cannot be encoded (a value does not fit its declared dtype)."""


@dataclasses.dataclass(frozen=True)
class _Entry:
    request_id: str
    model: str
    version: int
    role: str
    features: Sequence[Mapping[str, Any]]
    outputs: Sequence[Any]
    latency_ms: float
    timestamp: float


@dataclasses.dataclass
class _Control:
    """Flush/close marker processed in queue order by the writer thread."""
    close: bool
    done: threading.Event = dataclasses.field(default_factory=threading.Event)


class RequestLog:
    """Asynchronous, thread-safe writer of served rows as tf.Example TFRecords.

    ``feature_dtypes``: raw feature name -> ``int`` | ``float`` | ``string``
    (``{f.name: f.dtype for f in cfg.features}``; features not listed are
    not logged). ``sensitive``: feature -> ``drop`` | ``hash``.
    ``queue_rows`` bounds the rows waiting for the writer.
    """

    def __init__(self, directory: str, feature_dtypes: Mapping[str, str],
                 sensitive: Mapping[str, str] = {}, window_seconds: int = 3600, *,
                 queue_rows: int = 100_000, salt: Optional[str] = None,
                 clock: Callable[[], float] = time.time) -> None:
        for name, dtype in feature_dtypes.items():
            if dtype not in _DTYPES:
                raise RequestLogError(f"feature_dtypes.{name}: expected one of {list(_DTYPES)}, got {dtype!r}")
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
        salt = salt if salt is not None else os.environ.get(SALT_ENV)
        if any(mode == "hash" for mode in sensitive.values()) and not salt:
            hashed = sorted(n for n, m in sensitive.items() if m == "hash")
            raise RequestLogError(
                f"sensitive: {hashed} are hashed, which needs a secret salt: set ${SALT_ENV}")
        self.directory = os.path.abspath(directory)
        self.window_seconds = window_seconds
        self._dtypes = dict(feature_dtypes)
        self._sensitive = dict(sensitive)
        self._salt = (salt or "").encode("utf-8")
        self._clock = clock
        self._queue_rows = queue_rows
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._lock = threading.Lock()
        self._queued_rows = 0
        self._counters = {"logged_rows": 0, "written_rows": 0, "dropped_rows": 0, "failed_rows": 0,
                          "files_opened": 0}
        self._closed = False
        self._name_stem = f"{_safe(socket.gethostname())}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._seq = 0
        self._files: Dict[Tuple[int, str], int] = {}  # (span, role) -> fd, writer thread only
        self._newest_span = -1
        os.makedirs(self.directory, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, cfg: Any, directory: Optional[str] = None, **kwargs: Any) -> "RequestLog":
        """The log for a ``PipelineConfig``: its features, sensitive fields, window and directory."""
        from common.paths import resolve_path  # the one place config paths are resolved

        return cls(directory or resolve_path(cfg.serving.request_log_dir),
                   {f.name: f.dtype for f in cfg.features},
                   sensitive=dict(cfg.serving.sensitive_features),
                   window_seconds=cfg.serving.request_log_window_seconds, **kwargs)

    # ------------------------------------------------------------------ API

    def log(self, *, request_id: str, model: str, version: int, role: str,
            features: Sequence[Mapping[str, Any]], outputs: Sequence[Any], latency_ms: float,
            timestamp: Optional[float] = None) -> bool:
        """Queues one request's rows; returns False if they were dropped (queue full or closed).

        ``features``: the raw rows as received (feature -> scalar or list);
        ``outputs``: one model output per row (number, list or dict of them).
        The rows must not be mutated afterwards (they are encoded later, off
        the request path). Mismatched lengths or a bad role are caller bugs
        and raise ``RequestLogError``.
        """
        if role not in ROLES:
            raise RequestLogError(f"role: expected one of {list(ROLES)}, got {role!r}")
        if len(features) != len(outputs):
            raise RequestLogError(
                f"outputs: expected one output per row ({len(features)} rows), got {len(outputs)}")
        rows = len(features)
        entry = _Entry(request_id=str(request_id), model=str(model), version=int(version), role=role,
                       features=features, outputs=outputs, latency_ms=float(latency_ms),
                       timestamp=float(self._clock() if timestamp is None else timestamp))
        with self._lock:
            if self._closed or self._queued_rows + rows > self._queue_rows:
                self._counters["dropped_rows"] += rows
                return False
            self._queued_rows += rows
            self._counters["logged_rows"] += rows
            self._queue.put(entry)
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Waits until every row logged before this call is on disk (fsynced).

        Returns False on timeout. Cheap to call; not needed on the request path.
        """
        return self._control(close=False, timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Writes what is queued, fsyncs and closes the files; later ``log`` calls drop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._control(close=True, timeout=timeout)
        self._thread.join(timeout)

    def stats(self) -> Dict[str, int]:
        """Counters for /metrics: logged, written, dropped (queue full/closed) and
        failed (unencodable) rows, files opened, rows waiting in the queue."""
        with self._lock:
            return dict(self._counters, queued_rows=self._queued_rows)

    @property
    def dropped(self) -> int:
        """Rows dropped because the queue was full (or the log closed)."""
        return self.stats()["dropped_rows"]

    def span_for(self, timestamp: float) -> int:
        """The span (window index) a row logged at ``timestamp`` belongs to."""
        return span_for(timestamp, self.window_seconds)

    def __enter__(self) -> "RequestLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --------------------------------------------------------- writer thread

    def _control(self, close: bool, timeout: float) -> bool:
        if not self._thread.is_alive():
            return False  # nothing can be written any more
        marker = _Control(close=close)
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def _run(self) -> None:
        """Writer loop: takes batches off the queue, encodes, appends, rolls windows."""
        while True:
            items = [self._queue.get()]
            while len(items) < _MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch: List[_Entry] = []
            for item in items:
                if isinstance(item, _Control):
                    self._write_safely(batch)
                    batch = []
                    try:
                        self._sync(close=item.close)
                    except OSError as error:
                        logger.error("request log: cannot sync files in %s: %s", self.directory, error)
                    item.done.set()
                    if item.close:
                        return
                else:
                    batch.append(item)
            self._write_safely(batch)

    def _write_safely(self, batch: Sequence[_Entry]) -> None:
        """``_write``, but an unexpected error loses this batch (counted), never the writer thread."""
        try:
            self._write(batch)
        except Exception:  # pylint: disable=broad-except
            logger.exception("request log: %d requests not logged", len(batch))
            rows = sum(len(entry.features) for entry in batch)
            with self._lock:
                self._queued_rows -= rows
                self._counters["failed_rows"] += rows

    def _write(self, batch: Sequence[_Entry]) -> None:
        if not batch:
            return
        records: Dict[Tuple[int, str], List[bytes]] = {}
        written = failed = rows = 0
        for entry in batch:
            rows += len(entry.features)
            span = span_for(entry.timestamp, self.window_seconds)
            for index, (row, output) in enumerate(zip(entry.features, entry.outputs)):
                try:
                    example = self._example(entry, index, row, output)
                except Exception as error:  # pylint: disable=broad-except  # one bad row loses only itself
                    failed += 1
                    logger.warning("request log: row %d of request %s not logged: %s",
                                   index, entry.request_id, error)
                    continue
                records.setdefault((span, entry.role), []).append(
                    _tfrecord(example.SerializeToString()))
        newest = max(span for span, _ in records) if records else -1
        if newest > self._newest_span:
            # Window roll: the older spans' files are finished; make them durable.
            for key in [k for k in self._files if k[0] < newest]:
                _close_fd(self._files.pop(key))
            self._newest_span = newest
        for key, chunks in sorted(records.items()):
            try:
                fd = self._files.get(key) or self._open(*key)
                _write_all(fd, b"".join(chunks))
                written += len(chunks)
            except OSError as error:
                failed += len(chunks)
                logger.error("request log: cannot write %d rows to %s: %s", len(chunks), self.directory, error)
        with self._lock:
            self._queued_rows -= rows
            self._counters["written_rows"] += written
            self._counters["failed_rows"] += failed

    def _open(self, span: int, role: str) -> int:
        directory = span_dir(self.directory, span)
        os.makedirs(directory, exist_ok=True)
        self._seq += 1
        path = os.path.join(directory, f"{role}-{self._name_stem}-{self._seq:04d}.tfrecord")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o640)
        self._files[(span, role)] = fd
        with self._lock:
            self._counters["files_opened"] += 1
        return fd

    def _sync(self, close: bool) -> None:
        for key in list(self._files):
            if close:
                _close_fd(self._files.pop(key))
            else:
                os.fsync(self._files[key])

    # -------------------------------------------------------------- encoding

    def _example(self, entry: _Entry, index: int, row: Mapping[str, Any], output: Any) -> example_pb2.Example:
        if not isinstance(row, Mapping):
            raise _RowError(f"expected a mapping of feature -> value, got {type(row).__name__}")
        example = example_pb2.Example()
        features = example.features.feature
        for name, dtype in self._dtypes.items():
            values = _values(row.get(name))
            if not values:
                continue  # missing features stay absent, as in the training data
            mode = self._sensitive.get(name)
            if mode == "drop":
                continue
            typed = [_typed(v, dtype, name) for v in values]
            if mode == "hash":
                features[name].bytes_list.value.extend(self._hash(name, v) for v in typed)
            elif dtype == "int":
                features[name].int64_list.value.extend(typed)
            elif dtype == "float":
                features[name].float_list.value.extend(typed)
            else:
                features[name].bytes_list.value.extend(typed)
        features[REQUEST_ID].bytes_list.value.append(entry.request_id.encode("utf-8"))
        features[ROW].int64_list.value.append(index)
        features[MODEL].bytes_list.value.append(entry.model.encode("utf-8"))
        features[VERSION].int64_list.value.append(entry.version)
        features[ROLE].bytes_list.value.append(entry.role.encode("utf-8"))
        features[LATENCY_MS].float_list.value.append(entry.latency_ms)
        features[TIMESTAMP_MS].int64_list.value.append(int(round(entry.timestamp * 1000)))
        if isinstance(output, Mapping):
            for key, value in output.items():
                features[f"{OUTPUT}_{_safe(str(key))}"].CopyFrom(_output_feature(value))
        else:
            features[OUTPUT].CopyFrom(_output_feature(output))
        return example

    def _hash(self, name: str, value: Any) -> bytes:
        """Salted SHA-256 hex: joinable across rows, not reversible without the salt."""
        raw = value if isinstance(value, bytes) else repr(value).encode("utf-8")
        digest = hashlib.sha256(self._salt + b"\0" + name.encode("utf-8") + b"\0" + raw)
        return digest.hexdigest().encode("ascii")


# ---------------------------------------------------------------- reading

def span_for(timestamp: float, window_seconds: int) -> int:
    """The span number of ``timestamp``: its window index since the epoch."""
    return int(math.floor(timestamp / window_seconds))


def span_dir(directory: str, span: int) -> str:
    """The directory holding span ``span``."""
    return os.path.join(directory, f"{SPAN_DIR_PREFIX}{span}")


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
    """The logged rows of one span, file by file, checksums verified by TensorFlow."""
    import tensorflow as tf  # only readers need TensorFlow's record reader

    for path in sorted(glob.glob(window_glob(directory, span, role))):
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
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


def _values(value: Any) -> List[Any]:
    """A raw value as a flat list: scalar -> [scalar], None -> []."""
    if value is None:
        return []
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        flat: List[Any] = []
        for item in value:
            flat.extend(_values(item))
        return flat
    return [value]


def _typed(value: Any, dtype: str, name: str) -> Any:
    if dtype == "string":
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, Mapping) and set(value) == {"b64"}:  # TF Serving's binary encoding
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (ValueError, TypeError):
                raise _RowError(f"feature {name!r}: invalid base64 in {value!r}") from None
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            return str(value).encode("utf-8")
        raise _RowError(f"feature {name!r}: expected a string, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _RowError(f"feature {name!r}: expected a {dtype}, got {value!r}")
    if dtype == "int":
        if not isinstance(value, numbers.Integral) and not float(value).is_integer():
            raise _RowError(f"feature {name!r}: expected an int, got {value!r}")
        if not _INT64_MIN <= int(value) <= _INT64_MAX:
            raise _RowError(f"feature {name!r}: {value!r} does not fit in an int64")
        return int(value)
    return float(value)


def _output_feature(value: Any) -> feature_pb2.Feature:
    """A model output as a feature: ints -> int64, numbers -> float, strings -> bytes."""
    values = _values(value)
    feature = feature_pb2.Feature()
    if all(isinstance(v, (bool, numbers.Integral)) for v in values):
        feature.int64_list.value.extend(int(v) for v in values)
    elif all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        feature.float_list.value.extend(float(v) for v in values)
    elif all(isinstance(v, (str, bytes)) for v in values):
        feature.bytes_list.value.extend(v.encode("utf-8") if isinstance(v, str) else v for v in values)
    else:
        feature.bytes_list.value.append(json.dumps(value, default=str).encode("utf-8"))
    return feature


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _tfrecord(data: bytes) -> bytes:
    """One TFRecord frame: length, masked CRC32C of the length, data, masked CRC32C of the data.

    Framed here (rather than with ``tf.io.TFRecordWriter``) so a whole batch
    goes to the file in one ``os.write``: no user-space buffer to lose, no
    torn record when the process dies between two writes.
    """
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _close_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe(text: str) -> str:
    """A file-name/feature-name safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64] or "x"
