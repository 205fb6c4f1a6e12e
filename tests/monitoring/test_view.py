"""The clipped monitoring view of numeric features."""
import numpy as np
import pandas as pd
import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from monitoring.view import clip_bounds, clip_quantile_for, clipped

SCHEMA = text_format.Parse('feature { name: "miles" type: FLOAT } '
                           'feature { name: "seconds" type: INT } '
                           'feature { name: "company" type: BYTES }', schema_pb2.Schema())


@pytest.fixture()
def history():
    return pd.DataFrame({"miles": np.arange(1.0, 201.0),
                         "seconds": pd.array(list(range(0, 1990, 10)) + [None], dtype="Int64"),
                         "company": ["a", "b"] * 100})


def test_bounds_are_the_history_quantiles_of_numeric_features_only(history):
    bounds = clip_bounds(history, SCHEMA, ["miles", "seconds", "company"], 0.01)
    assert set(bounds) == {"miles", "seconds"}
    assert bounds["miles"] == (pytest.approx(np.quantile(np.arange(1.0, 201.0), 0.01)),
                               pytest.approx(np.quantile(np.arange(1.0, 201.0), 0.99)))
    seconds = np.arange(0, 1990, 10)
    assert bounds["seconds"] == (np.floor(np.quantile(seconds, 0.01)),
                                 np.ceil(np.quantile(seconds, 0.99)))
    assert all(float(b).is_integer() for b in bounds["seconds"])


def test_clipping_keeps_types_and_missing_values(history):
    bounds = {"miles": (2.5, 150.0), "seconds": (100.0, 1000.0)}
    view = clipped(history, bounds)
    assert view["miles"].min() == 2.5 and view["miles"].max() == 150.0
    assert str(view["seconds"].dtype) == "Int64" and view["seconds"].isna().sum() == 1
    assert view["seconds"].min() == 100 and view["seconds"].max() == 1000
    assert history["miles"].max() == 200.0  # the input is not modified
    assert clipped(history, {}) is history


def test_the_clip_quantile_leaves_ten_rows_of_a_span_beyond_each_bound():
    assert [clip_quantile_for(n) for n in (20, 100, 1000, 2000, 10000)] == [
        0.25, 0.1, 0.01, 0.005, 0.005]
    with pytest.raises(ValueError, match="span size 0"):
        clip_quantile_for(0)


def test_quantile_zero_means_no_clipping_and_bad_quantiles_are_refused(history):
    assert clip_bounds(history, SCHEMA, ["miles"], 0.0) == {}
    with pytest.raises(ValueError, match="clip quantile 0.5"):
        clip_bounds(history, SCHEMA, ["miles"], 0.5)
