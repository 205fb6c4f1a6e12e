"""AcceptedStatistics: the statistics of data the gate let through, and how the next run finds them.

The gate compares new data with "the last accepted data". That data is the
newest AcceptedStatistics artifact in ML Metadata: the gate writes one only
when it passes, so a stopped run never becomes the baseline. A resolver with
TFX's LatestArtifactStrategy reads it back at the start of the next run; its
own artifact type (only the gate makes it) keeps the query a plain type query,
which KubeflowV2DagRunner compiles as well as the local runner runs it.
"""
from __future__ import annotations

import os
from typing import Dict

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types.artifact import Artifact

from components.tfx_api import tfx

STATS_FILE = "FeatureStats.pb"  # StatisticsGen's per-split file name, kept for TFDV's tools
RESOLVER_ID = "latest_accepted_statistics_resolver"
# Custom properties on the artifact: what the gate compared (for the run summary).
DRIFT_CHECKED, BASELINE_ID, GATE_NOTES = "drift_checked", "baseline_artifact_id", "gate_notes"
SPAN, SPLIT_NAMES = "span", "split_names"


class AcceptedStatistics(Artifact):
    """Per-split statistics of data the data gate accepted (one FeatureStats.pb per split).

    Split names and span are custom properties: KubeflowV2DagRunner compiles a
    custom artifact type only without declared properties."""
    TYPE_NAME = "components.AcceptedStatistics"


def build_accepted_statistics_resolver() -> tfx.dsl.Resolver:
    """The newest AcceptedStatistics of this pipeline (none on its first run)."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        accepted_statistics=tfx.dsl.Channel(type=AcceptedStatistics),
    ).with_id(RESOLVER_ID)


def write(accepted: Artifact, by_split: Dict[str, statistics_pb2.DatasetFeatureStatisticsList],
          span: int) -> None:
    """Stores the statistics of each split in ``accepted`` (same layout as StatisticsGen's)."""
    for split, statistics in by_split.items():
        directory = os.path.join(accepted.uri, f"Split-{split}")
        fileio.makedirs(directory)
        with fileio.open(os.path.join(directory, STATS_FILE), "wb") as f:
            f.write(statistics.SerializeToString())
    accepted.set_string_custom_property(SPLIT_NAMES, artifact_utils.encode_split_names(sorted(by_split)))
    accepted.set_int_custom_property(SPAN, span)


def read(accepted: Artifact) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """Split -> statistics stored by ``write``."""
    return {split: tfdv.load_stats_binary(os.path.join(accepted.uri, f"Split-{split}", STATS_FILE))
            for split in artifact_utils.decode_split_names(accepted.get_string_custom_property(SPLIT_NAMES))}
