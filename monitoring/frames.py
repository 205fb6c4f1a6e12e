"""Tabular rows typed as the schema says, so TFDV sees the schema's feature types.

pandas reads an integer column with a missing value as float64; TFDV would then
report a FLOAT feature where the schema says INT (an anomaly of its own, and a
float histogram). Casting per the schema keeps the statistics of a DataFrame
identical in type to those of the tf.Examples the pipeline and the request log
hold.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
from tensorflow_metadata.proto.v0 import schema_pb2


def schema_feature(schema: schema_pb2.Schema, name: str) -> schema_pb2.Feature:
    """The schema's feature ``name``; a KeyError naming the known features otherwise."""
    for feature in schema.feature:
        if feature.name == name:
            return feature
    known = ", ".join(f.name for f in schema.feature)
    raise KeyError(f"feature {name!r} is not in the schema (schema features: {known})")


def typed_frame(frame: pd.DataFrame, schema: schema_pb2.Schema,
                features: Sequence[str]) -> pd.DataFrame:
    """The columns ``features`` of ``frame``, cast to the schema's types, with a fresh index.

    INT -> nullable ``Int64`` (missing stays missing), FLOAT -> ``float64``,
    BYTES -> strings with ``None`` for missing. The index is reset because
    pandas-to-Arrow keeps a non-default index as an extra column that TFDV
    would describe as a feature.
    """
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the data (columns: {list(frame.columns)})")
    typed = {}
    for name in features:
        kind = schema_feature(schema, name).type
        column = frame[name]
        if kind == schema_pb2.INT:
            typed[name] = pd.to_numeric(column, errors="raise").astype("Int64")
        elif kind == schema_pb2.FLOAT:
            typed[name] = pd.to_numeric(column, errors="raise").astype("float64")
        elif kind == schema_pb2.BYTES:
            typed[name] = column.astype(object).where(column.notna(), None).map(
                lambda v: v if v is None else str(v))
        else:
            raise ValueError(f"feature {name!r}: schema type {schema_pb2.FeatureType.Name(kind)} "
                             "is not supported (expected INT, FLOAT or BYTES)")
    return pd.DataFrame(typed).reset_index(drop=True)
