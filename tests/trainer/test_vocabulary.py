"""The edge's constant vocabulary looks values up as Transform's text-file vocabulary does."""
import numpy as np
import pytest
import tensorflow as tf

from trainer.kinds.vocabulary import ConstantVocabulary


@pytest.mark.parametrize("num_oov_buckets", [1, 3])
def test_constant_vocabulary_equals_text_file_vocabulary(tmp_path, num_oov_buckets):
    tokens = [b"Cash", b"Credit Card", b"No Charge"]  # TFT drops empty tokens: "" is OOV
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"\n".join(tokens) + b"\n")
    file_table = tf.lookup.StaticVocabularyTable(  # what tft.apply_vocabulary builds
        tf.lookup.TextFileInitializer(str(path), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                      tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
        num_oov_buckets=num_oov_buckets)
    queries = tf.constant(tokens + [b"", b"Bitcoin", b"cash", b"Unseen Co", b"x" * 100])
    constant = ConstantVocabulary(tokens, num_oov_buckets)
    np.testing.assert_array_equal(constant(queries).numpy(), file_table.lookup(queries).numpy())
