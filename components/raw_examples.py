"""Reading raw tf.Examples of one split of an Examples artifact (ExampleGen's output)."""
from __future__ import annotations

import itertools
import os
from typing import Dict, Iterator, List

import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types.artifact import Artifact


def split_names(examples: Artifact) -> List[str]:
    return artifact_utils.decode_split_names(examples.split_names)


def serialized(examples: Artifact, split: str) -> Iterator[bytes]:
    """Serialized tf.Examples of ``split`` (gzipped TFRecords, as ExampleGen writes them)."""
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = tf.io.gfile.glob(pattern)
    if not files:
        raise FileNotFoundError(f"no example files for split {split!r} at {pattern}")
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        yield record.numpy()


def batches(examples: Artifact, split: str, size: int) -> Iterator[List[bytes]]:
    """``serialized`` in lists of ``size`` records: one batch in memory at a time."""
    records = serialized(examples, split)
    while batch := list(itertools.islice(records, size)):
        yield batch


def string_column(records: List[bytes], name: str) -> List[str]:
    """The first value of a string feature per example ("" when missing)."""
    out = []
    for record in records:
        values = tf.train.Example.FromString(record).features.feature[name].bytes_list.value
        out.append(values[0].decode("utf-8") if values else "")
    return out


def keep_only(record: bytes, names) -> bytes:
    """The example with every feature not in ``names`` removed (a reduced request)."""
    example = tf.train.Example.FromString(record)
    for key in list(example.features.feature.keys()):
        if key not in names:
            del example.features.feature[key]
    return example.SerializeToString()


def by_split(examples: Artifact) -> Dict[str, List[bytes]]:
    return {split: list(serialized(examples, split)) for split in split_names(examples)}
