"""``categorical``: vocabulary ids (rare and unseen values -> OOV buckets), or small ints as ids."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

import numpy as np
import tensorflow as tf

from common.config import FeatureConfig
from trainer.kinds import vocabulary
from trainer.kinds.base import Analysis, FeatureKind, ModelInput, densify
from trainer.names import transformed_name


def prepare(feature: FeatureConfig, values: tf.Tensor) -> tf.Tensor:
    if feature.max_value:
        return tf.cast(values, tf.int64)
    return values if values.dtype == tf.string else tf.strings.as_string(values)


def analyze(feature: FeatureConfig, column: Any) -> Analysis:
    """The vocabulary (missing counts as the empty string) and its file-backed lookup."""
    if feature.max_value:
        return {}
    value, _ = densify(column, "")
    return vocabulary.file_lookup(feature, value)


def apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
          analysis: Analysis) -> Dict[str, tf.Tensor]:
    """Small ints: the value is the id, missing or outside 0..max_value -> max_value + 1.
    Strings: vocabulary ids, rare and unseen values share the OOV buckets."""
    name = transformed_name(feature.name)
    if feature.max_value:
        valid = present & (value >= 0) & (value <= feature.max_value)
        return {name: tf.where(valid, value, tf.constant(feature.max_value + 1, tf.int64))}
    return {name: analysis["lookup"](value)}  # missing rows hold "", counted so in the vocabulary


def edge_analysis(feature: FeatureConfig, constants: Mapping[str, np.ndarray], tf_transform_output: Any) -> Analysis:
    if feature.max_value:
        return {}
    return vocabulary.constant_lookup(feature, constants, tf_transform_output)


def uses_vocabulary(feature: FeatureConfig) -> bool:
    return not feature.max_value


def model_inputs(feature: FeatureConfig, vocabulary_sizes: Mapping[str, int],
                 label_classes: int) -> List[ModelInput]:
    """0..max_value, then one id for out-of-range/missing; or the vocabulary, then the OOV buckets."""
    if feature.max_value:
        return [ModelInput(transformed_name(feature.name), feature.max_value + 2, feature.name)]
    size = vocabulary_sizes[feature.name] + feature.oov_buckets
    return [ModelInput(transformed_name(feature.name), size, feature.name)]


KIND = FeatureKind(prepare=prepare, analyze=analyze, apply=apply, model_inputs=model_inputs,
                   edge_analysis=edge_analysis, uses_vocabulary=uses_vocabulary)
