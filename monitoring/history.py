"""The accepted history of a dataset config, and which of its features are monitored.

The reference a served span is compared with is the data the model was
trained on: every row of the config's data (taxi: the CSV inside tfx, both
hash splits; a TSV dataset: its ``train`` file), as the pipeline reads it.
"""
from __future__ import annotations

import csv
import glob
import os
from typing import List, Tuple

import pandas as pd
from tensorflow_metadata.proto.v0 import schema_pb2

from common.config import PipelineConfig
from monitoring.frames import schema_feature, typed_frame

# Feature kinds with no distribution a span can be compared on, and why.
UNMONITORED_KINDS = {
    "timestamp": "grows with time: every new span lies outside the history's range",
    "text": "free text: each value is near-unique, a value-count distance says nothing",
    "multi_categorical": "several values per row: pandas-built statistics take one value per row",
}


def monitored_features(config: PipelineConfig, schema: schema_pb2.Schema) -> Tuple[str, ...]:
    """The raw columns whose served distribution is compared with the history.

    Model features' columns in config order, once each (two features may read
    one column), except kinds in ``UNMONITORED_KINDS`` and columns the schema
    keeps out of the SERVING environment.
    """
    chosen: List[str] = []
    for feature in config.features:
        if feature.kind in UNMONITORED_KINDS or feature.column in chosen:
            continue
        in_schema = schema_feature(schema, feature.column)
        if "SERVING" in in_schema.not_in_environment:
            continue
        chosen.append(feature.column)
    if not chosen:
        raise ValueError(f"{config.source_file}: no feature to monitor (kinds skipped: "
                         f"{sorted(UNMONITORED_KINDS)})")
    return tuple(chosen)


def _read_csv(config: PipelineConfig) -> pd.DataFrame:
    files = sorted(glob.glob(os.path.join(config.data_path, "*.csv")))
    if not files:
        raise FileNotFoundError(f"{config.source_file}: data.path {config.data_path}: no *.csv file")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def _read_tsv(config: PipelineConfig) -> pd.DataFrame:
    """Headerless, tab-separated, quotes as ordinary characters, empty field = missing
    (as ``components.tsv_example_gen`` parses it)."""
    name = config.data.files.get("train")
    if not name:
        raise ValueError(f"{config.source_file}: data.files has no 'train' file to take as history")
    path = os.path.join(config.data_path, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{config.source_file}: data.files.train: {path} not found")
    frame = pd.read_csv(path, sep="\t", header=None, names=[c.name for c in config.data.columns],
                        quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    frame = frame.apply(lambda column: column.str.strip())
    return frame.mask(frame == "")


def load_history(config: PipelineConfig, schema: schema_pb2.Schema,
                 features: Tuple[str, ...]) -> pd.DataFrame:
    """The config's accepted rows, columns ``features`` typed by the schema."""
    raw = _read_csv(config) if config.data.format == "csv" else _read_tsv(config)
    return typed_frame(raw, schema, features)
