"""The ``FeatureKind`` record every config ``kind`` fills in, and the helpers kinds share.

One source of truth for the feature math
----------------------------------------
Every feature ``kind`` of the config is a ``FeatureKind`` in
``trainer.kinds.registry.KINDS`` so that Transform (``trainer.preprocessing``)
and the edge graph (``trainer.edge_graph``, converted to TFLite and TF.js by
``edge.convert``) run the very same code:

* ``prepare(feature, values)``: elementwise pure TF on the raw values (casts,
  ``log1p``, ints as strings). Runs on a (possibly sparse) column's values in
  Transform and on the dense serving inputs at the edge.
* ``analyze(feature, column)``: TF Transform analyzers over the prepared
  column (``tf.SparseTensor`` when values may be missing); returns the
  *analysis*, a dict of named results. Tensor results (means, variances,
  quantile boundaries) are named in the graph (``constant_node_name``) so the
  edge graph reads their values back from the Transform graph. Only called
  inside ``preprocessing_fn``.
* ``apply(feature, values, present, analysis)``: pure TF, no analyzers, no
  files: dense rank-1 prepared values (the dtype's zero value, 0 or "", where
  a value is missing), a boolean ``present`` mask (all true at serving time,
  one value per row) and the analysis -> transformed tensors. It must only
  use ops that TFLite builtins and TF.js run: no ParseExample, no
  file-initialized tables, no int64 division, no ``tf.where`` on strings.
* ``edge_analysis(feature, constants, tf_transform_output)``: rebuilds the
  analysis from the trained Transform output as constants; ``constants``
  holds the values of this feature's named tensor results. The default
  returns ``constants`` unchanged; a kind whose analysis is not a plain
  tensor (a vocabulary lookup) builds it here. ``None`` means the kind cannot
  be exported to the edge (the edge graph fails naming the feature; set
  ``serving.edge_exports: false`` for such a dataset).
* ``model_inputs(feature, vocabulary_sizes, label_classes)``: the transformed
  tensors the Keras model consumes (``ModelInput``), and
  ``uses_vocabulary(feature)``: whether Transform writes a vocabulary file.

Two optional fields serve kinds whose raw column needs work the edge runtimes
cannot do: ``column(feature, raw_column)`` runs in Transform only, before
``prepare``, and turns the raw column into one value per row the way an edge
caller must (joining a row's values, ASCII lower-casing: TF.js has no
ReduceJoin or StringLower); such a kind sets ``ascii_lowercase_input`` and the
edge signature marks its input so callers lower-case A-Z first
(``extension/scorer.js`` does). ``transform(feature, inputs, label)`` replaces
prepare/analyze/apply in Transform for a kind that reads several columns and
the label (``label_prior``); its ``prepare``/``apply`` are then the edge half.

A new kind is one module here defining a ``FeatureKind`` and one line in
``trainer.kinds.registry``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from common.config import FeatureConfig, LabelConfig

CONSTANT_PREFIX = "edge_constant__"

Analysis = Dict[str, Any]


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


def no_analysis(feature: FeatureConfig, column: Any) -> Analysis:
    """``analyze`` of a kind that needs no statistics of the data."""
    return {}


def constants_as_analysis(feature: FeatureConfig, constants: Mapping[str, np.ndarray],
                          tf_transform_output: Any) -> Analysis:
    """``edge_analysis`` of a kind whose analysis is plain tensors: their values as they are."""
    return dict(constants)


def no_vocabulary(feature: FeatureConfig) -> bool:
    return False


@dataclass(frozen=True, kw_only=True)
class FeatureKind:
    """How one config ``kind`` is prepared, analyzed, applied and fed to the model (module docstring)."""
    prepare: Callable[[FeatureConfig, tf.Tensor], tf.Tensor]
    apply: Callable[[FeatureConfig, tf.Tensor, tf.Tensor, Analysis], Dict[str, tf.Tensor]]
    model_inputs: Callable[[FeatureConfig, Mapping[str, int], int], List[ModelInput]]
    analyze: Callable[[FeatureConfig, Any], Analysis] = no_analysis
    edge_analysis: Optional[Callable[[FeatureConfig, Mapping[str, np.ndarray], Any], Analysis]] = \
        constants_as_analysis
    uses_vocabulary: Callable[[FeatureConfig], bool] = no_vocabulary
    # Transform only, before ``prepare``: the raw column -> one value per row, the
    # normalisation an edge caller does itself (joining values, lower-casing).
    column: Optional[Callable[[FeatureConfig, Any], tf.Tensor]] = None
    # The edge input must arrive ASCII lower-cased (recorded in edge_signature.json).
    ascii_lowercase_input: bool = False
    # Transform only, instead of prepare/analyze/apply: reads any raw columns and the label.
    transform: Optional[Callable[[FeatureConfig, Mapping[str, Any], LabelConfig], Dict[str, tf.Tensor]]] = None


def constant_node_name(feature_name: str, key: str) -> str:
    """The graph name of an analyzer result, read back by the edge graph.

    Characters TF does not allow in op names become ``_``; keys hold no ``__``.
    """
    return f"{CONSTANT_PREFIX}{re.sub(r'[^A-Za-z0-9_.-]', '_', feature_name)}__{key}"


def name_constants(feature: FeatureConfig, analysis: Analysis) -> Analysis:
    """The analysis with each tensor result named for the edge graph (``constant_node_name``)."""
    return {key: tf.identity(value, name=constant_node_name(feature.name, key))
            if isinstance(value, tf.Tensor) else value
            for key, value in analysis.items()}


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


def map_values(x: Any, fn: Callable[[tf.Tensor], tf.Tensor]) -> Any:
    """``fn`` applied to the values of a dense or sparse tensor."""
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, fn(x.values), x.dense_shape)
    return fn(x)
