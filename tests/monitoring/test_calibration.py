"""Thresholds at a false-alarm budget: the order-statistic maths, and the rate they give."""
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from monitoring.artifacts import read_calibration, write_calibration
from monitoring.calibration import (
    Calibration,
    calibrate,
    candidate_schema,
    monitored_tests,
    order_statistic_rank,
    per_test_budget,
    required_draws,
    threshold_from_null,
)
from monitoring.distances import feature_distances
from monitoring.presence import presence_distances
from monitoring.statistics import HISTOGRAM_BUCKETS, statistics_of

SCHEMA = text_format.Parse("""
feature { name: "size" type: FLOAT
          skew_comparator { jensen_shannon_divergence { threshold: 0.9 } } }
feature { name: "colour" type: BYTES }
feature { name: "other" type: INT drift_comparator { jensen_shannon_divergence { threshold: 0.7 } } }
""", schema_pb2.Schema())


def _population(rows: int, seed: int) -> pd.DataFrame:
    """size: lognormal, 30 % missing; colour: three values, never missing."""
    rng = np.random.default_rng(seed)
    size = rng.lognormal(1.0, 0.8, rows)
    size[rng.random(rows) < 0.3] = np.nan
    return pd.DataFrame({"size": size,
                         "colour": rng.choice(["red", "green", "blue"], rows, p=[0.5, 0.3, 0.2])})


def test_bonferroni_splits_the_budget_equally():
    assert per_test_budget(0.05, 28) == pytest.approx(0.05 / 28)
    with pytest.raises(ValueError, match="budget 1.5"):
        per_test_budget(1.5, 3)
    with pytest.raises(ValueError, match="n_tests 0"):
        per_test_budget(0.05, 0)


@pytest.mark.parametrize("draws, test_budget, rank", [
    (19, 0.05, 19), (99, 0.01, 99), (100, 0.1, 91), (199, 0.05, 190), (1000, 0.05, 951)])
def test_rank_is_the_ceiling_of_one_minus_budget_times_draws_plus_one(draws, test_budget, rank):
    assert order_statistic_rank(draws, test_budget) == rank


def test_threshold_is_the_kth_smallest_null_distance():
    distances = np.random.default_rng(3).permutation(np.arange(1.0, 101.0))
    assert threshold_from_null(distances, 0.1) == 91.0  # k = ceil(0.9 * 101) = 91
    assert threshold_from_null([0.2, 0.1, 0.3, 0.4], 0.2) == 0.4  # k = ceil(0.8 * 5) = 4


def test_too_few_draws_for_the_budget_are_refused():
    assert required_draws(0.05) == 19
    assert required_draws(0.05 / 28) == 559
    assert order_statistic_rank(559, 0.05 / 28) == 559
    assert order_statistic_rank(558, 0.05 / 28) == 559
    with pytest.raises(ValueError, match="18 null draws.*at least 19"):
        threshold_from_null(np.arange(18.0), 0.05)


def test_exceedance_of_the_kth_order_statistic_is_the_budget_on_an_exact_distribution():
    """Null distances ~ Uniform(0, 1): P(new > t) = 1 - t, and E[1 - U_(k)] = (R + 1 - k) / (R + 1)."""
    rng = np.random.default_rng(0)
    draws, test_budget = 39, 0.05  # k = ceil(0.95 * 40) = 38: exceedance 2 / 40 = 0.05
    thresholds = [threshold_from_null(rng.random(draws), test_budget) for _ in range(20000)]
    assert np.mean(1.0 - np.asarray(thresholds)) == pytest.approx(0.05, abs=0.002)


def test_each_feature_is_one_distance_test_plus_one_presence_test():
    assert monitored_tests(SCHEMA, ["size", "colour"], "skew") == [
        ("size", "jensen_shannon"), ("colour", "l_infinity"),
        ("size", "missing_fraction"), ("colour", "missing_fraction")]


@pytest.fixture(scope="module")
def calibrated():
    """Budget 0.4 over 4 tests per comparison: a = 0.1, R = 39 draws, k = 36."""
    history = _population(1500, seed=1)
    return history, calibrate(history, SCHEMA, ["size", "colour"], span_size=100, budget=0.4,
                              draws=39, seed=7, clip_quantile=0.005)


def test_calibration_records_its_settings_and_one_threshold_per_test(calibrated):
    _, calibration = calibrated
    assert (calibration.draws, calibration.span_size, calibration.seed) == (39, 100, 7)
    assert calibration.tests_per_comparison == {"skew": 4, "drift": 4}
    assert calibration.test_budget["skew"] == pytest.approx(0.1)
    assert calibration.rank == {"skew": 36, "drift": 36}
    assert {(t.feature, t.comparator, t.measure) for t in calibration.thresholds} == {
        (f, c, m) for c in ("skew", "drift") for f, m in monitored_tests(SCHEMA, ["size", "colour"], c)}
    assert set(calibration.clip_bounds) == {"size"}
    assert calibration.histogram_buckets == HISTOGRAM_BUCKETS
    for t in calibration.thresholds:
        assert 0.0 <= t.null_quantiles["p50"] <= t.threshold <= t.null_quantiles["max"]


def test_calibration_is_reproducible_with_its_seed(calibrated):
    history, _ = calibrated
    first, second = (calibrate(history, SCHEMA, ["size", "colour"], span_size=100, budget=0.4,
                               draws=19, seed=7, comparators=("skew",)) for _ in range(2))
    assert first.thresholds == second.thresholds


def test_calibration_refuses_too_few_draws_or_too_little_history():
    history = _population(300, seed=2)
    with pytest.raises(ValueError, match="draws 5: a budget of 0.05 over 4 tests"):
        calibrate(history, SCHEMA, ["size", "colour"], span_size=100, budget=0.05, draws=5)
    with pytest.raises(ValueError, match="span size 200: the history has 300 rows, 400 needed"):
        calibrate(history, SCHEMA, ["size", "colour"], span_size=200, budget=0.4, draws=39)


def test_same_distribution_spans_alarm_at_about_the_budget_rate(calibrated):
    """Fresh spans of the population vs the whole history, as a check would compare them."""
    history, calibration = calibrated
    schema = candidate_schema(SCHEMA, calibration)
    features = ["size", "colour"]
    reference = statistics_of(calibration.view(history), schema, features)
    presence = calibration.presence_thresholds("skew")
    fresh = _population(100 * 150, seed=11)
    alarms = 0
    for start in range(0, len(fresh), 100):
        span = statistics_of(calibration.view(fresh.iloc[start:start + 100]), schema, features)
        records = (feature_distances(span, reference, schema, "skew", features)
                   + presence_distances(span, reference, features, "skew", presence))
        alarms += any(r.alarmed for r in records)
    # budget 0.4; colour's presence test can never alarm (never missing), so about 3 tests at 0.1
    assert 0.15 <= alarms / 150 <= 0.4, f"{alarms} of 150 same-distribution spans alarmed"


def test_candidate_schema_carries_the_thresholds_and_tfdv_enforces_them(calibrated):
    history, calibration = calibrated
    before = SCHEMA.SerializeToString()
    schema = candidate_schema(SCHEMA, calibration)
    assert SCHEMA.SerializeToString() == before
    by_name = {f.name: f for f in schema.feature}
    assert by_name["size"].skew_comparator.jensen_shannon_divergence.threshold == \
        calibration.threshold("size", "skew", "jensen_shannon")
    assert by_name["colour"].drift_comparator.infinity_norm.threshold == \
        calibration.threshold("colour", "drift", "l_infinity")
    assert by_name["other"].drift_comparator.jensen_shannon_divergence.threshold == 0.7  # untouched
    shifted = calibration.view(history.iloc[:100]).assign(colour="red")
    anomalies = tfdv.validate_statistics(
        statistics_of(calibration.view(history), schema, ["size", "colour"]), schema,
        serving_statistics=statistics_of(shifted, schema, ["size", "colour"]))
    assert "colour" in anomalies.anomaly_info and "size" not in anomalies.anomaly_info


def test_the_sidecar_and_the_candidate_schema_round_trip(calibrated, tmp_path):
    _, calibration = calibrated
    schema_path, json_path = write_calibration(str(tmp_path), candidate_schema(SCHEMA, calibration),
                                               calibration, "schema/x/schema.pbtxt")
    assert read_calibration(json_path) == calibration
    raw = json.loads(open(json_path).read())
    assert raw["budget"] == 0.4 and raw["draws"] == 39 and raw["seed"] == 7
    assert raw["tfdv_version"] == tfdv.__version__
    assert raw["histogram_buckets"] == HISTOGRAM_BUCKETS
    assert tfdv.load_schema_text(schema_path) == candidate_schema(SCHEMA, calibration)
    with pytest.raises(KeyError, match="'weight'"):
        calibration.threshold("weight", "skew", "l_infinity")


def test_a_sidecar_without_a_bucket_count_was_made_with_tfdvs_default_ten(calibrated, tmp_path):
    _, calibration = calibrated
    raw = calibration.to_json()
    del raw["histogram_buckets"]
    assert Calibration.from_json(raw).histogram_buckets == 10
