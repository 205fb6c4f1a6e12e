"""Feature names and specs, derived from the dataset config: the one place for them.

Transform, Tuner, Trainer, the export signatures and the Evaluator all ask this
module what the raw inputs are and what Transform turns them into, so adding a
feature is a config edit, never a code edit.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

import tensorflow as tf

from common.config import FeatureConfig, PipelineConfig
from trainer.kinds import registry

# Re-exported: callers ask this module for every feature name and model input.
from trainer.kinds.base import ModelInput  # noqa: F401
from trainer.names import missing_indicator_name, transformed_name, vocabulary_name  # noqa: F401

_TF_DTYPES = {"float": tf.float32, "int": tf.int64, "string": tf.string}


def uses_vocabulary(feature: FeatureConfig) -> bool:
    """Whether Transform computes a vocabulary for this feature (its kind says)."""
    return registry.feature_kind(feature).uses_vocabulary(feature)


def tf_dtype(dtype: str) -> tf.dtypes.DType:
    return _TF_DTYPES[dtype]


def label_source_columns(cfg: PipelineConfig) -> List[str]:
    """Raw columns the label is computed from (absent at serving time)."""
    cols = [cfg.label.column]
    if cfg.label.kind == "ratio_threshold" and cfg.label.denominator not in cols:
        denominator_is_feature = any(f.name == cfg.label.denominator for f in cfg.features)
        if not denominator_is_feature:
            cols.append(cfg.label.denominator)
    return cols


def label_dtype(cfg: PipelineConfig) -> str:
    return {"ratio_threshold": "float", "column": "int", "classes": "string"}[cfg.label.kind]


def serving_feature_dtypes(cfg: PipelineConfig) -> Dict[str, str]:
    """Raw serving inputs (column -> config dtype), in config order; a column read
    by two features (speaker and its label prior) is one input."""
    return {f.column: f.dtype for f in cfg.features}


def raw_feature_spec(cfg: PipelineConfig, include_label: bool = True) -> Dict[str, Any]:
    """tf.io parsing spec for raw tf.Examples; every column may be missing (VarLen)."""
    spec = {f.column: tf.io.VarLenFeature(tf_dtype(f.dtype)) for f in cfg.features}
    if include_label:
        for col in label_source_columns(cfg):
            dtype = label_dtype(cfg) if col == cfg.label.column else "float"
            spec[col] = tf.io.VarLenFeature(tf_dtype(dtype))
    return spec


def serving_input_signature(cfg: PipelineConfig) -> Dict[str, tf.TensorSpec]:
    """``serving_default``'s inputs (and the edge models'): one [None] tensor per raw
    feature, config order."""
    return {name: tf.TensorSpec([None], tf_dtype(dtype), name=name)
            for name, dtype in serving_feature_dtypes(cfg).items()}


def model_inputs(cfg: PipelineConfig, vocabulary_sizes: Mapping[str, int]) -> List[ModelInput]:
    """The model's input tensors, as each feature's kind declares them;
    ``vocabulary_sizes`` maps feature -> vocab size."""
    inputs: List[ModelInput] = []
    for f in cfg.features:
        inputs.extend(registry.feature_kind(f).model_inputs(f, vocabulary_sizes, len(cfg.label.classes)))
    return inputs


def primary_transformed_key(feature: FeatureConfig) -> str:
    """The transformed key that carries a feature's main signal."""
    return registry.feature_kind(feature).model_inputs(feature, {feature.name: 1}, 0)[0].key


def transformed_label_name(cfg: PipelineConfig) -> str:
    return transformed_name(cfg.label.name)
