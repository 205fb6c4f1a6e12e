"""String ops shared by the text-like kinds: normalisation, ASCII lower-casing as the
edge caller does it, padded ids."""
import tensorflow as tf

from edge import runtime
from trainer.kinds import strings


def test_normalize_lowercases_and_strips_punctuation():
    out = strings.normalize(tf.constant(['Says "We CUT taxes by 5%," don\'t we?', "  "]))
    assert [s.decode() for s in out.numpy()] == ["says we cut taxes by 5% dont we", ""]


def test_the_typographic_apostrophe_is_the_ascii_one():
    """Pages write don\u2019t; training rows mostly don't. Both are one word, and the edge
    caller's preparation (runtime.ascii_lower, scorer.js) folds it the same way."""
    out = strings.normalize(tf.constant(["Don\u2019t STOP", "don't stop"]))
    assert [s.decode() for s in out.numpy()] == ["dont stop", "dont stop"]
    caller = runtime.ascii_lower("Don\u2019t STOP \u00c9t\u00e9")
    assert caller == "don't stop \u00c9t\u00e9"
    transform = strings.ascii_lower(tf.constant(["Don\u2019t STOP \u00c9t\u00e9"]))
    assert transform.numpy()[0].decode() == caller


def test_lowercasing_is_ascii_only_as_at_the_edge():
    """Transform lower-cases A-Z only: what scorer.js does before the TF.js model."""
    out = strings.ascii_lower(tf.constant(["ÉCOLE Kelvin \u212a İ"]))
    assert out.numpy()[0].decode() == "École kelvin \u212a İ"


def test_padded_ids_shift_by_one_and_truncate():
    ids = tf.constant([0, 4, 2, 9, 1], tf.int64)
    row = tf.constant([0, 0, 0, 0, 2], tf.int64)
    position = tf.constant([0, 1, 2, 3, 0], tf.int64)
    out = strings.padded_ids(ids, row, position, tf.constant(3, tf.int64), 3).numpy()
    assert out.tolist() == [[1, 5, 3], [0, 0, 0], [2, 0, 0]]
