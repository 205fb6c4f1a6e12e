"""trainer.feature_dropout: a fixed share of training rows sees features as missing."""
import numpy as np
import tensorflow as tf

from trainer import feature_dropout


def test_feature_dropout_blanks_a_fixed_share_with_missing_values():
    feats = {"statement_xf": tf.ones([1000, 5], tf.int64), "party_xf": tf.fill([1000], tf.constant(2, tf.int64)),
             "prior_xf": tf.ones([1000, 6])}
    missing = {"party_xf": tf.constant([7], tf.int64), "prior_xf": tf.fill([1, 6], 0.5)}
    ds = tf.data.Dataset.from_tensors((feats, tf.zeros([1000], tf.int64)))

    def run():
        out = feature_dropout.apply_dropout(ds, ["party_xf", "prior_xf"], missing, 0.3, seed=42)
        return next(iter(out))[0]

    first, second = run(), run()
    dropped = first["party_xf"].numpy() == 7
    assert 0.25 < dropped.mean() < 0.35
    np.testing.assert_array_equal(dropped, second["party_xf"].numpy() == 7)  # seeded
    np.testing.assert_array_equal(first["prior_xf"].numpy()[dropped], 0.5)  # same rows, every key
    np.testing.assert_array_equal(first["prior_xf"].numpy()[~dropped], 1.0)
    np.testing.assert_array_equal(first["statement_xf"].numpy(), 1)  # kept
