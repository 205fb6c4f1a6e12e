"""``multi_categorical``: several values per row (also inside one value, split on the
separator), vocabulary ids, padded (a token bag)."""
from __future__ import annotations

from typing import Any, Tuple

import tensorflow as tf

from common.config import FeatureConfig
from trainer.kinds.strings import SPACE, all_values, ascii_lower, strip, tokens
from trainer.kinds.token_bag import token_bag_kind


def column(feature: FeatureConfig, x: Any) -> tf.Tensor:
    """Transform only: a row's values joined by the separator, ASCII lower-cased."""
    return ascii_lower(all_values(x, feature.separator))


def prepare(feature: FeatureConfig, text: tf.Tensor) -> tf.Tensor:
    """Blanks around the separators and at the ends removed (each value stripped)."""
    try:
        separator = _regex_literal(feature.separator)
    except ValueError as err:
        raise ValueError(f"feature {feature.name!r}: {err}") from None
    text = tf.strings.regex_replace(text, f"{SPACE}*{separator}{SPACE}*", feature.separator)
    return strip(text)


def _regex_literal(text: str) -> str:
    """``text`` as an RE2 and JavaScript regex literal; refuses upper-case letters (the
    TF.js converter lower-cases patterns, so they would not match there)."""
    if text != text.lower() or not text.isascii():
        raise ValueError(f"separator {text!r}: expected ASCII without upper-case letters "
                         "(TF.js lower-cases regex patterns and reads them as Latin-1)")
    return "".join(c if c.isalnum() else "\\" + c if c in "\\^$.|?*+()[]{}-/" else c for c in text)


def tokenize(feature: FeatureConfig, prepared: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The values, split on the separator."""
    return tokens(prepared, feature.separator)


KIND = token_bag_kind(column=column, prepare=prepare, tokenize=tokenize)
