"""Missing-value shifts, read from TFDV statistics."""
import pandas as pd
import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from monitoring.presence import missing_fraction, presence_distances
from monitoring.statistics import statistics_of

SCHEMA = text_format.Parse('feature { name: "company" type: BYTES } '
                           'feature { name: "seconds" type: INT }', schema_pb2.Schema())


@pytest.fixture(scope="module")
def stats():
    quarter = pd.DataFrame({"company": ["a", None, "b", "c"] * 25,
                            "seconds": pd.array([60, 120, None, None] * 25, dtype="Int64")})
    full = pd.DataFrame({"company": ["a", "b"] * 50, "seconds": pd.array([60] * 100, dtype="Int64")})
    return (statistics_of(quarter, SCHEMA, ["company", "seconds"]),
            statistics_of(full, SCHEMA, ["company", "seconds"]))


def test_missing_fraction_counts_examples_without_a_value(stats):
    quarter, full = stats
    assert missing_fraction(quarter, "company") == pytest.approx(0.25)
    assert missing_fraction(quarter, "seconds") == pytest.approx(0.5)
    assert missing_fraction(full, "company") == 0.0


def test_a_feature_absent_from_the_statistics_is_wholly_missing(stats):
    assert missing_fraction(stats[0], "tips") == 1.0


def test_presence_distance_is_the_absolute_difference_held_to_its_threshold(stats):
    quarter, full = stats
    records = presence_distances(quarter, full, ["company", "seconds"], "skew",
                                 {"company": 0.3, "seconds": 0.3})
    assert [(r.feature, r.comparator, r.measure) for r in records] == [
        ("company", "skew", "missing_fraction"), ("seconds", "skew", "missing_fraction")]
    assert [r.distance for r in records] == [pytest.approx(0.25), pytest.approx(0.5)]
    assert [r.alarmed for r in records] == [False, True]
    assert presence_distances(full, quarter, ["company"], "drift")[0].threshold is None
