"""The canary analysis on synthetic outcomes: each figure fails alone, too few requests is
inconclusive unless the candidate is clearly failing (early stop), a candidate like the stable
version passes; and the runner's incremental reading of logged rows and their feedback labels."""
import dataclasses
import glob
import os

import pytest

from common.config import ConfigError, RolloutAnalysisConfig
from common.loader import load_config
from monitoring.canary import LogReader
from monitoring.canary_analysis import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    VersionOutcomes,
    analyse,
    wilson_interval,
    worse_p_value,
)
from serving import request_log
from serving.feedback.store import LabelRecord, LabelStore
from testing.served_spans import label_for, taxi_rows, write_span
from tests.conftest import TAXI_CONFIG

LIMITS = RolloutAnalysisConfig(min_requests=100, min_labelled_rows=30)
ROWS = 200


def outcomes(version, requests=200, errors=0, latency_ms=5.0, positive_share=0.5, labelled=0, correct=0):
    positives = int(ROWS * positive_share)
    outputs = tuple((0.9,) for _ in range(positives)) + tuple((0.1,) for _ in range(ROWS - positives))
    return VersionOutcomes(version, requests, errors, tuple([latency_ms] * (requests - errors)), outputs,
                           labelled, correct)


STABLE = outcomes(1, requests=2000, errors=2, labelled=100, correct=90)
GOOD = outcomes(2, errors=0, latency_ms=6.0, positive_share=0.55, labelled=40, correct=36)


def test_a_candidate_like_the_stable_version_passes():
    verdict = analyse(STABLE, GOOD, LIMITS, num_classes=2)
    assert verdict.status == PASS and not verdict.failures, verdict.to_json()
    assert {m.measure for m in verdict.measurements} == {
        "error_rate_increase", "p99_latency_ratio", "output_distance", "accuracy_drop"}


def test_fewer_than_min_requests_is_inconclusive_without_early_stop():
    no_early_stop = dataclasses.replace(LIMITS, early_stop_requests=0)
    verdict = analyse(STABLE, outcomes(2, requests=99, errors=99), no_early_stop, num_classes=2)
    assert verdict.status == INCONCLUSIVE and "min_requests is 100" in verdict.reason
    # below early_stop_requests (20) even an always-failing candidate waits
    verdict = analyse(STABLE, outcomes(2, requests=19, errors=19), LIMITS, num_classes=2)
    assert verdict.status == INCONCLUSIVE and not verdict.early_stop


@pytest.mark.parametrize("candidate, measure", [
    (outcomes(2, requests=25, errors=20), "error_rate_increase"),
    (outcomes(2, requests=25, positive_share=1.0), "output_distance"),
])
def test_a_clearly_failing_candidate_stops_early(candidate, measure):
    verdict = analyse(STABLE, candidate, LIMITS, num_classes=2)
    assert verdict.status == FAIL and verdict.early_stop, verdict.reason
    assert verdict.reason.startswith("early stop after 25 of rollout_analysis.min_requests 100 requests")
    assert f"{measure} at least" in verdict.reason and "99% confidence" in verdict.reason
    assert measure in [m.measure for m in verdict.failures] and verdict.to_json()["early_stop"]


@pytest.mark.parametrize("candidate", [
    outcomes(2, requests=25, errors=1),                  # 4 % errors on 25 requests: could be noise
    outcomes(2, requests=25, positive_share=0.75),        # 0.25 > 0.2 as a point, not beyond doubt
    dataclasses.replace(GOOD, requests=30, latencies_ms=(60.0,) * 30),  # latency is never judged early
])
def test_a_candidate_only_possibly_failing_waits_for_min_requests(candidate):
    verdict = analyse(STABLE, candidate, LIMITS, num_classes=2)
    assert verdict.status == INCONCLUSIVE and not verdict.early_stop, verdict.reason


def test_wilson_interval_holds_the_share_and_stays_in_0_1():
    low, high = wilson_interval(0, 25, 2.326)
    assert low == pytest.approx(0.0, abs=1e-12) and 0.1 < high < 0.2
    low, high = wilson_interval(25, 25, 2.326)
    assert high == pytest.approx(1.0) and 0.8 < low < 0.9
    low, high = wilson_interval(500, 1000, 2.326)
    assert low < 0.5 < high and high - low < 0.08


@pytest.mark.parametrize("candidate, measure", [
    (dataclasses.replace(GOOD, server_errors=10), "error_rate_increase"),
    (dataclasses.replace(GOOD, latencies_ms=(60.0,) * 200), "p99_latency_ratio"),
    (outcomes(2, positive_share=1.0, labelled=40, correct=36), "output_distance"),
    (dataclasses.replace(GOOD, correct=28), "accuracy_drop"),
])
def test_each_figure_fails_the_candidate_alone(candidate, measure):
    verdict = analyse(STABLE, candidate, LIMITS, num_classes=2)
    assert verdict.status == FAIL
    assert [m.measure for m in verdict.failures] == [measure]
    assert measure in verdict.reason and "rollout_analysis." in verdict.reason


def test_a_gap_past_its_threshold_on_too_few_rows_to_tell_is_noise_not_a_failure():
    """A good retrained candidate in the loop: 83.6 % right on its 110 labelled rows against the
    stable version's 89.1 % on 495 -- 5.5 points, past max_accuracy_drop 0.05, but a 110-row
    sample cannot tell that from no gap (one-sided p ~ 0.07). With more rows the same gap fails."""
    stable = dataclasses.replace(STABLE, labelled=495, correct=441)
    candidate = dataclasses.replace(GOOD, labelled=110, correct=92)
    verdict = analyse(stable, candidate, LIMITS, num_classes=2)
    assert verdict.status == PASS and not verdict.failures, verdict.reason
    assert set(verdict.noise) == {"accuracy_drop"} and 0.05 < verdict.noise["accuracy_drop"] < 0.1
    assert "accuracy_drop past its threshold but not significant" in verdict.reason
    assert verdict.to_json()["noise"] == verdict.noise
    # point values alone (confidence 0.5): the same canary fails
    points = dataclasses.replace(LIMITS, confidence=0.5)
    assert analyse(stable, candidate, points, num_classes=2).status == FAIL
    # the same 5.5-point gap on 10x the rows is a regression
    bigger = dataclasses.replace(GOOD, labelled=1100, correct=920)
    verdict = analyse(dataclasses.replace(stable, labelled=4950, correct=4410), bigger, LIMITS, num_classes=2)
    assert verdict.status == FAIL and [m.measure for m in verdict.failures] == ["accuracy_drop"]
    assert not verdict.noise


def test_worse_p_value_is_a_one_sided_two_proportion_test():
    assert worse_p_value(50, 100, 50, 100) == pytest.approx(0.5)
    assert worse_p_value(60, 100, 40, 100) < 0.005 < 0.995 < worse_p_value(40, 100, 60, 100)
    # z = 2 for 0.6 vs 0.4 on 50 each (pooled 0.5, spread 0.1): p = 1 - Phi(2)
    assert worse_p_value(30, 50, 20, 50) == pytest.approx(0.02275, abs=1e-4)
    assert worse_p_value(0, 10, 0, 10) == 1.0 and worse_p_value(3, 0, 1, 10) == 1.0


def test_sub_millisecond_latencies_are_floored_and_too_few_labels_are_not_judged():
    fast = dataclasses.replace(STABLE, latencies_ms=(0.1,) * 10)
    slower = dataclasses.replace(GOOD, latencies_ms=(0.9,) * 10, labelled=5, correct=0)
    verdict = analyse(fast, slower, LIMITS, num_classes=2)
    assert verdict.status == PASS, verdict.reason
    accuracy = next(m for m in verdict.measurements if m.measure == "accuracy_drop")
    assert accuracy.threshold is None and "not judged" in accuracy.detail


@pytest.mark.parametrize("override, expected", [
    ("rollout_analysis.canary_percent=0", "a percentage in (0, 100]"),
    ("rollout_analysis.min_requests=0", "a positive integer"),
    ("rollout_analysis.max_output_distance=1.5", "a number in [0, 1]"),
    ("rollout_analysis.max_p99_latency_ratio=0.5", "a ratio of at least 1"),
    ("rollout_analysis.timeout_seconds=0", "a positive number"),
    ("rollout_analysis.early_stop_requests=-1", "a non-negative integer (0 = no early stop)"),
    ("rollout_analysis.early_stop_confidence=1", "a confidence in (0.5, 1)"),
    ("rollout_analysis.confidence=0.4", "a confidence in [0.5, 1)"),
])
def test_bad_settings_name_the_key(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(TAXI_CONFIG, [override])
    assert f"'{override.split('=')[0]}'" in str(err.value) and expected in str(err.value)


def _labels(cfg, ids, rows, right):
    """Labels for ``ids``: the truth of row i when right(i), else the other class."""
    return [LabelRecord(ids[i], 0, label_for(cfg, rows[i], right(i)), "taxi", 1) for i in range(len(ids))]


def test_logged_rows_and_their_feedback_labels_give_each_versions_labelled_accuracy(tmp_path):
    """The runner's reader (``monitoring.canary.LogReader``) on a real request log and label store:
    version 1 got all its 40 labelled rows right, version 2 half of them; the analysis fails 2."""
    cfg = load_config(TAXI_CONFIG, [f"serving.request_log_dir={tmp_path}/log", f"run_dir={tmp_path}/runs"])
    log_dir, span, rows = cfg.serving.request_log_dir, 1000, taxi_rows(cfg, 80, seed=3)[0]
    ids = write_span(log_dir, cfg, span, rows, [[0.9]] * 80, [1] * 40 + [2] * 40, "c")
    LabelStore(log_dir).append([(span, label) for label in _labels(cfg, ids, rows, lambda i: i < 40 or i % 2 == 0)])
    reader = LogReader(cfg, log_dir, "taxi", span * cfg.serving.request_log_window_seconds * 1000,
                       [("primary", 1), ("primary", 2)])
    got = reader.poll()
    assert [(len(r.latency_by_request), len(r.outputs), r.labelled, r.correct) for r in got.values()] == [
        (40, 40, 40, 40), (40, 40, 40, 20)]
    stable, candidate = (VersionOutcomes(v, 100, 0, tuple(r.latency_by_request.values()), tuple(r.outputs),
                                         r.labelled, r.correct) for v, r in ((1, got[("primary", 1)]),
                                                                             (2, got[("primary", 2)])))
    verdict = analyse(stable, candidate, LIMITS, num_classes=2)
    assert verdict.status == FAIL and [m.measure for m in verdict.failures] == ["accuracy_drop"]


def test_each_poll_reads_only_what_was_appended_since_the_last(tmp_path):
    """A log file growing under the reader (cut inside a record), and labels arriving both
    before and after their rows: every row is counted once, every label joined once, and a
    poll reads only the new bytes."""
    cfg = load_config(TAXI_CONFIG, [f"serving.request_log_dir={tmp_path}/log", f"run_dir={tmp_path}/runs"])
    log_dir, span, rows = cfg.serving.request_log_dir, 1000, taxi_rows(cfg, 60, seed=4)[0]
    ids = write_span(str(tmp_path / "written"), cfg, span, rows, [[0.9]] * 60, [1] * 30 + [2] * 30, "g")
    (written,) = glob.glob(request_log.window_glob(str(tmp_path / "written"), span, role=None))
    with open(written, "rb") as f:
        data = f.read()
    live = os.path.join(request_log.span_dir(log_dir, span), os.path.basename(written))
    os.makedirs(os.path.dirname(live))
    cut = len(data) // 2 + 7  # inside a record: the writer is still appending it
    with open(live, "wb") as f:
        f.write(data[:cut])
    labels = _labels(cfg, ids, rows, lambda i: i < 30 or i % 2 == 0)
    store = LabelStore(log_dir)
    store.append([(span, label) for label in labels[:45]])  # some before their rows are logged
    reader = LogReader(cfg, log_dir, "taxi", span * cfg.serving.request_log_window_seconds * 1000,
                       [("primary", 1), ("primary", 2)])
    first = sum(len(r.outputs) for r in reader.poll().values())
    assert 0 < first < 60
    read_after_first = reader.bytes_read
    assert read_after_first < cut + os.path.getsize(store_path(log_dir, span))
    with open(live, "ab") as f:
        f.write(data[cut:])
    store.append([(span, label) for label in labels[45:]])  # the rest after
    got = reader.poll()
    assert [(len(r.outputs), r.labelled, r.correct) for r in got.values()] == [(30, 30, 30), (30, 30, 15)]
    assert reader.bytes_read == len(data) + os.path.getsize(store_path(log_dir, span))  # each byte once
    reader.poll()  # nothing new: nothing read, nothing counted twice
    assert reader.bytes_read == len(data) + os.path.getsize(store_path(log_dir, span))
    assert [(len(r.outputs), r.labelled) for r in got.values()] == [(30, 30), (30, 30)]


def store_path(log_dir, span):
    from serving.feedback.store import label_files

    (path,) = label_files(log_dir, span)
    return path


def test_the_cli_needs_the_admin_token_and_a_reachable_gateway(monkeypatch, capsys):
    from monitoring.cli import main

    command = ["canary", "--config", TAXI_CONFIG, "--gateway-url", "http://127.0.0.1:9"]
    monkeypatch.delenv("SERVING_ADMIN_TOKEN", raising=False)
    assert main(command) == 2 and "serving.admin_token_env" in capsys.readouterr().err
    monkeypatch.setenv("SERVING_ADMIN_TOKEN", "t")
    assert main(command) == 2 and "cannot read http://127.0.0.1:9/metrics" in capsys.readouterr().err
