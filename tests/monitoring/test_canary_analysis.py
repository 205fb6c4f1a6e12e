"""The canary analysis on synthetic outcomes: each figure fails alone, too few requests is
inconclusive, a candidate like the stable version passes; and the runner's reading of logged
rows and their feedback labels."""
import dataclasses

import pytest

from common.config import ConfigError, RolloutAnalysisConfig
from common.loader import load_config
from monitoring.canary import LoggedRows, read_rows
from monitoring.canary_analysis import FAIL, INCONCLUSIVE, PASS, VersionOutcomes, analyse
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


def test_fewer_than_min_requests_is_inconclusive_even_when_failing():
    verdict = analyse(STABLE, outcomes(2, requests=99, errors=99), LIMITS, num_classes=2)
    assert verdict.status == INCONCLUSIVE and "min_requests is 100" in verdict.reason


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
])
def test_bad_settings_name_the_key(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(TAXI_CONFIG, [override])
    assert f"'{override.split('=')[0]}'" in str(err.value) and expected in str(err.value)


def test_logged_rows_and_their_feedback_labels_give_each_versions_labelled_accuracy(tmp_path):
    """The runner's reader (``monitoring.canary.read_rows``) on a real request log and label store:
    version 1 got all its 40 labelled rows right, version 2 half of them; the analysis fails 2."""
    cfg = load_config(TAXI_CONFIG, [f"serving.request_log_dir={tmp_path}/log", f"run_dir={tmp_path}/runs"])
    log_dir, span, rows = cfg.serving.request_log_dir, 1000, taxi_rows(cfg, 80, seed=3)[0]
    ids = write_span(log_dir, cfg, span, rows, [[0.9]] * 80, [1] * 40 + [2] * 40, "c")
    LabelStore(log_dir).append([(span, LabelRecord(ids[i], 0, label_for(cfg, rows[i], i < 40 or i % 2 == 0),
                                                   "taxi", 1)) for i in range(80)])
    got = {("primary", 1): LoggedRows(), ("primary", 2): LoggedRows()}
    read_rows(cfg, log_dir, "taxi", span * cfg.serving.request_log_window_seconds * 1000, got)
    assert [(len(r.latency_by_request), len(r.outputs), r.labelled, r.correct) for r in got.values()] == [
        (40, 40, 40, 40), (40, 40, 40, 20)]
    stable, candidate = (VersionOutcomes(v, 100, 0, tuple(r.latency_by_request.values()), tuple(r.outputs),
                                         r.labelled, r.correct) for v, r in ((1, got[("primary", 1)]),
                                                                             (2, got[("primary", 2)])))
    verdict = analyse(stable, candidate, LIMITS, num_classes=2)
    assert verdict.status == FAIL and [m.measure for m in verdict.failures] == ["accuracy_drop"]


def test_the_cli_needs_the_admin_token_and_a_reachable_gateway(monkeypatch, capsys):
    from monitoring.cli import main

    command = ["canary", "--config", TAXI_CONFIG, "--gateway-url", "http://127.0.0.1:9"]
    monkeypatch.delenv("SERVING_ADMIN_TOKEN", raising=False)
    assert main(command) == 2 and "serving.admin_token_env" in capsys.readouterr().err
    monkeypatch.setenv("SERVING_ADMIN_TOKEN", "t")
    assert main(command) == 2 and "cannot read http://127.0.0.1:9/metrics" in capsys.readouterr().err
