"""The trainer tests' shared input: a real Transform output of the taxi fixture rows."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from common import executor_config
from tests.conftest import ROWS
from trainer import features, preprocessing


@pytest.fixture(scope="module")
def transform_output(taxi_config, tmp_path_factory):
    """Analyze + transform ROWS with tft_beam and write the transform graph."""
    out = str(tmp_path_factory.mktemp("transform"))
    spec = features.raw_feature_spec(taxi_config)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    fn = lambda inputs: preprocessing.preprocessing_fn(inputs, executor_config.transform(taxi_config))  # noqa: E731
    with tft_beam.Context(temp_dir=os.path.join(out, "tmp"), force_tf_compat_v1=False):
        (rows, _), transform_fn = ((ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            fn, output_record_batches=False))
        _ = transform_fn | tft_beam.WriteTransformFn(out)
    return tft.TFTransformOutput(out), rows


def write_transformed(rows, spec, path):
    """Transformed rows as the gzipped tf.Examples Transform writes."""
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for row in rows:
            feature = {}
            for key, value in row.items():
                values = np.asarray(value).reshape(-1)
                if spec[key].dtype == tf.int64:
                    feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))
                else:
                    feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
