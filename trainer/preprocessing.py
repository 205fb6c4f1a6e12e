"""Transform's ``preprocessing_fn``, built entirely from the dataset config.

Referenced by dotted path (``trainer.preprocessing.preprocessing_fn``); the
config arrives through Transform's ``custom_config``. Every raw column may be
missing (VarLen), so each transform densifies with an explicit missing-value
policy instead of trusting the data to be complete.

Each feature runs its kind's ``FeatureKind`` (``trainer.kinds``), looked up in
the registry the edge graph also uses, so Transform and the TFLite/TF.js
exports share the feature math (see ``trainer.kinds.base``).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import tensorflow as tf

from common import executor_config
from common.config import FeatureConfig, LabelConfig
from trainer import features
from trainer.kinds import registry
from trainer.kinds.base import densify, map_values, name_constants


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
    """Raw features -> model inputs (plus the label when its columns are present)."""
    cfg = executor_config.config_from_slice(custom_config, source="Transform custom_config")
    outputs: Dict[str, tf.Tensor] = {}
    for feature in cfg.features:
        kind = registry.feature_kind(feature)
        if kind.transform is not None:  # kinds that read several columns
            outputs.update(kind.transform(feature, inputs, cfg.label))
        else:
            outputs.update(transform_feature(feature, inputs[feature.column]))
    if all(col in inputs for col in features.label_source_columns(cfg)):
        outputs[features.transformed_label_name(cfg)] = make_label(cfg.label, inputs)
    return outputs


def transform_feature(feature: FeatureConfig, x: Any) -> Dict[str, tf.Tensor]:
    """The transformed tensors for one raw feature, in Transform: prepare, analyze, apply."""
    kind = registry.feature_kind(feature)
    if kind.column is not None:
        x = kind.column(feature, x)
    prepared = map_values(x, lambda v: kind.prepare(feature, v))
    analysis = name_constants(feature, kind.analyze(feature, prepared))
    values, present = densify(prepared, tf.zeros([], prepared.dtype))
    return kind.apply(feature, values, present, analysis)


def _as_float(x: Any) -> Any:
    return map_values(x, lambda v: tf.cast(v, tf.float32))


def make_label(label: LabelConfig, inputs: Mapping[str, Any]) -> tf.Tensor:
    """The int64 training label, per the config's label kind."""
    if label.kind == "ratio_threshold":
        numerator, _ = densify(_as_float(inputs[label.column]), 0.0)
        denominator, _ = densify(_as_float(inputs[label.denominator]), 0.0)
        return tf.cast(numerator > label.fraction * denominator, tf.int64)
    if label.kind == "column":
        value, _ = densify(inputs[label.column], tf.constant(0, tf.int64))
        return tf.cast(value, tf.int64)
    value, _ = densify(inputs[label.column], "")
    if label.is_binary_fold:
        keys, ids = list(label.positive_classes), [1] * len(label.positive_classes)
        default = 0
    else:
        keys, ids = list(label.classes), list(range(len(label.classes)))
        default = -1
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(ids, tf.int64)),
        default_value=default)
    return table.lookup(value)
