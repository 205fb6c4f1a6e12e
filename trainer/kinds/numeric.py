"""``numeric``: z-score, missing indicator, mean imputation."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from common.config import FeatureConfig
from trainer.kinds.base import Analysis, FeatureKind, ModelInput
from trainer.names import missing_indicator_name, transformed_name


def prepare(feature: FeatureConfig, values: tf.Tensor) -> tf.Tensor:
    values = tf.cast(values, tf.float32)
    return tf.math.log1p(tf.maximum(values, 0.0)) if feature.log1p else values


def analyze(feature: FeatureConfig, column: Any) -> Analysis:
    """Mean and variance are independent analyzers over the present values; a
    z-score of the mean-imputed column would depend on the mean and cost
    Transform a whole extra pass over the data."""
    return {"mean": tft.mean(column), "var": tft.var(column)}


def apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
          analysis: Analysis) -> Dict[str, tf.Tensor]:
    """z-score; missing values score 0 (mean imputation) and are flagged by a 0/1 indicator."""
    mean = tf.cast(analysis["mean"], tf.float32)
    std = tf.sqrt(tf.cast(analysis["var"], tf.float32))
    z = tf.where(std > 0, (value - mean) / tf.where(std > 0, std, 1.0), tf.zeros_like(value))
    return {
        transformed_name(feature.name): tf.where(present, z, tf.zeros_like(z)),
        missing_indicator_name(feature.name): 1.0 - tf.cast(present, tf.float32),
    }


def model_inputs(feature: FeatureConfig, vocabulary_sizes: Mapping[str, int],
                 label_classes: int) -> List[ModelInput]:
    return [ModelInput(transformed_name(feature.name), 0, feature.name),
            ModelInput(missing_indicator_name(feature.name), 0, feature.name)]


KIND = FeatureKind(prepare=prepare, analyze=analyze, apply=apply, model_inputs=model_inputs)
