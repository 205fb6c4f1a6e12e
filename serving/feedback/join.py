"""Labelled spans: a span of the request log joined with its labels, as ExampleGen reads them.

Layout, beside the request log::

    <request_log_dir>/labelled/span-<N>/version-<V>/data.tfrecord.gz   GZIP TFRecord of tf.Example
    <request_log_dir>/labelled/span-<N>/version-<V>.json               manifest (counts, label digest)

``ImportExampleGen(input_base=<request_log_dir>/labelled)`` with the input
pattern ``EXAMPLE_GEN_PATTERN`` (``span-{SPAN}/version-{VERSION}/*``) reads
the newest span's newest version (a ``RangeConfig`` picks another span).

Each example is one logged primary row (the answer the client got) with a
label: its raw features exactly as the gateway logged them -- sensitive
features stay dropped or hashed, the log's ``__log_*`` metadata is removed --
plus the label column in its raw form (``labels.LabelSpec``), so the
pipeline's Transform computes the training label as it does for the
training files.

A version is never rewritten: it may already have trained a model. The join
writes version V+1 only when the labels it can join differ from version V's
(a SHA-256 over the sorted (request id, row, label) triples, kept in the
manifest); run again with no new labels, it writes nothing. A label whose row
is not in the log yet (still queued in a gateway) is counted as unmatched and
joins a later version. New versions appear by one directory rename, so a
reader never sees a half-written one.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

from tensorflow.core.example import example_pb2

from serving import request_log
from serving.feedback.index import read_records
from serving.feedback.labels import LabelSpec
from serving.feedback.store import Key, fsync_path, label_files, read_span_labels

LABELLED_DIR = "labelled"
EXAMPLE_GEN_PATTERN = "span-{SPAN}/version-{VERSION}/*"
DATA_FILE = "data.tfrecord.gz"
_VERSION_DIR = re.compile(r"^version-(\d+)$")


@dataclasses.dataclass
class JoinResult:
    """What joining one span found and wrote."""
    span: int
    version: Optional[int]   # the span's newest version after the join (None: none yet)
    written: bool            # this join wrote ``version``
    rows: int                # labelled rows in ``version``
    labels: int              # labels stored for the span
    unmatched: int           # labels whose row is not (yet) in the span's log
    conflicts: int           # rows given two different labels (the first received is used)
    ambiguous: int           # labelled (request id, row) logged twice in the span: left out
    path: str                # the version directory ("" when there is none)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def labelled_dir(log_dir: str) -> str:
    """ImportExampleGen's ``input_base`` for labelled spans."""
    return os.path.join(log_dir, LABELLED_DIR)


def version_dir(log_dir: str, span: int, version: int) -> str:
    return os.path.join(labelled_dir(log_dir), f"span-{span}", f"version-{version}")


def list_versions(log_dir: str, span: int) -> List[int]:
    """The span's complete versions, oldest first."""
    directory = os.path.join(labelled_dir(log_dir), f"span-{span}")
    if not os.path.isdir(directory):
        return []
    return sorted(int(m.group(1)) for m in map(_VERSION_DIR.match, os.listdir(directory)) if m)


def read_manifest(log_dir: str, span: int, version: int) -> Optional[Dict[str, Any]]:
    path = version_dir(log_dir, span, version) + ".json"
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def join_span(log_dir: str, span: int, spec: LabelSpec) -> JoinResult:
    """Joins span ``span``'s labels with its logged rows; writes a new version if they changed."""
    versions = list_versions(log_dir, span)
    latest = versions[-1] if versions else None
    manifest = read_manifest(log_dir, span, latest) if latest is not None else None
    inputs = _inputs_digest(log_dir, span)
    if manifest is not None and manifest.get("inputs_sha256") == inputs:
        # Not a byte appended to the span's log or labels since that version: nothing to read.
        return _unchanged(log_dir, span, latest, manifest, {k: manifest[k] for k in _COUNTS})
    labels = read_span_labels(log_dir, span)
    joined, ambiguous = _joined_rows(log_dir, span, labels.first, spec)
    digest = _digest(joined, labels.first)
    counts = dict(labels=len(labels), unmatched=len(labels.first) - len(joined) - len(ambiguous),
                  conflicts=len(labels.conflicts), ambiguous=len(ambiguous))
    if not joined or (manifest is not None and manifest.get("labels_sha256") == digest):
        return _unchanged(log_dir, span, latest, manifest, counts)
    version = (latest or 0) + 1
    path = _write_version(log_dir, span, version, list(joined.values()))
    _write_json(path + ".json", {"span": span, "version": version, "rows": len(joined),
                                 "labels_sha256": digest, "inputs_sha256": inputs,
                                 "label_column": spec.column,
                                 "created_ms": int(time.time() * 1000), **counts})
    return JoinResult(span, version, True, len(joined), path=path, **counts)


_COUNTS = ("labels", "unmatched", "conflicts", "ambiguous")


def _unchanged(log_dir: str, span: int, latest: Optional[int], manifest: Optional[Dict[str, Any]],
               counts: Dict[str, int]) -> JoinResult:
    rows = manifest.get("rows", 0) if manifest else 0
    path = version_dir(log_dir, span, latest) if latest is not None else ""
    return JoinResult(span, latest, False, rows, path=path, **counts)


def _inputs_digest(log_dir: str, span: int) -> str:
    """SHA-256 of the names and sizes of the span's log and label files (all append-only:
    the same names and sizes mean the same bytes)."""
    digest = hashlib.sha256()
    for path in sorted(glob.glob(request_log.window_glob(log_dir, span))) + label_files(log_dir, span):
        digest.update(f"{os.path.relpath(path, log_dir)}\t{os.path.getsize(path)}\n".encode("utf-8"))
    return digest.hexdigest()


def _joined_rows(log_dir: str, span: int, labels: Dict[Key, Any], spec: LabelSpec
                 ) -> Tuple[Dict[Key, example_pb2.Example], set]:
    """Logged primary rows that have a label, in log order, each with its label column."""
    joined: Dict[Key, example_pb2.Example] = {}
    twice = set()
    prefix = request_log.METADATA_PREFIX
    for path in sorted(glob.glob(request_log.window_glob(log_dir, span))):
        for record, _ in read_records(path):
            example = example_pb2.Example.FromString(record)
            features = example.features.feature
            key = (features[request_log.REQUEST_ID].bytes_list.value[0].decode("utf-8"),
                   features[request_log.ROW].int64_list.value[0])
            label = labels.get(key)
            if label is None or features[request_log.MODEL].bytes_list.value[0].decode() != label.model:
                continue
            if key in joined:
                twice.add(key)
                continue
            # request_log.strip_example, in place: a copy per feature costs 3x the whole join.
            for name in [name for name in features if name.startswith(prefix)]:
                del features[name]
            features[spec.column].CopyFrom(spec.feature(label.label))
            joined[key] = example
    for key in twice:
        del joined[key]
    return joined, twice


def _digest(joined: Dict[Key, Any], labels: Dict[Key, Any]) -> str:
    """SHA-256 of the joined (request id, row, label) triples: a version's identity."""
    digest = hashlib.sha256()
    for request_id, row in sorted(joined):
        label = json.dumps(labels[(request_id, row)].label)
        digest.update(f"{request_id}\t{row}\t{label}\n".encode("utf-8"))
    return digest.hexdigest()


def _write_version(log_dir: str, span: int, version: int, rows: List[example_pb2.Example]) -> str:
    """Writes into a hidden directory (not matched by the input pattern), then renames it."""
    import tensorflow as tf  # the writer of GZIP TFRecords ExampleGen reads

    final = version_dir(log_dir, span, version)
    staging = os.path.join(os.path.dirname(final), f".version-{version}.{uuid.uuid4().hex[:8]}")
    os.makedirs(staging)
    try:
        data = os.path.join(staging, DATA_FILE)
        with tf.io.TFRecordWriter(data, tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
            for row in rows:
                writer.write(row.SerializeToString())
        fsync_path(data)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_path(os.path.dirname(final))
    return final


def _write_json(path: str, payload: Dict[str, Any]) -> None:
    staging = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with open(staging, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, path)

