"""AnomaliesGate: stops the run when ExampleValidator found anomalies.

Custom because TFX's ExampleValidator only records anomalies; it never fails
the run, so Transform and Trainer would go on training on bad data. The gate
passes the schema through only when every split is clean, and Transform reads
that validated schema, so the dependency is a real data edge on every
orchestrator (local and Kubeflow), not a side channel.
"""

import os
from typing import Dict, List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

ANOMALIES_FILE = "SchemaDiff.pb"
SCHEMA_FILE = "schema.pbtxt"


class DataAnomaliesError(RuntimeError):
    """The data does not match the curated schema; the message lists every anomaly."""


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


@tfx.dsl.components.component
def AnomaliesGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    validated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
) -> None:
    """Fails with every anomaly named, or forwards the schema for Transform."""
    problems = describe_anomalies(read_anomalies(anomalies))
    if problems:
        raise DataAnomaliesError(
            f"data validation failed: {len(problems)} anomal{'y' if len(problems) == 1 else 'ies'} "
            f"against the curated schema (anomalies artifact: {anomalies.uri}):\n  "
            + "\n  ".join(problems))
    io_utils.copy_file(os.path.join(schema.uri, SCHEMA_FILE),
                       os.path.join(validated_schema.uri, SCHEMA_FILE), overwrite=True)
