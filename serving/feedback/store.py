"""Accepted labels on disk: append-only JSON lines per span, fsynced before the answer.

Layout, beside the request log's spans::

    <request_log_dir>/feedback/span-<N>/labels-<host>-<pid>-<token>.jsonl

One line per accepted label, ``{"label": ..., "model": ..., "received_ms": ...,
"request_id": ..., "row": ...}``, filed under the span of the *request* (not
of the label's arrival), so joining a span reads only that span's labels.
Every writer (a gateway process, a ``python -m serving feedback`` run) appends
to its own file with one ``os.write`` and an ``fsync`` per batch: a crash
never loses an acknowledged label and never leaves two writers' lines
interleaved. Readers take complete lines only.

The first label received for a (request id, row) is the one that counts; a
later line with another label (two writers racing) is a conflict the join
reports, never a silent change.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import socket
import uuid
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

logger = logging.getLogger(__name__)

FEEDBACK_DIR = "feedback"
_SPAN_DIR = re.compile(r"^span-(\d+)$")
_FILE = re.compile(r"^labels-.+\.jsonl$")

Key = Tuple[str, int]


@dataclasses.dataclass(frozen=True)
class LabelRecord:
    """One accepted label: which logged row it labels and when it arrived."""
    request_id: str
    row: int
    label: Any
    model: str
    received_ms: int

    @property
    def key(self) -> Key:
        return self.request_id, self.row

    def to_line(self) -> bytes:
        return (json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))
                + "\n").encode("utf-8")

    @classmethod
    def from_line(cls, line: bytes) -> "LabelRecord":
        raw = json.loads(line)
        return cls(str(raw["request_id"]), int(raw["row"]), raw["label"], str(raw["model"]),
                   int(raw["received_ms"]))


class SpanLabels:
    """The labels of one span: the first received per (request id, row), and conflicts."""

    def __init__(self) -> None:
        self.first: Dict[Key, LabelRecord] = {}
        self.conflicts: Set[Key] = set()

    def add(self, record: LabelRecord) -> None:
        known = self.first.get(record.key)
        if known is not None and known.label != record.label:
            self.conflicts.add(record.key)
        if known is None or record.received_ms < known.received_ms:
            self.first[record.key] = record

    def __len__(self) -> int:
        return len(self.first)


def feedback_dir(log_dir: str) -> str:
    return os.path.join(log_dir, FEEDBACK_DIR)


def span_feedback_dir(log_dir: str, span: int) -> str:
    return os.path.join(feedback_dir(log_dir), f"span-{span}")


def list_feedback_spans(log_dir: str) -> List[int]:
    """The spans that have label files, oldest first."""
    root = feedback_dir(log_dir)
    if not os.path.isdir(root):
        return []
    return sorted(int(m.group(1)) for m in map(_SPAN_DIR.match, os.listdir(root)) if m)


def field(where: str, name: str) -> str:
    """``feedback[3].label`` in a batch, ``label`` for a single item (the name a 400
    gives a field of a label or verdict item)."""
    return f"{where}.{name}" if where else name


def read_span_labels(log_dir: str, span: int) -> SpanLabels:
    """Every label file of one span, read completely (for the join)."""
    labels = SpanLabels()
    for path in label_files(log_dir, span):
        for record in read_labels_from(path, 0)[0]:
            labels.add(record)
    return labels


class LabelStore:
    """Appends labels and remembers those of the recent spans (for duplicates).

    Not thread-safe: ``serving.feedback.service.Feedback`` serializes its calls.
    Before answering for a span, the span's files are re-read from where the
    last read stopped, so labels written by other processes count too.
    """

    def __init__(self, log_dir: str) -> None:
        self.directory = os.path.abspath(log_dir)
        self._spans: Dict[int, SpanLabels] = {}
        self._offsets: Dict[str, int] = {}
        self._name = writer_file_name("labels")

    def label_of(self, span: int, key: Key) -> Optional[LabelRecord]:
        """The first label stored for (request id, row) of ``span``, if any."""
        return self._refresh(span).first.get(key)

    def append(self, records: Sequence[Tuple[int, LabelRecord]]) -> None:
        """Writes (span, record) pairs durably: one write and one fsync per span file."""
        by_span: Dict[int, List[LabelRecord]] = {}
        for span, record in records:
            by_span.setdefault(span, []).append(record)
        for span, batch in sorted(by_span.items()):
            directory = span_feedback_dir(self.directory, span)
            append_durably(os.path.join(directory, self._name),
                           b"".join(record.to_line() for record in batch), self.directory)
            labels = self._spans.setdefault(span, SpanLabels())
            for record in batch:
                labels.add(record)

    def forget_before(self, oldest: int) -> None:
        """Drops the spans older than ``oldest`` from memory (their files stay)."""
        for span in [s for s in self._spans if s < oldest]:
            del self._spans[span]
            prefix = span_feedback_dir(self.directory, span) + os.sep
            for path in [p for p in self._offsets if p.startswith(prefix)]:
                del self._offsets[path]

    def _refresh(self, span: int) -> SpanLabels:
        labels = self._spans.setdefault(span, SpanLabels())
        for path in label_files(self.directory, span):
            offset = self._offsets.get(path, 0)
            if os.path.getsize(path) > offset:
                records, self._offsets[path] = read_labels_from(path, offset)
                for record in records:
                    labels.add(record)
        return labels


def label_files(log_dir: str, span: int) -> List[str]:
    """The label files of one span (every writer's), sorted by name."""
    directory = span_feedback_dir(log_dir, span)
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, name) for name in sorted(os.listdir(directory)) if _FILE.match(name)]


def read_labels_from(path: str, offset: int) -> Tuple[List[LabelRecord], int]:
    """The labels of the complete lines from byte ``offset`` on, and the offset after them
    (for a reader that follows a file as it grows: this store, monitoring.canary)."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    lines, end = complete_lines(data)
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(LabelRecord.from_line(line))
        except (ValueError, KeyError, TypeError) as error:
            logger.error("feedback: %s: unreadable line after byte %d (+%d): %s", path, offset,
                         number, error)
    return records, offset + end


def complete_lines(data: bytes) -> Tuple[Iterable[bytes], int]:
    """The non-blank complete lines of ``data`` and the bytes they span: a line a
    writer is still appending (no newline yet) is left for the next read."""
    end = data.rfind(b"\n") + 1
    return (line for line in data[:end].split(b"\n") if line.strip()), end


def writer_file_name(prefix: str) -> str:
    """``<prefix>-<host>-<pid>-<token>.jsonl``: one file per writer, so two processes'
    lines never interleave."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64]
    return f"{prefix}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"


def append_durably(path: str, data: bytes, root: str) -> None:
    """Appends ``data`` with one ``os.write`` loop and one fsync; a new file and the
    directories made for it (up to ``root``) are fsynced too, so they survive a crash."""
    directory = os.path.dirname(path)
    created = not os.path.exists(path)
    if created:
        os.makedirs(directory, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        parent = directory
        while True:
            fsync_path(parent)
            if os.path.abspath(parent) == os.path.abspath(root) or os.path.dirname(parent) == parent:
                break
            parent = os.path.dirname(parent)


def fsync_path(path: str) -> None:
    """fsync of a file or directory (a new directory entry is durable only after
    its directory's fsync, not the file's own)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

