"""Transform's ``preprocessing_fn``, built entirely from the dataset config.

Referenced by dotted path (``trainer.preprocessing.preprocessing_fn``); the
config arrives through Transform's ``custom_config``. Every raw column may be
missing (VarLen), so each transform densifies with an explicit missing-value
policy instead of trusting the data to be complete.

One source of truth for the feature math
----------------------------------------
Every feature ``kind`` of the config is a ``FeatureKind`` in ``KINDS``, made
of three functions so that Transform and the edge exports (TFLite, TF.js;
``trainer/edge_export.py``) run the very same code:

* ``prepare(feature, values)``: elementwise pure TF on the raw values (casts,
  ``log1p``, ints as strings). Runs on a (possibly sparse) column's values in
  Transform and on the dense serving inputs at the edge.
* ``analyze(feature, column)``: TF Transform analyzers over the prepared
  column (``tf.SparseTensor`` when values may be missing); returns the
  *analysis*, a dict of named results. Tensor results (means, variances,
  quantile boundaries) are named in the graph by ``preprocessing_fn`` (see
  ``constant_node_name``) so the edge export reads their values back from the
  Transform graph. Only called inside ``preprocessing_fn``.
* ``apply(feature, values, present, analysis)``: pure TF, no analyzers, no
  files: dense rank-1 prepared values (the dtype's zero value, 0 or "", where
  a value is missing), a boolean ``present`` mask (all true at serving time,
  one value per row) and the analysis -> transformed tensors. It must only
  use ops that TFLite builtins and TF.js run: no ParseExample, no
  file-initialized tables, no int64 division, no ``tf.where`` on strings.
* ``edge_analysis(feature, constants, tf_transform_output)`` (optional):
  rebuilds the analysis from the trained Transform output as constants;
  ``constants`` holds the values of this feature's named tensor results. The
  default returns ``constants`` unchanged; a kind whose analysis is not a
  plain tensor (a vocabulary lookup) builds it here. ``edge_analysis=None``
  means the kind cannot be exported to the edge (the export fails naming it).

Two optional fields serve kinds whose raw column needs work the edge runtimes
cannot do (``trainer/text_features.py``): ``column(feature, raw_column)``
runs in Transform only, before ``prepare``, and turns the raw column into one
value per row the way an edge caller must (joining a row's values, ASCII
lower-casing: TF.js has no ReduceJoin or StringLower); such a kind sets
``ascii_lowercase_input`` and the edge signature marks its input so callers
lower-case A-Z first (``extension/scorer.js`` does). ``label_prior`` reads
several columns and the label in Transform (``text_features.ROW_KINDS``); its
``FeatureKind`` is the edge half: a serving row is never a training row, so it
gets the full training counts, from a constant table.

A new kind (another module) registers a ``FeatureKind`` in ``KINDS`` and
declares its model inputs in ``trainer.features``. A kind may also register a
plain function ``(feature, column) -> transformed tensors``: Transform runs
it, and the edge export fails naming the feature (set
``serving.edge_exports: false`` for such a dataset).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from common import executor_config
from common.config import FeatureConfig, LabelConfig
from trainer import features, text_features

CONSTANT_PREFIX = "edge_constant__"
_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = 86400
_INT32_MIN, _INT32_MAX = -2 ** 31, 2 ** 31 - 1

Analysis = Dict[str, Any]


@dataclass(frozen=True)
class FeatureKind:
    """How one config ``kind`` is prepared, analyzed and applied (module docstring)."""
    prepare: Callable[[FeatureConfig, tf.Tensor], tf.Tensor]
    analyze: Callable[[FeatureConfig, Any], Analysis]
    apply: Callable[[FeatureConfig, tf.Tensor, tf.Tensor, Analysis], Dict[str, tf.Tensor]]
    edge_analysis: Optional[Callable[[FeatureConfig, Mapping[str, np.ndarray], Any], Analysis]] = \
        lambda feature, constants, tf_transform_output: dict(constants)
    # Transform only, before ``prepare``: the raw column -> one value per row, the
    # normalisation an edge caller does itself (joining values, lower-casing).
    column: Optional[Callable[[FeatureConfig, Any], tf.Tensor]] = None
    # The edge input must arrive ASCII lower-cased (recorded in edge_signature.json).
    ascii_lowercase_input: bool = False


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
    """Raw features -> model inputs (plus the label when its columns are present)."""
    cfg = executor_config.config_from_slice(custom_config, source="Transform custom_config")
    outputs: Dict[str, tf.Tensor] = {}
    for feature in cfg.features:
        if feature.kind in text_features.ROW_KINDS:  # kinds that read several columns
            outputs.update(text_features.ROW_KINDS[feature.kind](feature, inputs, cfg.label))
        else:
            outputs.update(transform_feature(feature, inputs[feature.column]))
    if all(col in inputs for col in features.label_source_columns(cfg)):
        outputs[features.transformed_label_name(cfg)] = make_label(cfg.label, inputs)
    return outputs


TransformOnly = Callable[[FeatureConfig, Any], Dict[str, tf.Tensor]]


def feature_kind(feature: FeatureConfig) -> Union[FeatureKind, TransformOnly]:
    """The ``FeatureKind`` (or Transform-only function) of a config feature."""
    try:
        return KINDS[feature.kind]
    except KeyError:
        raise ValueError(f"feature {feature.name!r}: unknown kind {feature.kind!r}; "
                         f"expected one of {sorted(KINDS)}") from None


def transform_feature(feature: FeatureConfig, x: Any) -> Dict[str, tf.Tensor]:
    """The transformed tensors for one raw feature, in Transform: prepare, analyze, apply."""
    kind = feature_kind(feature)
    if not isinstance(kind, FeatureKind):
        return kind(feature, x)
    if kind.column is not None:
        x = kind.column(feature, x)
    prepared = _map_values(x, lambda v: kind.prepare(feature, v))
    analysis = {key: tf.identity(value, name=constant_node_name(feature.name, key))
                if isinstance(value, tf.Tensor) else value
                for key, value in kind.analyze(feature, prepared).items()}
    values, present = densify(prepared, tf.zeros([], prepared.dtype))
    return kind.apply(feature, values, present, analysis)


def constant_node_name(feature_name: str, key: str) -> str:
    """The graph name of an analyzer result, read back by the edge export.

    Characters TF does not allow in op names become ``_``; keys hold no ``__``.
    """
    return f"{CONSTANT_PREFIX}{re.sub(r'[^A-Za-z0-9_.-]', '_', feature_name)}__{key}"


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


def _no_analysis(feature: FeatureConfig, column: Any) -> Analysis:
    return {}


# --- numeric: z-score, missing indicator, mean imputation ---------------------

def _numeric_prepare(feature: FeatureConfig, values: tf.Tensor) -> tf.Tensor:
    values = tf.cast(values, tf.float32)
    return tf.math.log1p(tf.maximum(values, 0.0)) if feature.log1p else values


def _numeric_analyze(feature: FeatureConfig, column: Any) -> Analysis:
    """Mean and variance are independent analyzers over the present values; a
    z-score of the mean-imputed column would depend on the mean and cost
    Transform a whole extra pass over the data."""
    return {"mean": tft.mean(column), "var": tft.var(column)}


def _numeric_apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
                   analysis: Analysis) -> Dict[str, tf.Tensor]:
    """z-score; missing values score 0 (mean imputation) and are flagged by a 0/1 indicator."""
    mean = tf.cast(analysis["mean"], tf.float32)
    std = tf.sqrt(tf.cast(analysis["var"], tf.float32))
    z = tf.where(std > 0, (value - mean) / tf.where(std > 0, std, 1.0), tf.zeros_like(value))
    return {
        features.transformed_name(feature.name): tf.where(present, z, tf.zeros_like(z)),
        features.missing_indicator_name(feature.name): 1.0 - tf.cast(present, tf.float32),
    }


# --- categorical: vocabulary ids (rare and unseen values -> OOV buckets), or small ints as ids

def _categorical_prepare(feature: FeatureConfig, values: tf.Tensor) -> tf.Tensor:
    if feature.max_value:
        return tf.cast(values, tf.int64)
    return values if values.dtype == tf.string else tf.strings.as_string(values)


def _categorical_analyze(feature: FeatureConfig, column: Any) -> Analysis:
    """The vocabulary (missing counts as the empty string) and its file-backed lookup."""
    if feature.max_value:
        return {}
    value, _ = densify(column, "")
    vocabulary = tft.vocabulary(value, top_k=feature.top_k, frequency_threshold=feature.frequency_threshold,
                                vocab_filename=features.vocabulary_name(feature.name))
    return {"lookup": lambda v: tft.apply_vocabulary(v, vocabulary, num_oov_buckets=feature.oov_buckets)}


def _categorical_apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
                       analysis: Analysis) -> Dict[str, tf.Tensor]:
    """Small ints: the value is the id, missing or outside 0..max_value -> max_value + 1.
    Strings: vocabulary ids, rare and unseen values share the OOV buckets."""
    name = features.transformed_name(feature.name)
    if feature.max_value:
        valid = present & (value >= 0) & (value <= feature.max_value)
        return {name: tf.where(valid, value, tf.constant(feature.max_value + 1, tf.int64))}
    return {name: analysis["lookup"](value)}  # missing rows hold "", counted so in the vocabulary


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


def _categorical_edge_analysis(feature: FeatureConfig, constants: Mapping[str, np.ndarray],
                               tf_transform_output: Any) -> Analysis:
    if feature.max_value:
        return {}
    tokens = tf_transform_output.vocabulary_by_name(features.vocabulary_name(feature.name))
    return {"lookup": ConstantVocabulary(tokens, feature.oov_buckets, name=f"vocab_{feature.name}")}


def _row_kind_analyze(feature: FeatureConfig, column: Any) -> Analysis:
    raise ValueError(f"feature {feature.name!r}: kind {feature.kind!r} reads several columns; "
                     "preprocessing_fn runs it through text_features.ROW_KINDS")


# --- bucketized: quantile buckets, missing gets its own id --------------------

def _bucket_epsilon(num_buckets: int) -> float:
    return min(1.0 / num_buckets, 0.01)  # tft.bucketize's default error tolerance


def _bucketized_prepare(feature: FeatureConfig, values: tf.Tensor) -> tf.Tensor:
    return tf.cast(values, tf.float32)


def _bucketized_analyze(feature: FeatureConfig, column: Any) -> Analysis:
    values = column.values if isinstance(column, tf.SparseTensor) else column
    return {"boundaries": tft.quantiles(values, feature.buckets, _bucket_epsilon(feature.buckets))}


def _bucketized_apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
                      analysis: Analysis) -> Dict[str, tf.Tensor]:
    """``tft.apply_buckets`` as plain comparisons (it uses searchsorted, which
    neither TFLite builtins nor TF.js run): the bucket is the number of
    boundaries below the value, the last boundary ignored as TFT does."""
    boundaries = tf.reshape(tf.cast(analysis["boundaries"], tf.float32), [-1])[:-1]
    below = tf.cast(tf.expand_dims(boundaries, 0) < tf.expand_dims(value, 1), tf.int64)
    ids = tf.reduce_sum(below, axis=1)
    return {features.transformed_name(feature.name):
            tf.where(present, ids, tf.constant(feature.buckets, tf.int64))}


# --- timestamp: calendar parts (UTC) of epoch seconds -------------------------

def _timestamp_prepare(feature: FeatureConfig, values: tf.Tensor) -> tf.Tensor:
    return tf.cast(values, tf.int64)


def _timestamp_apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
                     analysis: Analysis) -> Dict[str, tf.Tensor]:
    """Calendar parts as small integer ids; missing reads as 0 (1970-01-01 00:00).

    The arithmetic is int32 (TFLite has no int64 division; TF.js has no int64
    at all), on seconds clamped to the int32 range: 1901-12-13 .. 2038-01-19.
    """
    clamped = tf.clip_by_value(value, tf.constant(_INT32_MIN, tf.int64), tf.constant(_INT32_MAX, tf.int64))
    seconds = tf.cast(clamped, tf.int32)
    days = tf.math.floordiv(seconds, _SECONDS_PER_DAY)
    parts = {
        "hour": lambda: tf.math.floormod(tf.math.floordiv(seconds, _SECONDS_PER_HOUR), 24),
        "weekday": lambda: tf.math.floormod(days + 3, 7),  # 1970-01-01 was a Thursday; Monday = 0
        "month": lambda: month_from_days(days) - 1,
    }
    return {features.transformed_name(f"{feature.name}_{part}"): tf.cast(parts[part](), tf.int64)
            for part in feature.parts}


def month_from_days(days: tf.Tensor) -> tf.Tensor:
    """Month 1..12 of days since 1970-01-01 (Hinnant's civil-from-days, graph-only ops)."""
    z = days + 719468
    era = tf.math.floordiv(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    return tf.where(mp < 10, mp + 3, mp - 9)


KINDS: Dict[str, Union[FeatureKind, TransformOnly]] = {
    "numeric": FeatureKind(_numeric_prepare, _numeric_analyze, _numeric_apply),
    "categorical": FeatureKind(_categorical_prepare, _categorical_analyze, _categorical_apply,
                               _categorical_edge_analysis),
    "bucketized": FeatureKind(_bucketized_prepare, _bucketized_analyze, _bucketized_apply),
    "timestamp": FeatureKind(_timestamp_prepare, _no_analysis, _timestamp_apply),
    "text": FeatureKind(text_features.text_prepare, text_features.vocabulary_analyze,
                        text_features.vocabulary_apply, _categorical_edge_analysis,
                        column=text_features.text_column, ascii_lowercase_input=True),
    "multi_categorical": FeatureKind(text_features.multi_prepare, text_features.vocabulary_analyze,
                                     text_features.vocabulary_apply, _categorical_edge_analysis,
                                     column=text_features.multi_column, ascii_lowercase_input=True),
    # Transform runs text_features.label_prior (it reads several columns and the label);
    # the edge runs prepare/apply on the source column with the full training counts.
    "label_prior": FeatureKind(text_features.label_prior_prepare, _row_kind_analyze,
                               text_features.label_prior_apply, text_features.label_prior_edge_analysis),
}


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
