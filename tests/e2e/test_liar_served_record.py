"""Served = evaluated: LIAR's eval rows, sent through REST WITHOUT the claim-neighbour
record, score as the Evaluator scored the pipeline's eval examples (which carry the
record ClaimNeighbours made), to 1e-6 per row: the gateway makes the record from the
index pushed inside the version, with the pipeline's code.

Shares the sampled pipeline run (tests/e2e/conftest.py::liar_run).
"""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from common.serving_contract import OUTPUT_KEY, SERVING_SIGNATURE, TF_EXAMPLE_SIGNATURE
from pipeline.results import collect
from pipeline.run_paths import local_paths
from serving.claim_records import ClaimRecords, index_dir
from tests.e2e.conftest import EVAL_ROWS, predict_through_gateway

# one worker runs every LIAR e2e file, so the session-scoped sampled run (conftest.liar_run) is made once
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("liar_run")]

TOLERANCE = 1e-6


def _eval_examples(cfg):
    """The eval split as the Evaluator read it: ClaimNeighbours' output, record included."""
    pattern = os.path.join(local_paths(cfg).root, "pipeline_root", "ClaimNeighbours", "enriched", "*",
                           "Split-eval", "*.gz")
    files = glob.glob(pattern)
    assert files, pattern
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _request_row(record: bytes, separators, leave_out: str):
    """A REST instance of an example's serving inputs: one value per feature (a multi-valued
    column's values joined by its separator, as a client sends "economy,jobs"); features the
    example lacks are left out."""
    row = {}
    for name, feature in tf.train.Example.FromString(record).features.feature.items():
        if name not in separators or name == leave_out:
            continue
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        if kind == "bytes_list" and values:
            row[name] = separators[name].join(v.decode("utf-8") for v in values)
        elif values:
            row[name] = values[0]
    return row


def _without(record: bytes, column: str) -> bytes:
    example = tf.train.Example.FromString(record)
    del example.features.feature[column]
    return example.SerializeToString()


def test_rest_rows_without_the_record_score_as_the_evaluator_scored(liar_run):
    cfg, code = liar_run
    assert code == 0
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert result.pushed, result.blessing_failures
    model_dir, column = result.pushed_to, cfg.claim_neighbours.column
    assert os.path.isfile(os.path.join(index_dir(model_dir), "index.npz")), "the index was not pushed"

    records = _eval_examples(cfg)
    assert len(records) == EVAL_ROWS
    model = tf.saved_model.load(model_dir)
    # what the Evaluator computed: the tf.Example signature (components/evaluation.py) on its examples
    evaluated = model.signatures[TF_EXAMPLE_SIGNATURE](examples=tf.constant(records))[OUTPUT_KEY].numpy()
    unrecorded = model.signatures[TF_EXAMPLE_SIGNATURE](
        examples=tf.constant([_without(r, column) for r in records]))[OUTPUT_KEY].numpy()
    # the record matters: without it some rows score differently (the test has teeth)
    assert np.abs(unrecorded - evaluated).max() > 1e-3

    # the pushed index gives each statement the record the pipeline wrote
    statements = [tf.train.Example.FromString(r).features.feature["statement"].bytes_list.value[0].decode()
                  for r in records]
    written = [tf.train.Example.FromString(r).features.feature[column].bytes_list.value for r in records]
    made = ClaimRecords.for_version(model_dir).values(statements)
    assert made == [v[0].decode() if v else None for v in written]

    inputs = set(model.signatures[SERVING_SIGNATURE].structured_input_signature[1])
    separators = {f.column: f.separator or "," for f in cfg.features if f.column in inputs}
    assert set(separators) == inputs
    instances = [_request_row(r, separators, leave_out=column) for r in records]
    assert all(column not in row and row.get("statement") for row in instances)
    served = np.array(predict_through_gateway(cfg, instances, timeout_s=300))
    assert served.shape == evaluated.shape
    worst = int(np.argmax(np.abs(served - evaluated).max(axis=1)))
    assert np.abs(served[worst] - evaluated[worst]).max() <= TOLERANCE, (
        f"row {worst} {instances[worst]}: REST {served[worst]} vs evaluated {evaluated[worst]}")
