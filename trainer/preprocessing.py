"""Transform's ``preprocessing_fn``, built entirely from the dataset config.

Referenced by dotted path (``trainer.preprocessing.preprocessing_fn``); the
config arrives through Transform's ``custom_config``. Every raw column may be
missing (VarLen), so each transform densifies with an explicit missing-value
policy instead of trusting the data to be complete.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

import tensorflow as tf
import tensorflow_transform as tft

from pipeline.config import FeatureConfig, LabelConfig
from trainer import features, text_features

_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = 86400


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
    """Raw features -> model inputs (plus the label when its columns are present)."""
    cfg = features.config_from_custom_config(custom_config)
    outputs: Dict[str, tf.Tensor] = {}
    for feature in cfg.features:
        if feature.kind in text_features.ROW_KINDS:  # kinds that read several columns
            outputs.update(text_features.ROW_KINDS[feature.kind](feature, inputs, cfg.label))
        else:
            outputs.update(transform_feature(feature, inputs[feature.column]))
    if all(col in inputs for col in features.label_source_columns(cfg)):
        outputs[features.transformed_label_name(cfg)] = make_label(cfg.label, inputs)
    return outputs


def transform_feature(feature: FeatureConfig, x: Any) -> Dict[str, tf.Tensor]:
    """The transformed tensors for one raw feature, by its kind."""
    transform = {
        "numeric": _numeric,
        "categorical": _categorical,
        "bucketized": _bucketized,
        "timestamp": _timestamp,
        **text_features.COLUMN_KINDS,
    }[feature.kind]
    return transform(feature, x)


def densify(x: Any, default: Any) -> Tuple[tf.Tensor, tf.Tensor]:
    """A rank-1 tensor of the first value per row and a boolean 'present' mask."""
    if not isinstance(x, tf.SparseTensor):
        x = tf.reshape(x, [-1])
        return x, tf.ones_like(x, dtype=tf.bool)
    shape = [x.dense_shape[0], 1]
    values = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, shape), default_value=default)
    present = tf.sparse.to_dense(
        tf.SparseTensor(x.indices, tf.ones_like(x.values, dtype=tf.bool), shape), default_value=False)
    return tf.squeeze(values, axis=1), tf.squeeze(present, axis=1)


def _map_values(x: Any, fn) -> Any:
    """``fn`` applied to the values of a dense or sparse tensor."""
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, fn(x.values), x.dense_shape)
    return fn(x)


def _as_float(x: Any) -> Any:
    return _map_values(x, lambda v: tf.cast(v, tf.float32))


def _numeric(feature: FeatureConfig, x: Any) -> Dict[str, tf.Tensor]:
    """z-score from the present values' mean and variance; missing values score 0
    (mean imputation) and are flagged by a 0/1 indicator.

    Mean and variance are independent analyzers over the raw values; a z-score of
    the mean-imputed column would depend on the mean and cost Transform a whole
    extra pass over the data.
    """
    x = _as_float(x)
    if feature.log1p:
        x = _map_values(x, lambda v: tf.math.log1p(tf.maximum(v, 0.0)))
    mean, variance = tft.mean(x), tft.var(x)
    value, present = densify(x, 0.0)
    std = tf.sqrt(variance)
    z = tf.where(std > 0, (value - mean) / tf.where(std > 0, std, 1.0), tf.zeros_like(value))
    return {
        features.transformed_name(feature.name): tf.where(present, z, tf.zeros_like(z)),
        features.missing_indicator_name(feature.name): 1.0 - tf.cast(present, tf.float32),
    }


def _categorical(feature: FeatureConfig, x: Any) -> Dict[str, tf.Tensor]:
    """Vocabulary ids; rare values and unseen ones share the OOV buckets."""
    if feature.max_value:
        return {features.transformed_name(feature.name): _integer_ids(feature.max_value, x)}
    x = _map_values(x, lambda v: v if v.dtype == tf.string else tf.strings.as_string(v))
    value, present = densify(x, "")
    value = tf.where(present, value, tf.fill(tf.shape(value), ""))
    ids = tft.compute_and_apply_vocabulary(
        value,
        top_k=feature.top_k,
        frequency_threshold=feature.frequency_threshold,
        num_oov_buckets=feature.oov_buckets,
        vocab_filename=features.vocabulary_name(feature.name))
    return {features.transformed_name(feature.name): ids}


def _integer_ids(max_value: int, x: Any) -> tf.Tensor:
    """Small ints used as ids; missing or outside 0..max_value -> max_value + 1."""
    value, present = densify(_map_values(x, lambda v: tf.cast(v, tf.int64)), tf.constant(0, tf.int64))
    valid = present & (value >= 0) & (value <= max_value)
    return tf.where(valid, value, tf.constant(max_value + 1, tf.int64))


def _bucketized(feature: FeatureConfig, x: Any) -> Dict[str, tf.Tensor]:
    """Quantile buckets learned from present values; missing gets its own id."""
    buckets = tft.bucketize(_as_float(x), feature.buckets)
    ids, _ = densify(buckets, tf.constant(feature.buckets, tf.int64))
    return {features.transformed_name(feature.name): ids}


def _timestamp(feature: FeatureConfig, x: Any) -> Dict[str, tf.Tensor]:
    """Calendar parts (UTC) of epoch seconds, as small integer ids."""
    seconds, _ = densify(_map_values(x, lambda v: tf.cast(v, tf.int64)), tf.constant(0, tf.int64))
    days = seconds // _SECONDS_PER_DAY
    parts = {
        "hour": lambda: (seconds // _SECONDS_PER_HOUR) % 24,
        "weekday": lambda: (days + 3) % 7,  # 1970-01-01 was a Thursday; Monday = 0
        "month": lambda: month_from_days(days) - 1,
    }
    return {features.transformed_name(f"{feature.name}_{part}"): parts[part]() for part in feature.parts}


def month_from_days(days: tf.Tensor) -> tf.Tensor:
    """Month 1..12 of days since 1970-01-01 (Hinnant's civil-from-days, graph-only ops)."""
    z = days + 719468
    era = tf.math.floordiv(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    return tf.where(mp < 10, mp + 3, mp - 9)


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
