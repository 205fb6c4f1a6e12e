"""``text``: lower-cased words and word n-grams, vocabulary ids, padded (a token bag)."""
from __future__ import annotations

from typing import Any, Tuple

import tensorflow as tf

from common.config import FeatureConfig
from trainer.kinds.strings import ascii_lower, first_value, normalize_lowered, tokens
from trainer.kinds.token_bag import token_bag_kind


def column(feature: FeatureConfig, x: Any) -> tf.Tensor:
    """Transform only: a row's first value, ASCII lower-cased (the edge caller's job)."""
    return ascii_lower(first_value(x))


def prepare(feature: FeatureConfig, text: tf.Tensor) -> tf.Tensor:
    return normalize_lowered(text)


def tokenize(feature: FeatureConfig, prepared: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Words split on spaces, then the word n-grams of ``feature.ngrams``."""
    return tokens(prepared, " ", feature.ngrams)


KIND = token_bag_kind(column=column, prepare=prepare, tokenize=tokenize)
