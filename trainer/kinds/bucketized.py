"""``bucketized``: quantile buckets over the training data, missing gets its own id."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from common.config import FeatureConfig
from trainer.kinds.base import Analysis, FeatureKind, ModelInput
from trainer.names import transformed_name


def _epsilon(num_buckets: int) -> float:
    return min(1.0 / num_buckets, 0.01)  # tft.bucketize's default error tolerance


def prepare(feature: FeatureConfig, values: tf.Tensor) -> tf.Tensor:
    return tf.cast(values, tf.float32)


def analyze(feature: FeatureConfig, column: Any) -> Analysis:
    values = column.values if isinstance(column, tf.SparseTensor) else column
    return {"boundaries": tft.quantiles(values, feature.buckets, _epsilon(feature.buckets))}


def apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
          analysis: Analysis) -> Dict[str, tf.Tensor]:
    """``tft.apply_buckets`` as plain comparisons (it uses searchsorted, which
    neither TFLite builtins nor TF.js run): the bucket is the number of
    boundaries below the value, the last boundary ignored as TFT does."""
    boundaries = tf.reshape(tf.cast(analysis["boundaries"], tf.float32), [-1])[:-1]
    below = tf.cast(tf.expand_dims(boundaries, 0) < tf.expand_dims(value, 1), tf.int64)
    ids = tf.reduce_sum(below, axis=1)
    return {transformed_name(feature.name): tf.where(present, ids, tf.constant(feature.buckets, tf.int64))}


def model_inputs(feature: FeatureConfig, vocabulary_sizes: Mapping[str, int],
                 label_classes: int) -> List[ModelInput]:
    """One extra id for "missing"."""
    return [ModelInput(transformed_name(feature.name), feature.buckets + 1, feature.name)]


KIND = FeatureKind(prepare=prepare, analyze=analyze, apply=apply, model_inputs=model_inputs)
