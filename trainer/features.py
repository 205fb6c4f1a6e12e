"""Feature names and specs, derived from the dataset config: the one place for them.

Transform, Tuner, Trainer, the export signatures and the Evaluator all ask this
module what the raw inputs are and what Transform turns them into, so adding a
feature is a config edit, never a code edit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping

import tensorflow as tf

from common.config import FeatureConfig, PipelineConfig

_TF_DTYPES = {"float": tf.float32, "int": tf.int64, "string": tf.string}
_TIMESTAMP_PART_SIZES = {"hour": 24, "weekday": 7, "month": 12}


def transformed_name(name: str) -> str:
    """The name Transform gives the output derived from raw input ``name``."""
    return f"{name}_xf"


def missing_indicator_name(name: str) -> str:
    return transformed_name(f"{name}_missing")


def uses_vocabulary(feature: FeatureConfig) -> bool:
    """Whether Transform computes a vocabulary for this feature."""
    return (feature.kind == "categorical" and not feature.max_value) or feature.kind in (
        "text", "multi_categorical")


def vocabulary_name(name: str) -> str:
    """The vocabulary file name Transform writes for a categorical feature."""
    return f"vocab_{name}"


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


@dataclass(frozen=True)
class ModelInput:
    """One transformed tensor the Keras model consumes.

    ``cardinality`` is 0 for dense floats (``width`` values per row), else the
    number of integer ids (known from the config, or read from the vocabulary
    after Transform). ``length`` > 0: a padded bag of ``length`` ids, 0 = padding.
    """
    key: str
    cardinality: int
    source: str
    length: int = 0
    width: int = 1


def model_inputs(cfg: PipelineConfig, vocabulary_sizes: Mapping[str, int]) -> List[ModelInput]:
    """The model's input tensors; ``vocabulary_sizes`` maps feature -> vocab size."""
    inputs: List[ModelInput] = []
    for f in cfg.features:
        inputs.extend(_inputs_for(f, vocabulary_sizes, len(cfg.label.classes)))
    return inputs


def _inputs_for(f: FeatureConfig, vocabulary_sizes: Mapping[str, int],
                label_classes: int = 0) -> List[ModelInput]:
    if f.kind in ("text", "multi_categorical"):  # ids + 1 (0 = padding), then OOV buckets
        size = vocabulary_sizes[f.name] + f.oov_buckets + 1
        return [ModelInput(transformed_name(f.name), size, f.name, length=f.max_tokens)]
    if f.kind == "label_prior":  # a distribution over the label's classes, and log1p(count)
        return [ModelInput(transformed_name(f.name), 0, f.name, width=label_classes),
                ModelInput(transformed_name(f"{f.name}_count"), 0, f.name)]
    if f.kind == "numeric":
        return [ModelInput(transformed_name(f.name), 0, f.name),
                ModelInput(missing_indicator_name(f.name), 0, f.name)]
    if f.kind == "categorical" and f.max_value:  # 0..max_value, then one id for out-of-range/missing
        return [ModelInput(transformed_name(f.name), f.max_value + 2, f.name)]
    if f.kind == "categorical":
        size = vocabulary_sizes[f.name] + f.oov_buckets
        return [ModelInput(transformed_name(f.name), size, f.name)]
    if f.kind == "bucketized":  # one extra id for "missing"
        return [ModelInput(transformed_name(f.name), f.buckets + 1, f.name)]
    if f.kind == "timestamp":
        return [ModelInput(transformed_name(f"{f.name}_{part}"), _TIMESTAMP_PART_SIZES[part], f.name)
                for part in f.parts]
    raise ValueError(f"feature {f.name!r}: unknown kind {f.kind!r}")


def primary_transformed_key(feature: FeatureConfig) -> str:
    """The transformed key that carries a feature's main signal."""
    return _inputs_for(feature, {feature.name: 1})[0].key


def transformed_label_name(cfg: PipelineConfig) -> str:
    return transformed_name(cfg.label.name)
