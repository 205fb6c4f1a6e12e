"""The histograms the Jensen-Shannon divergence is measured on (monitoring.statistics)."""
import math

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from monitoring.distances import feature_distances
from monitoring.statistics import HISTOGRAM_BUCKETS, default_slice, statistics_of, stats_options

SCHEMA = text_format.Parse('feature { name: "x" type: FLOAT }', schema_pb2.Schema())


def _standard_buckets(statistics) -> list:
    """(low, high, count) of each STANDARD histogram bucket of the one feature."""
    (feature,) = default_slice(statistics).features
    (histogram,) = [h for h in feature.num_stats.histograms
                    if h.type == statistics_pb2.Histogram.STANDARD]
    return [(b.low_value, b.high_value, b.sample_count) for b in histogram.buckets]


def _frame(values) -> pd.DataFrame:
    return pd.DataFrame({"x": np.asarray(values, dtype=float)})


def test_standard_histograms_have_the_configured_equal_width_buckets():
    """0, 1, ..., 30 over 30 buckets: [0, 1), [1, 2), ..., [29, 30], one value each
    but two in the first (TFDV derives the counts from its quantile sketch, so they
    are approximate, within 0.01 here)."""
    assert HISTOGRAM_BUCKETS == 30
    assert stats_options(SCHEMA, ["x"]).num_histogram_buckets == HISTOGRAM_BUCKETS
    buckets = _standard_buckets(statistics_of(_frame(np.arange(31.0)), SCHEMA, ["x"]))
    assert [(low, high) for low, high, _ in buckets] == [(float(i), i + 1.0) for i in range(30)]
    assert [count for _, _, count in buckets] == pytest.approx([2.0] + [1.0] * 29, abs=0.01)


def _by_hand(p, q) -> float:
    """Jensen-Shannon divergence, base 2, of two bucket-share vectors."""
    m = [(a + b) / 2 for a, b in zip(p, q)]
    kl = lambda s: sum(a * math.log2(a / c) for a, c in zip(s, m) if a > 0)  # noqa: E731
    return (kl(p) + kl(q)) / 2


def test_a_shift_inside_a_ten_bucket_width_is_seen_with_thirty_buckets():
    """Both samples span [0, 30]; 98 values move from [0, 1) to [1, 2).

    With 10 buckets (width 3) both samples put 99 values in [0, 3) and 1 in
    [27, 30]: divergence 0. With 30 (width 1), shares (.99, 0, .01) vs
    (.01, .98, .01), a divergence of ~0.95 computed by hand (TFDV's sketch-made
    counts leave a few thousandths of a row in the empty buckets).
    """
    inside = np.linspace(0.1, 0.9, 98)
    before, after = _frame([0.0, 30.0, *inside]), _frame([0.0, 30.0, *(inside + 1.0)])

    def divergence(stats_before, stats_after) -> float:
        (record,) = feature_distances(stats_after, stats_before, SCHEMA, "skew", ["x"])
        return record.distance

    ten = tfdv.StatsOptions(schema=SCHEMA, feature_allowlist=["x"], num_histogram_buckets=10)
    assert divergence(tfdv.generate_statistics_from_dataframe(before, ten),
                      tfdv.generate_statistics_from_dataframe(after, ten)) == pytest.approx(0.0, abs=1e-6)
    expected = _by_hand([0.99, 0.0, 0.01], [0.01, 0.98, 0.01])
    assert expected == pytest.approx(0.9496, abs=1e-4)
    assert divergence(statistics_of(before, SCHEMA, ["x"]),
                      statistics_of(after, SCHEMA, ["x"])) == pytest.approx(expected, abs=0.01)
