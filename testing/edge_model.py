"""A tiny taxi model trained in-process and exported with its edge files.

Shared by the edge differential tests and ``bench/edge_bench.py``: real taxi
CSV rows (the CSV inside the tfx package), Transform through tft_beam, a few
Keras epochs, then ``components.trainer_run.export_model`` (the SavedModel and its edge files,
as the Trainer writes them).
"""
from __future__ import annotations

import csv
import os
import time
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from common import executor_config
from common.config import PipelineConfig
from common.paths import taxi_data_dir
from components.trainer_run import export_model
from edge import runtime
from edge.signature import read_signature
from trainer import edge_graph, features, preprocessing
from trainer.model import HyperParameters
from trainer.train import build_for

_ZERO = {"float": 0.0, "int": 0, "string": ""}
RawRow = Dict[str, Optional[object]]


def read_taxi_csv(cfg: PipelineConfig, start: int, count: int) -> List[RawRow]:
    """Raw taxi rows typed per the config; an empty CSV field is None (missing)."""
    dtypes = dict(features.serving_feature_dtypes(cfg), **{c: "float" for c in features.label_source_columns(cfg)})
    parse = {"float": float, "int": lambda s: int(float(s)), "string": str}
    with open(os.path.join(taxi_data_dir(), "data.csv"), newline="") as f:
        rows = list(csv.DictReader(f))[start:start + count]
    return [{name: parse[dtype](row[name]) if row[name] != "" else None for name, dtype in dtypes.items()}
            for row in rows]


def serving_rows(cfg: PipelineConfig, rows: List[RawRow]) -> List[Dict[str, object]]:
    """What a serving_default client sends: every feature, a missing one as its dtype's zero value."""
    return [{name: _ZERO[dtype] if row[name] is None else row[name]
             for name, dtype in features.serving_feature_dtypes(cfg).items()} for row in rows]


def _instances(rows: List[RawRow]):
    """tft_beam instance dicts: VarLen lists, empty when missing."""
    return [{k: [] if v is None else [v.encode() if isinstance(v, str) else v] for k, v in row.items()}
            for row in rows]


def train_and_export(cfg: PipelineConfig, root: str, train_rows: int = 2000, epochs: int = 3):
    """(model dir, Transform output, raw training rows, export seconds) under ``root``."""
    raw = read_taxi_csv(cfg, 0, train_rows)
    model_dir, tft_output, seconds = train_and_export_instances(cfg, root, _instances(raw), epochs)
    return model_dir, tft_output, raw, seconds


def train_and_export_instances(cfg: PipelineConfig, root: str, instances, epochs: int = 3):
    """(model dir, Transform output, export seconds): tft_beam instance dicts (VarLen
    lists per column) through Transform, a few Keras epochs, ``export_model``."""
    spec = features.raw_feature_spec(cfg)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    fn = lambda inputs: preprocessing.preprocessing_fn(inputs, executor_config.transform(cfg))  # noqa: E731
    transform_dir = os.path.join(root, "transform")
    with tft_beam.Context(temp_dir=os.path.join(root, "tmp"), force_tf_compat_v1=False):
        (transformed, _), transform_fn = ((instances, metadata)
                                          | tft_beam.AnalyzeAndTransformDataset(fn, output_record_batches=False))
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    tft_output = tft.TFTransformOutput(transform_dir)
    tf.keras.utils.set_random_seed(cfg.trainer.seed)
    model = build_for(cfg, tft_output, HyperParameters.from_trainer_config(cfg.trainer))
    label = features.transformed_label_name(cfg)
    x = {k: np.array([r[k] for r in transformed]) for k in model.input_names}
    model.fit(x, np.array([r[label] for r in transformed]), epochs=epochs, batch_size=128, verbose=0)
    model_dir = os.path.join(root, "model")
    start = time.perf_counter()
    export_model(model, tft_output, cfg, model_dir)
    return model_dir, tft_output, time.perf_counter() - start


def assert_edge_transform_matches(cfg: PipelineConfig, model_dir: str, tft_output, rows) -> Dict[str, tf.Tensor]:
    """Checks that the edge graph's transformed features equal the Transform graph's for the
    same serving rows (ids exactly, floats within 1e-6); returns the edge features.

    The edge side gets the rows as an edge caller sends them (``edge=True``: e.g.
    ASCII lower-cased text); the Transform side gets them as one-value sparse
    columns, the way ``transform_features_layer`` parses a tf.Example.
    """
    signature = read_signature(model_dir)
    raw = {k: tf.constant(v) for k, v in runtime.columns(rows, signature).items()}
    edge_raw = {k: tf.constant(v) for k, v in runtime.columns(rows, signature, edge=True).items()}
    n = len(rows)
    index = tf.stack([tf.range(n, dtype=tf.int64), tf.zeros([n], tf.int64)], 1)
    as_sparse = {k: tf.SparseTensor(index, v, [n, 1]) for k, v in raw.items()}
    expected = tft_output.transform_features_layer()(as_sparse)
    got = edge_graph.edge_transform(cfg, edge_graph.edge_analyses(cfg, tft_output), edge_raw)
    assert set(got) == set(expected) - {features.transformed_label_name(cfg)}
    for key, value in got.items():
        if value.dtype.is_integer:
            np.testing.assert_array_equal(value.numpy(), expected[key].numpy(), err_msg=key)
        else:
            np.testing.assert_allclose(value.numpy(), expected[key].numpy(), atol=1e-6, err_msg=key)
    return got
