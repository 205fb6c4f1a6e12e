"""TFDV's own distances, read back per feature, on data whose distances are known by hand."""
import math

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from monitoring.distances import FeatureDistance, feature_distances, is_categorical, measures_of, measuring_schema
from monitoring.statistics import statistics_of

SCHEMA = text_format.Parse("""
feature { name: "colour" type: BYTES
          skew_comparator { infinity_norm { threshold: 0.25 } }
          drift_comparator { infinity_norm { threshold: 0.35 } } }
feature { name: "size" type: FLOAT
          skew_comparator { jensen_shannon_divergence { threshold: 0.5 } } }
feature { name: "hour" type: INT }
feature { name: "shop" type: INT int_domain { is_categorical: true } }
""", schema_pb2.Schema())
FEATURES = ["colour", "size", "hour", "shop"]


def _stats(frame):
    return statistics_of(frame, SCHEMA, [c for c in FEATURES if c in frame.columns])


def _by_key(records):
    return {(r.feature, r.measure): r for r in records}


@pytest.fixture(scope="module")
def half_and_eighty():
    """colour 50/50 vs 80/20: L-infinity 0.3; size on disjoint ranges: JSD 1."""
    a = pd.DataFrame({"colour": ["red"] * 50 + ["blue"] * 50, "size": np.linspace(0.0, 1.0, 100)})
    b = pd.DataFrame({"colour": ["red"] * 80 + ["blue"] * 20, "size": np.linspace(10.0, 11.0, 100)})
    return _stats(a), _stats(b)


def test_l_infinity_of_two_categorical_distributions_is_the_largest_share_difference(half_and_eighty):
    span, baseline = half_and_eighty
    for comparator, threshold in (("skew", 0.25), ("drift", 0.35)):
        record = _by_key(feature_distances(span, baseline, SCHEMA, comparator))[("colour", "l_infinity")]
        assert record.distance == pytest.approx(0.3, abs=1e-12)
        assert record.comparator == comparator and record.threshold == threshold
        assert record.alarmed == (0.3 > threshold)


def test_jensen_shannon_is_one_for_disjoint_ranges_and_zero_for_identical_data(half_and_eighty):
    span, baseline = half_and_eighty
    record = _by_key(feature_distances(span, baseline, SCHEMA, "skew"))[("size", "jensen_shannon")]
    assert record.distance == pytest.approx(1.0) and record.threshold == 0.5 and record.alarmed
    same = _by_key(feature_distances(span, span, SCHEMA, "skew"))
    assert same[("size", "jensen_shannon")].distance == pytest.approx(0.0, abs=1e-12)
    assert same[("colour", "l_infinity")].distance == 0.0


def test_default_features_are_those_the_schema_sets_a_comparator_for(half_and_eighty):
    span, baseline = half_and_eighty
    assert {r.feature for r in feature_distances(span, baseline, SCHEMA, "skew")} == {"colour", "size"}
    assert {r.feature for r in feature_distances(span, baseline, SCHEMA, "drift")} == {"colour"}


def test_features_without_a_comparator_get_the_measure_of_their_type_and_no_threshold():
    assert [measures_of(f, "drift") for f in SCHEMA.feature] == [
        ("l_infinity",), ("jensen_shannon",), ("jensen_shannon",), ("l_infinity",)]
    assert [is_categorical(f) for f in SCHEMA.feature] == [True, False, False, True]
    a = pd.DataFrame({"hour": pd.array([1, 2, 3, 4] * 25, dtype="Int64"),
                      "shop": pd.array([1] * 60 + [2] * 40, dtype="Int64")})
    b = pd.DataFrame({"hour": pd.array([1, 2, 3, 4] * 25, dtype="Int64"),
                      "shop": pd.array([1] * 30 + [2] * 70, dtype="Int64")})
    records = _by_key(feature_distances(_stats(a), _stats(b), SCHEMA, "drift", ["hour", "shop"]))
    assert records[("hour", "jensen_shannon")].distance == pytest.approx(0.0, abs=1e-12)
    assert records[("shop", "l_infinity")] == FeatureDistance("shop", "drift", "l_infinity",
                                                              pytest.approx(0.3), None)
    assert not records[("shop", "l_infinity")].alarmed


def test_a_measure_the_schema_configures_is_the_one_reported():
    """JSD configured on a categorical feature: (1/2, 1/2) vs (4/5, 1/5), computed by hand."""
    schema = text_format.Parse(
        'feature { name: "colour" type: BYTES '
        'skew_comparator { jensen_shannon_divergence { threshold: 0.1 } } }', schema_pb2.Schema())
    p, q = np.array([0.5, 0.5]), np.array([0.8, 0.2])
    m = (p + q) / 2
    expected = 0.5 * sum(p * np.log2(p / m)) + 0.5 * sum(q * np.log2(q / m))
    a = pd.DataFrame({"colour": ["red"] * 50 + ["blue"] * 50})
    b = pd.DataFrame({"colour": ["red"] * 80 + ["blue"] * 20})
    (record,) = feature_distances(statistics_of(a, schema, ["colour"]),
                                  statistics_of(b, schema, ["colour"]), schema, "skew")
    assert (record.measure, record.threshold) == ("jensen_shannon", 0.1)
    assert record.distance == pytest.approx(expected, rel=1e-9)
    assert math.isclose(expected, 0.0731, abs_tol=1e-4)


def test_alarmed_agrees_with_tfdv_own_anomaly_at_the_threshold(half_and_eighty):
    span, baseline = half_and_eighty
    distance = _by_key(feature_distances(span, baseline, SCHEMA, "skew"))[("colour", "l_infinity")]
    for threshold in (distance.distance - 1e-9, distance.distance, distance.distance + 1e-9):
        schema = schema_pb2.Schema()
        schema.CopyFrom(SCHEMA)
        schema.feature[0].skew_comparator.infinity_norm.threshold = threshold
        anomalies = tfdv.validate_statistics(baseline, schema, serving_statistics=span)
        tfdv_alarm = "colour" in anomalies.anomaly_info
        ours = FeatureDistance("colour", "skew", "l_infinity", distance.distance, threshold).alarmed
        assert ours == tfdv_alarm == (threshold < distance.distance)


def test_a_feature_without_values_on_one_side_gets_no_distance():
    a = pd.DataFrame({"colour": ["red", "blue", "red"], "size": [1.0, 2.0, 3.0]})
    b = pd.DataFrame({"colour": [None, None, None], "size": [1.0, 2.0, 3.0]})
    records = feature_distances(_stats(a), _stats(b), SCHEMA, "skew")
    assert {r.feature for r in records} == {"size"}


def test_infinity_norm_on_a_numeric_feature_is_refused_by_name():
    schema = text_format.Parse('feature { name: "size" type: FLOAT '
                               'drift_comparator { infinity_norm { threshold: 0.1 } } }',
                               schema_pb2.Schema())
    with pytest.raises(ValueError, match="'size'.*categorical features only"):
        measures_of(schema.feature[0], "drift")


def test_an_unknown_feature_or_comparator_is_refused_by_name():
    with pytest.raises(KeyError, match="'weight'.*colour, size, hour, shop"):
        measuring_schema(SCHEMA, ["weight"], "skew")
    with pytest.raises(ValueError, match="'bias'"):
        measures_of(SCHEMA.feature[0], "bias")


def test_the_measuring_schema_is_a_copy_with_zero_thresholds_for_the_requested_features_only():
    before = SCHEMA.SerializeToString()
    probe = measuring_schema(SCHEMA, ["size", "hour"], "skew")
    assert SCHEMA.SerializeToString() == before
    by_name = {f.name: f for f in probe.feature}
    assert not by_name["colour"].HasField("skew_comparator")
    assert by_name["colour"].drift_comparator.infinity_norm.threshold == 0.35  # other kind untouched
    assert by_name["size"].skew_comparator.jensen_shannon_divergence.threshold == 0.0
    assert by_name["hour"].skew_comparator.HasField("jensen_shannon_divergence")
