"""Kinds whose rows are bags of tokens (``text``, ``multi_categorical``): vocabulary ids, padded.

Such a kind differs from another only in how its raw column becomes one string
per row (``column``, Transform only), how that string is cleaned (``prepare``)
and how it is cut into tokens (``tokenize``); the vocabulary, the lookup and
the padded [batch, max_tokens] ids are shared here.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Tuple

import tensorflow as tf

from common.config import FeatureConfig
from trainer.kinds import vocabulary
from trainer.kinds.base import Analysis, FeatureKind, ModelInput
from trainer.kinds.strings import first_value, padded_ids
from trainer.names import transformed_name

# (feature, prepared [batch] strings) -> flat (tokens, row, position), as strings.tokens returns them
Tokenize = Callable[[FeatureConfig, tf.Tensor], Tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


def token_bag_kind(*, column: Callable[[FeatureConfig, Any], tf.Tensor],
                   prepare: Callable[[FeatureConfig, tf.Tensor], tf.Tensor], tokenize: Tokenize) -> FeatureKind:
    """The ``FeatureKind`` of a token-bag kind; its edge input arrives ASCII lower-cased."""

    def analyze(feature: FeatureConfig, prepared: Any) -> Analysis:
        """The capped vocabulary of the tokens and its file-backed lookup (the edge
        rebuilds it from constants: ``vocabulary.constant_lookup``)."""
        flat, _, _ = tokenize(feature, first_value(prepared))
        return vocabulary.file_lookup(feature, flat)

    def apply(feature: FeatureConfig, prepared: tf.Tensor, present: tf.Tensor,
              analysis: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
        """[batch, max_tokens] ids of the tokens (missing = "" = no tokens = all padding)."""
        flat, row, position = tokenize(feature, prepared)
        # One extra key: TF.js's table lookup fails on zero keys (a batch without tokens).
        ids = analysis["lookup"](tf.concat([flat, tf.constant([""])], axis=0))[:-1]
        batch = tf.shape(prepared, out_type=tf.int64)[0]
        return {transformed_name(feature.name): padded_ids(ids, row, position, batch, feature.max_tokens)}

    return FeatureKind(prepare=prepare, analyze=analyze, apply=apply, model_inputs=model_inputs,
                       edge_analysis=vocabulary.constant_lookup, uses_vocabulary=vocabulary.always,
                       column=column, ascii_lowercase_input=True)


def model_inputs(feature: FeatureConfig, vocabulary_sizes: Mapping[str, int],
                 label_classes: int) -> List[ModelInput]:
    """Ids + 1 (0 = padding), then the OOV buckets; ``max_tokens`` per row."""
    size = vocabulary_sizes[feature.name] + feature.oov_buckets + 1
    return [ModelInput(transformed_name(feature.name), size, feature.name, length=feature.max_tokens)]
