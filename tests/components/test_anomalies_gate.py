"""components.anomalies_gate: the stop message names split, feature and anomaly."""
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.anomalies_gate import describe_anomalies


def test_gate_message_names_split_feature_and_anomaly():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["trip_miles"]
    info.description = "Expected data of type: FLOAT but got BYTES"
    info.reason.add(type=anomalies_pb2.AnomalyInfo.UNEXPECTED_DATA_TYPE)
    lines = describe_anomalies({"eval": anomalies, "train": anomalies_pb2.Anomalies()})
    assert lines == ["split 'eval': feature 'trip_miles': UNEXPECTED_DATA_TYPE: "
                     "Expected data of type: FLOAT but got BYTES"]
