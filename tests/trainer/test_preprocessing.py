"""preprocessing_fn through tft_beam on a few in-memory rows (taxi, LIAR), outputs checked."""
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from common import executor_config
from common.loader import load_config
from components.tsv_example_gen import parse_line
from testing import liar_fixture
from testing.liar_fixture import LIAR_CONFIG, fixture_overrides
from tests.conftest import ROWS
from trainer import features, preprocessing


def _run(cfg, rows=ROWS):
    spec = features.raw_feature_spec(cfg)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    fn = lambda inputs: preprocessing.preprocessing_fn(inputs, executor_config.transform(cfg))  # noqa: E731
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(), force_tf_compat_v1=False):
        (out, _), _ = ((rows, metadata) | tft_beam.AnalyzeAndTransformDataset(fn, output_record_batches=False))
    return out


@pytest.fixture(scope="module")
def transformed(taxi_config):
    return _run(taxi_config)


def test_label_is_big_tipper(transformed):
    # tips > 0.2 * fare: 0 > 2 no; 5 > 4 yes; 1 > 6 no.
    assert [r["big_tipper_xf"] for r in transformed] == [0, 1, 0]


def test_numeric_is_z_scored_with_missing_indicator(transformed):
    secs = np.array([r["trip_seconds_xf"] for r in transformed])
    missing = [r["trip_seconds_missing_xf"] for r in transformed]
    assert missing == [0.0, 1.0, 0.0]
    assert abs(secs.mean()) < 1e-5
    # the missing row is imputed with the mean, so its z-score is the centre
    assert abs(secs[1]) < 1e-5 and secs[0] < 0 < secs[2]
    fares = [r["fare_xf"] for r in transformed]
    assert fares[0] < fares[1] < fares[2]


def test_categorical_vocabulary_and_oov(transformed, taxi_config):
    ids = [r["payment_type_xf"] for r in transformed]
    # payment_type has frequency_threshold 1: both values in the vocabulary, most frequent first
    assert ids == [1, 0, 0]
    # company needs 5 occurrences: every value falls in the single OOV bucket (id = vocab size)
    assert len({r["company_xf"] for r in transformed}) == 1


def test_small_ints_are_ids_without_a_vocabulary(transformed):
    assert [r["trip_start_hour_xf"] for r in transformed] == [5, 23, 0]
    # pickup_community_area is missing in the second row: id max_value + 1
    assert [r["pickup_community_area_xf"] for r in transformed] == [8, 78, 8]


def test_bucketized_missing_gets_its_own_bucket(transformed):
    ids = [r["pickup_latitude_xf"] for r in transformed]
    assert ids[2] == 10 and all(0 <= i < 10 for i in ids[:2])


def test_timestamp_parts(transformed):
    # 1400269500 = 2014-05-16 19:45 UTC (a Friday)
    first = transformed[0]
    assert first["trip_start_timestamp_hour_xf"] == 19
    assert first["trip_start_timestamp_weekday_xf"] == 4
    assert first["trip_start_timestamp_month_xf"] == 4


@pytest.fixture(scope="module")
def liar_transformed(tmp_path_factory):
    directory = liar_fixture.write_fixture(str(tmp_path_factory.mktemp("liar")), train_rows=40)
    cfg = load_config(LIAR_CONFIG, fixture_overrides(directory))
    spec = features.raw_feature_spec(cfg)
    rows = []
    for line in liar_fixture.TRICKY + liar_fixture.rows(40):
        parsed = tf.io.parse_single_example(parse_line("\t".join(line), cfg.data.columns, "x").SerializeToString(),
                                            spec)
        rows.append({k: v.values.numpy().tolist() for k, v in parsed.items()})
    return cfg, _run(cfg, rows)


def test_preprocessing_fn_outputs_for_liar(liar_transformed):
    cfg, out = liar_transformed
    assert [r["truth_xf"] for r in out[:3]] == [5, 1, 3]  # true, false, half-true: six-way ids
    first = out[0]
    assert first["statement_xf"].shape == (64,) and first["subjects_xf"].shape == (8,)
    assert (first["subjects_xf"][:2] > 0).all() and (first["subjects_xf"][2:] == 0).all()
    assert (out[1]["job_xf"] == 0).all()  # empty job: an empty bag
    assert first["speaker_record_xf"].shape == (6,)
    assert abs(first["speaker_record_xf"].sum() - 1) < 1e-5


def test_binary_fold_label(tmp_path):
    directory = liar_fixture.write_fixture(str(tmp_path))
    cfg = load_config(LIAR_CONFIG, fixture_overrides(directory) + ["label.fold_to_binary=true"])
    label = preprocessing.make_label(cfg.label, {"label": tf.constant(
        ["pants-fire", "false", "barely-true", "half-true", "mostly-true", "true"])})
    assert label.numpy().tolist() == [0, 0, 0, 1, 1, 1]
