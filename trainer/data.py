"""tf.data input from Transform's output, usable with or without TFX.

Reads the gzipped TFRecords Transform writes and parses them with the
transformed feature spec, so ``train()`` can be tested on any small
materialised dataset without a running pipeline.
"""
from __future__ import annotations

import glob
from typing import Iterable, List, Mapping, Tuple

import tensorflow as tf


def list_files(patterns: Iterable[str]) -> List[str]:
    """Expands file patterns (TFX passes ``.../Split-train/*``); fails if none match."""
    patterns = list(patterns)
    files = sorted(f for p in patterns for f in glob.glob(p))
    if not files:
        raise FileNotFoundError(f"no transformed example files match {patterns}")
    return files


def make_dataset(patterns: Iterable[str], feature_spec: Mapping[str, tf.io.FixedLenFeature],
                 label_key: str, batch_size: int, seed: int, shuffle: bool = True,
                 repeat: bool = True) -> tf.data.Dataset:
    """Batches of (features, label) from gzipped transformed tf.Examples."""
    ds = tf.data.TFRecordDataset(list_files(patterns), compression_type="GZIP")
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size).map(lambda x: _split_label(tf.io.parse_example(x, feature_spec), label_key))
    return ds.prefetch(tf.data.AUTOTUNE)


def _split_label(parsed: Mapping[str, tf.Tensor], label_key: str) -> Tuple[dict, tf.Tensor]:
    parsed = dict(parsed)
    return parsed, parsed.pop(label_key)
