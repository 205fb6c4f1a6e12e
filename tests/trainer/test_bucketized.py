"""``bucketized`` at the edge: buckets by comparisons, as TFT assigns them."""
import numpy as np
import tensorflow as tf
from tensorflow_transform import tf_utils

from common.config import FeatureConfig
from trainer.kinds import bucketized


def test_bucketize_by_comparisons_equals_tft_assign_buckets():
    boundaries = np.array([[-1.0, 0.0, 0.5, 2.0, 7.0]], np.float32)
    values = np.array([-5.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0, 6.9, 7.0, 9.0], np.float32)
    feature = FeatureConfig(name="x", kind="bucketized", dtype="float", buckets=6)
    got = bucketized.KIND.apply(feature, tf.constant(values), tf.fill([len(values)], True),
                                {"boundaries": boundaries})
    want = tf_utils.assign_buckets(tf.constant(values), tf.constant(boundaries))
    np.testing.assert_array_equal(list(got.values())[0].numpy(), want.numpy())
