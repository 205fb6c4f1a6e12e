"""Token-bag kinds (``text``, ``multi_categorical``): tokens and n-grams, multi-valued values."""
import pytest
import tensorflow as tf

from common.config import FeatureConfig
from trainer.kinds import multi_categorical, text

TEXT = FeatureConfig("statement", "text", "string", ngrams=(1, 2), max_tokens=6)
MULTI = FeatureConfig("subjects", "multi_categorical", "string", max_tokens=3)


def _token_rows(feature, column, kind):
    """Each row's tokens in position order, via the kind's column, prepare and tokenize steps."""
    prepared = kind.prepare(feature, kind.column(feature, column))
    flat, row, position = kind.tokenize(feature, prepared)
    out = [[] for _ in range(int(tf.shape(prepared)[0]))]
    for token, r, p in sorted(zip(flat.numpy(), row.numpy(), position.numpy()), key=lambda t: (t[1], t[2])):
        assert p == len(out[r]), "positions are dense from 0"
        out[r].append(token.decode())
    return out


def test_tokens_with_bigrams_and_missing_text():
    x = tf.SparseTensor([[0, 0], [2, 0]], tf.constant(["Tax cuts work.", "Jobs!"]), [3, 1])
    assert _token_rows(TEXT, x, text) == [
        ["tax", "cuts", "work", "tax cuts", "cuts work"], [], ["jobs"]]


def test_multi_values_split_inside_values_and_drop_blanks():
    x = tf.SparseTensor([[0, 0], [0, 1], [1, 0]], tf.constant(["Economy, jobs", "taxes", " ,"]), [3, 2])
    assert _token_rows(MULTI, x, multi_categorical) == [
        ["economy", "jobs", "taxes"], [], []]


def test_upper_case_separator_fails_naming_the_feature():
    feature = FeatureConfig(name="tags", kind="multi_categorical", dtype="string", separator="X")
    with pytest.raises(ValueError, match="feature 'tags': separator 'X'"):
        multi_categorical.prepare(feature, tf.constant(["aXb"]))
    feature = FeatureConfig(name="tags", kind="multi_categorical", dtype="string", separator="\u00b7")
    with pytest.raises(ValueError, match="feature 'tags': separator .*expected ASCII"):
        multi_categorical.prepare(feature, tf.constant(["a\u00b7b"]))
