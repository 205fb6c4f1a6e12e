"""The data gate on small synthetic statistics (real TFDV): drift, empty data, counts, first run."""
import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types.artifact_utils import decode_split_names

from components.accepted_statistics import AcceptedStatistics, read, write
from components.anomalies_gate import DataAnomaliesError, gate
from components.gate_checks import FIRST_RUN_NOTE, Thresholds, check_splits

SCHEMA = text_format.Parse("""
feature { name: "payment_type" type: BYTES presence { min_fraction: 1.0 }
          drift_comparator { infinity_norm { threshold: 0.1 } } }
feature { name: "fare" type: FLOAT
          drift_comparator { jensen_shannon_divergence { threshold: 0.2 source { type: QUANTILES } } } }
""", schema_pb2.Schema())
NO_LIMITS = Thresholds()


def _stats(seed: int, n: int = 600, cash: float = 0.5, fare: float = 10.0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"payment_type": rng.choice(["Cash", "Credit Card"], n, p=[cash, 1 - cash]),
                          "fare": rng.gamma(4.0, fare / 4.0, n)})
    return tfdv.generate_statistics_from_dataframe(frame)


@pytest.fixture(scope="module")
def accepted():
    return {"train": _stats(1), "eval": _stats(2)}


def test_drifted_span_stops_naming_feature_distance_and_threshold(accepted):
    drifted = {"train": _stats(3), "eval": _stats(4, cash=0.9, fare=30.0)}
    result = check_splits(drifted, SCHEMA, NO_LIMITS, accepted)
    assert result.drift_checked and len(result.problems) == 2
    payment, fare = sorted(result.problems, key=lambda p: "fare" in p)
    assert payment.startswith("split 'eval': feature 'payment_type': drift vs the accepted data: "
                              "L-infinity distance 0.")
    assert payment.endswith("above the threshold 0.1 (largest change: 'Cash')")
    distance = float(payment.split("L-infinity distance ")[1].split()[0])
    assert 0.3 < distance < 0.5  # 0.9 vs 0.5 cash share
    assert fare.startswith("split 'eval': feature 'fare': drift vs the accepted data: Jensen-Shannon "
                           "divergence ") and fare.endswith("above the threshold 0.2")
    with pytest.raises(DataAnomaliesError) as err:
        gate({}, result, "anomalies/1")
    message = str(err.value)
    assert "2 anomalies against the curated schema and the last accepted data" in message
    assert payment in message and fare in message


def test_same_distribution_passes_and_says_what_it_compared(accepted):
    result = check_splits({"train": _stats(5), "eval": _stats(6)}, SCHEMA, NO_LIMITS, accepted)
    assert result.problems == [] and result.drift_checked
    gate({}, result, "anomalies/1")  # does not raise
    assert any(n.startswith("split 'eval': 600 examples vs 600 accepted; drift checked on 2 features")
               for n in result.notes)
    assert set(result.splits["eval"].drift) == {"payment_type", "fare"}


def test_first_run_says_drift_was_not_checked():
    drifted = {"eval": _stats(4, cash=0.9, fare=30.0)}
    result = check_splits(drifted, SCHEMA, NO_LIMITS, previous=None)
    assert result.problems == [] and not result.drift_checked
    assert result.notes[0] == FIRST_RUN_NOTE and "drift not checked" in FIRST_RUN_NOTE


def test_header_only_csv_is_an_empty_split_with_its_own_message(tmp_path, accepted):
    path = tmp_path / "data.csv"
    path.write_text("payment_type,fare\n")
    empty = tfdv.generate_statistics_from_csv(str(path))
    current = {"train": _stats(5), "eval": empty}
    result = check_splits(current, SCHEMA, NO_LIMITS, accepted)
    assert result.empty_splits == ["eval"]
    assert result.problems == ["split 'eval': empty: 0 examples (an empty file, a CSV with only its header, "
                               "or an empty span); there is nothing to train or evaluate on"]
    # ExampleValidator's own verdict on the empty split is not repeated beside it
    schema_anomalies = {split: tfdv.validate_statistics(s, SCHEMA) for split, s in current.items()}
    with pytest.raises(DataAnomaliesError, match=r"1 anomaly .*\n  split 'eval': empty: 0 examples"):
        gate(schema_anomalies, result, "anomalies/1")


def test_empty_split_stops_on_a_first_run_too():
    empty = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"fare": pd.Series([], dtype=float)}))
    result = check_splits({"train": empty, "eval": empty}, SCHEMA, NO_LIMITS, previous=None)
    assert result.empty_splits == ["eval", "train"]
    with pytest.raises(DataAnomaliesError, match="drift not checked: no accepted data yet"):
        gate({}, result, "anomalies/1")


def test_dataset_constraints_name_counts_and_thresholds(accepted):
    thresholds = Thresholds(min_examples={"eval": 50}, min_count_ratio=0.5, max_count_ratio=2.0)
    result = check_splits({"train": _stats(5, n=1500), "eval": _stats(6, n=40)}, SCHEMA, thresholds, accepted)
    assert sorted(result.problems) == [
        "split 'eval': dataset: 40 examples vs 600 in the accepted data: ratio 0.0667 below "
        "validation.min_count_ratio 0.5",
        "split 'eval': dataset: 40 examples, fewer than validation.min_examples.eval = 50",
        "split 'train': dataset: 1500 examples vs 600 in the accepted data: ratio 2.5 above "
        "validation.max_count_ratio 2",
    ]
    # without history only the minimum applies
    first = check_splits({"eval": _stats(6, n=40)}, SCHEMA, thresholds, previous=None)
    assert first.problems == ["split 'eval': dataset: 40 examples, fewer than validation.min_examples.eval = 50"]


def test_a_split_missing_from_the_accepted_data_is_noted(accepted):
    result = check_splits({"test": _stats(7)}, SCHEMA, NO_LIMITS, accepted)
    assert result.problems == [] and result.drift_checked
    assert "split 'test': drift not checked: the accepted data has no split 'test'" in result.notes


def test_accepted_statistics_round_trip(tmp_path, accepted):
    artifact = AcceptedStatistics()
    artifact.uri = str(tmp_path)
    write(artifact, accepted, span=15)
    assert decode_split_names(artifact.get_string_custom_property("split_names")) == ["eval", "train"]
    assert artifact.get_int_custom_property("span") == 15
    assert read(artifact) == accepted
