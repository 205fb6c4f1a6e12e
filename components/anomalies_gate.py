"""AnomaliesGate: the data gate. Stops the run on anomalies, and remembers the data it accepted.

Custom because TFX's ExampleValidator only records anomalies; it never fails
the run, so Transform and Trainer would go on training on bad data. And it
validates each split against the schema alone: TFX 1.16 passes TFDV no
previous statistics, so the schema's drift comparators never run, and an
empty split raises no anomaly. The gate stops the run on any of:

* ExampleValidator's anomalies against the curated schema;
* an empty split;
* fewer examples than ``validation.min_examples``;
* drift from the last accepted data, the newest AcceptedStatistics in ML
  Metadata (components.accepted_statistics): the schema's drift comparators
  and the example-count ratio (components.gate_checks).

When it passes it writes this data's statistics as the next run's baseline,
noting whether drift was checked (not on a pipeline's first run). Transform
runs after the gate (an explicit upstream edge in ``create_pipeline``).
"""

import json
import os
from typing import Dict, List, Optional

import tensorflow_data_validation as tfdv
from absl import logging
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils
from tfx.types.artifact import Artifact
from tfx.utils import io_utils

from common.config import ValidationConfig
from components.accepted_statistics import BASELINE_ID, DRIFT_CHECKED, GATE_NOTES, SPAN, AcceptedStatistics
from components.accepted_statistics import read as read_accepted
from components.accepted_statistics import write as write_accepted
from components.gate_checks import GateResult, Thresholds, check_splits
from components.tfx_api import tfx

ANOMALIES_FILE = "SchemaDiff.pb"
SCHEMA_FILE = "schema.pbtxt"


class DataAnomaliesError(RuntimeError):
    """The data failed the gate; the message lists every problem (feature, value, threshold)."""


def read_anomalies(anomalies_artifact) -> Dict[str, anomalies_pb2.Anomalies]:
    """The Anomalies proto ExampleValidator wrote for each split."""
    result = {}
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        split_uri = artifact_utils.get_split_uri([anomalies_artifact], split)
        proto = anomalies_pb2.Anomalies()
        proto.ParseFromString(io_utils.read_bytes_file(os.path.join(split_uri, ANOMALIES_FILE)))
        result[split] = proto
    return result


def describe_anomalies(by_split: Dict[str, anomalies_pb2.Anomalies]) -> List[str]:
    """One line per anomaly: split, feature, anomaly type and TFDV's description."""
    lines = []
    for split, anomalies in sorted(by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            kinds = ", ".join(anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason) or "UNKNOWN"
            lines.append(f"split '{split}': feature '{feature}': {kinds}: {info.description}")
        if anomalies.HasField("dataset_anomaly_info"):
            lines.append(f"split '{split}': dataset: {anomalies.dataset_anomaly_info.description}")
    return lines


def thresholds_json(validation: ValidationConfig) -> str:
    """The config's ``validation`` section as the gate's parameter."""
    return json.dumps({"min_examples": dict(validation.min_examples),
                       "min_count_ratio": validation.min_count_ratio,
                       "max_count_ratio": validation.max_count_ratio}, sort_keys=True)


def _baseline_label(previous: Optional[Artifact]) -> str:
    if previous is None:
        return ""
    span = previous.get_int_custom_property(SPAN)
    span = f", span {span}" if span else ""
    return f"; accepted data: AcceptedStatistics {previous.id}{span} ({previous.uri})"


def gate(anomalies_by_split: Dict[str, anomalies_pb2.Anomalies], result: GateResult,
         anomalies_uri: str, previous: Optional[Artifact] = None) -> None:
    """Raises ``DataAnomaliesError`` naming every problem; nothing about an empty split but that."""
    empty = set(result.empty_splits)
    problems = describe_anomalies({s: a for s, a in anomalies_by_split.items() if s not in empty})
    problems += result.problems
    if problems:
        against = (" and the last accepted data" if result.drift_checked
                   else "; drift not checked: no accepted data yet")
        raise DataAnomaliesError(
            f"data validation failed: {len(problems)} anomal{'y' if len(problems) == 1 else 'ies'} "
            f"against the curated schema{against} (anomalies artifact: {anomalies_uri}"
            f"{_baseline_label(previous)}):\n  " + "\n  ".join(problems))


@tfx.dsl.components.component
def AnomaliesGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    accepted_statistics: tfx.dsl.components.OutputArtifact[AcceptedStatistics],
    thresholds: tfx.dsl.components.Parameter[str],
    previous_statistics: tfx.dsl.components.InputArtifact[AcceptedStatistics] = None,
) -> None:
    """Fails with every problem named, or stores the statistics as the accepted data."""
    splits = artifact_utils.decode_split_names(statistics.split_names)
    current = {split: stats_artifact_utils.load_statistics(statistics, split).proto() for split in splits}
    previous = read_accepted(previous_statistics) if previous_statistics is not None else None
    result = check_splits(current, tfdv.load_schema_text(os.path.join(schema.uri, SCHEMA_FILE)),
                          Thresholds(**json.loads(thresholds)), previous)
    gate(read_anomalies(anomalies), result, anomalies.uri, previous_statistics)
    notes = [f"passed{_baseline_label(previous_statistics)}"] + result.notes
    logging.info("AnomaliesGate: data gate %s", "\n  ".join(notes))
    write_accepted(accepted_statistics, current, statistics.span or 0)
    accepted_statistics.set_int_custom_property(DRIFT_CHECKED, int(result.drift_checked))
    accepted_statistics.set_int_custom_property(
        BASELINE_ID, previous_statistics.id if previous_statistics is not None else -1)
    accepted_statistics.set_string_custom_property(GATE_NOTES, "\n".join(notes))
