"""Vocabulary lookups: Transform's file-backed one and the edge's constant one.

Transform computes a vocabulary with ``tft.vocabulary`` and looks values up
with ``tft.apply_vocabulary`` (a table initialized from a text file). The edge
graph rebuilds the same lookup from the trained vocabulary file as in-graph
constants (``ConstantVocabulary``), which TF.js and TFLite builtins run.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from common.config import FeatureConfig
from trainer.kinds.base import Analysis
from trainer.names import vocabulary_name


class ConstantVocabulary(tf.Module):
    """Transform's vocabulary lookup with the tokens embedded as constants.

    ``tft.apply_vocabulary`` reads a text file at table initialization, which
    TF.js cannot do and TFLite only with SELECT_TF_OPS; a hash table from
    in-graph constants runs on both. Out-of-vocabulary ids follow
    ``tf.lookup.StaticVocabularyTable``: ``size + fingerprint hash % buckets``
    (no hash op at all with one bucket, so TFLite builtins suffice).
    """

    def __init__(self, tokens, num_oov_buckets: int, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        if not len(tokens):
            raise ValueError(f"vocabulary {name!r} is empty")
        self.size = len(tokens)
        self.num_oov_buckets = num_oov_buckets
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(list(tokens), tf.string),
                                                tf.range(self.size, dtype=tf.int64)),
            default_value=tf.constant(-1, tf.int64))

    def __call__(self, values: tf.Tensor) -> tf.Tensor:
        # The reshape restates the shape the TFLite converter loses at the lookup
        # (an unknown rank there breaks single-row calls in the interpreter).
        ids = tf.reshape(self.table.lookup(values), tf.shape(values))
        oov = tf.constant(self.size, tf.int64)
        if self.num_oov_buckets > 1:
            oov = oov + tf.strings.to_hash_bucket_fast(values, self.num_oov_buckets)
        return tf.where(ids >= 0, ids, oov)


def file_lookup(feature: FeatureConfig, values: tf.Tensor) -> Analysis:
    """Transform: the capped vocabulary of ``values`` (top_k seen frequency_threshold times),
    written as the feature's vocabulary file, and its file-backed lookup."""
    vocabulary = tft.vocabulary(values, top_k=feature.top_k, frequency_threshold=feature.frequency_threshold,
                                vocab_filename=vocabulary_name(feature.name))
    return {"lookup": lambda v: tft.apply_vocabulary(v, vocabulary, num_oov_buckets=feature.oov_buckets)}


def constant_lookup(feature: FeatureConfig, constants: Mapping[str, np.ndarray],
                    tf_transform_output: Any) -> Analysis:
    """Edge: the lookup ``file_lookup`` built, from the trained vocabulary file as constants."""
    tokens = tf_transform_output.vocabulary_by_name(vocabulary_name(feature.name))
    return {"lookup": ConstantVocabulary(tokens, feature.oov_buckets, name=f"vocab_{feature.name}")}


def always(feature: FeatureConfig) -> bool:
    """``uses_vocabulary`` of a kind that always writes one."""
    return True
