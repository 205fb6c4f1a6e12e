"""The accepted history of a config, and which of its columns are monitored."""
import os

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from common.loader import load_config
from common.paths import REPO_ROOT
from monitoring.history import load_history, monitored_features

TAXI_FEATURES = ("fare", "trip_miles", "trip_seconds", "payment_type", "company",
                 "trip_start_hour", "trip_start_day", "trip_start_month",
                 "pickup_community_area", "dropoff_community_area", "pickup_latitude",
                 "pickup_longitude", "dropoff_latitude", "dropoff_longitude")


def _schema(config):
    return tfdv.load_schema_text(config.schema_path)


def test_taxi_monitors_every_model_column_but_the_timestamp(taxi_config):
    assert monitored_features(taxi_config, _schema(taxi_config)) == TAXI_FEATURES


def test_taxi_history_is_the_whole_csv_typed_by_the_schema(taxi_config):
    history = load_history(taxi_config, _schema(taxi_config), TAXI_FEATURES)
    assert history.shape == (15002, len(TAXI_FEATURES))
    assert str(history["trip_seconds"].dtype) == "Int64" and history["trip_seconds"].isna().any()
    assert str(history["fare"].dtype) == "float64"
    assert history["payment_type"].map(type).eq(str).all()
    assert history["company"].isna().mean() == pytest.approx(0.3426, abs=1e-4)


def test_liar_monitors_its_categorical_columns_once_each():
    """speaker feeds two features (vocabulary and label prior); text and multi-valued kinds are skipped."""
    config = load_config(os.path.join(REPO_ROOT, "configs", "liar.yaml"), require_data=False)
    assert monitored_features(config, _schema(config)) == ("speaker", "state", "party")


def test_a_tsv_history_is_its_train_file_with_empty_fields_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("LIAR_DIR", raising=False)
    line = "1.json\tfalse\tSays \"x\".\ta,b\t{speaker}\tjob\t{state}\tdemocrat\t0\t1\t2\t3\t4\tctx\n"
    (tmp_path / "train.tsv").write_text(line.format(speaker="ann", state="")
                                        + line.format(speaker=" bob ", state="Ohio"))
    (tmp_path / "valid.tsv").write_text(line.format(speaker="cy", state="Ohio"))
    config = load_config(os.path.join(REPO_ROOT, "configs", "liar.yaml"),
                         [f"data.path={tmp_path}"], require_data=False)
    history = load_history(config, _schema(config), ("speaker", "state", "party"))
    assert history["speaker"].tolist() == ["ann", "bob"]
    assert pd.isna(history["state"][0]) and history["state"][1] == "Ohio"
