"""components.error_analysis: the binary fold's calibration, and the split streamed in batches."""
import os

import numpy as np

from common.loader import load_config
from components.error_analysis import analyse
from testing.liar_fixture import LIAR_CONFIG


def test_error_analysis_reports_the_calibration_of_the_binary_fold():
    liar_cfg = load_config(LIAR_CONFIG, require_data=False)  # six classes, half-true and above positive
    probabilities = np.array([[0.1, 0.1, 0.1, 0.3, 0.2, 0.2], [0.4, 0.3, 0.1, 0.1, 0.05, 0.05]])
    result = analyse(liar_cfg, probabilities, np.array([4, 0]))
    filled = [b for b in result["calibration"]["bins"] if b["examples"]]
    assert [(round(b["mean_predicted"], 6), b["positive_share"]) for b in filled] == [(0.2, 0.0), (0.7, 1.0)]


# -- streaming: the split is read, scored and dropped one batch at a time ----------------

def _record(fare, label):
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        "fare": tf.train.Feature(float_list=tf.train.FloatList(value=[fare])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))})).SerializeToString()


def _signatures():
    """Real TF functions with the served signatures' calling convention (``examples=``)."""
    import tensorflow as tf

    from common.serving_contract import OUTPUT_KEY

    spec = {"fare": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
            "label": tf.io.FixedLenFeature([1], tf.int64, default_value=[0])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(examples):
        p = tf.sigmoid(tf.io.parse_example(examples, spec)["fare"] - 10.0)
        return {OUTPUT_KEY: tf.concat([1 - p, p], axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def transform(examples):
        return {"label": tf.io.parse_example(examples, spec)["label"]}

    return serve, transform


def test_split_outputs_streamed_in_batches_equal_the_whole_split():
    from components.error_analysis import split_outputs

    records = [_record(float(fare), int(fare > 10)) for fare in range(20)]
    serve, transform = _signatures()
    whole = split_outputs(serve, transform, [records], "label", {"label"})
    streamed = split_outputs(serve, transform, (records[i:i + 3] for i in range(0, 20, 3)), "label", {"label"})
    for a, b in zip(whole, streamed):
        np.testing.assert_allclose(a, b)
    probabilities, labels, reduced = streamed
    assert labels.tolist() == [int(f > 10) for f in range(20)] and probabilities.shape == (20, 2)
    np.testing.assert_allclose(reduced[:, 1], 1 / (1 + np.exp(10.0)), rtol=1e-5)  # no fare: fare 0
    empty = split_outputs(serve, transform, [], "label")
    assert empty[0].shape == (0, 1) and empty[1].shape == (0,) and empty[2] is None


def test_raw_examples_come_in_batches_of_the_split(tmp_path):
    import tensorflow as tf
    from tfx.types import artifact_utils, standard_artifacts

    from components import raw_examples

    os.makedirs(tmp_path / "Split-eval")
    with tf.io.TFRecordWriter(str(tmp_path / "Split-eval" / "data.gz"), options="GZIP") as w:
        for fare in range(10):
            w.write(_record(float(fare), 0))
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path)
    examples.split_names = artifact_utils.encode_split_names(["eval"])
    batches = raw_examples.batches(examples, "eval", 4)
    assert not isinstance(batches, list)  # a generator: nothing read before it is asked for
    sizes = [len(b) for b in batches]
    assert sizes == [4, 4, 2]
