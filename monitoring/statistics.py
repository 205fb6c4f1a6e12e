"""TFDV statistics of a span, generated the one way calibration and checks share.

A distance threshold is only valid for statistics made with the same options
(histogram bucket counts set the Jensen-Shannon divergence), so every
statistics proto in this package comes from ``statistics_of``.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2


def stats_options(schema: schema_pb2.Schema, features: Sequence[str]) -> tfdv.StatsOptions:
    """TFDV's default options (the ones StatisticsGen uses), limited to ``features``.

    The schema is passed so an INT feature the schema marks categorical gets
    value counts (and an L-infinity distance) as in the pipeline; the allowlist
    keeps per-call time down (each numeric feature costs ~10 ms of histogram
    building in TFDV, whatever the row count).
    """
    return tfdv.StatsOptions(schema=schema, feature_allowlist=list(features))


def statistics_of(frame: pd.DataFrame, schema: schema_pb2.Schema,
                  features: Sequence[str]) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of a typed frame (``monitoring.frames.typed_frame``) over ``features``."""
    return tfdv.generate_statistics_from_dataframe(frame, stats_options(schema, features))


def default_slice(statistics: statistics_pb2.DatasetFeatureStatisticsList
                  ) -> statistics_pb2.DatasetFeatureStatistics:
    """The all-examples dataset of a statistics list (what TFDV validates)."""
    return tfdv.DatasetListView(statistics).get_default_slice_or_die().proto()
