"""The differential test: its figures on a case worked by hand, then a served span replayed through
two real tiny SavedModels (testing/tiny_model.py) by ``python -m monitoring diff``."""
import json
import os

import numpy as np
import pytest

from common.config import DifferentialConfig
from common.loader import load_config
from common.paths import REPO_ROOT
from monitoring.cli import main
from monitoring.differential import ALL_ROWS, compare, predicted_classes
from monitoring.metadata import DIFFERENTIAL_TYPE, open_store
from monitoring.replay import replay_span
from serving.feedback.store import LabelRecord, LabelStore
from testing.served_spans import label_for, outputs_for, taxi_rows, write_span
from testing.tiny_model import bias_of, probability, push_version, save_tiny_model

TAXI = os.path.join(REPO_ROOT, "configs", "taxi.yaml")
SPAN, ROWS, LABELLED = 5, 80, 60


def test_figures_of_a_case_worked_by_hand():
    stable = np.array([[0.2], [0.6], [0.7], [0.4]])
    candidate = np.array([[0.3], [0.4], [0.9], [0.6]])
    truths = np.array([0, 1, 1, -1])                    # the last row has no label
    limits = DifferentialConfig(max_flip_rate=0.4, max_mean_difference=0.2, max_difference=0.25,
                                max_slice_accuracy_drop=0.05, min_slice_rows=2)
    report = compare(stable, candidate, 2, truths, {"payment_type": ["Cash", "Cash", "Card", "Card"]}, limits)
    assert report.flipped == [1, 3] and report.flip_rate == 0.5       # classes 0110 -> 0011
    assert report.mean_difference == pytest.approx(0.175) and report.max_difference == pytest.approx(0.2)
    deltas = {s.slice: (s.rows, s.stable_accuracy, s.candidate_accuracy) for s in report.slices}
    assert deltas == {ALL_ROWS: (3, 1.0, pytest.approx(2 / 3)), "payment_type=Cash": (2, 1.0, 0.5),
                      "payment_type=Card": (1, 1.0, 1.0)}
    failed = {(m.feature, m.measure) for m in report.failures}
    assert failed == {("predicted_class", "flip_rate"), (ALL_ROWS, "accuracy_delta"),
                      ("payment_type=Cash", "accuracy_delta")}
    card = next(m for m in report.measurements if m.feature == "payment_type=Card")
    assert card.threshold is None and "fewer than differential.min_slice_rows 2" in card.detail


def test_multi_class_outputs_compare_by_argmax_and_shapes_must_match():
    assert list(predicted_classes(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]), 3)) == [1, 0]
    with pytest.raises(ValueError, match="outputs of 2 values: expected 1 .binary. or 3"):
        predicted_classes(np.zeros((1, 2)), 3)
    with pytest.raises(ValueError, match=r"shape \(2, 1\) \(stable\) and \(2, 3\) \(candidate\)"):
        compare(np.zeros((2, 1)), np.zeros((2, 3)), 3, np.array([-1, -1]), {}, DifferentialConfig())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A span of 80 taxi rows answered by version 1, 60 of them labelled; versions 1, 2 pushed and
    3 = a copy of version 1."""
    root = tmp_path_factory.mktemp("differential")
    overrides = [f"serving.request_log_dir={root}/log", f"serving.push_dir={root}/serving",
                 f"run_dir={root}/runs"]
    cfg = load_config(TAXI, overrides)
    models = root / "models"
    for version, bias in ((1, bias_of(1)), (2, bias_of(2)), (3, bias_of(1))):
        save_tiny_model(str(models / str(version)), cfg, bias)
        push_version(cfg.push_dir, version, str(models / str(version)))
    rows, _ = taxi_rows(cfg, ROWS, seed=4)
    ids = write_span(cfg.serving.request_log_dir, cfg, SPAN, rows, outputs_for(ROWS, 4), [1] * ROWS, "d")
    truths = [i % 2 == 0 for i in range(LABELLED)]
    LabelStore(cfg.serving.request_log_dir).append(
        [(SPAN, LabelRecord(ids[i], 0, label_for(cfg, rows[i], truths[i]), "taxi", 1)) for i in range(LABELLED)])
    return cfg, overrides, rows, ids, truths


def expected_classes(rows, version):
    return [int(probability(bias_of(version), row.get("fare", 0.0), row.get("payment_type", "")) > 0.5)
            for row in rows]


def test_replay_through_two_real_versions_matches_their_formulas(served):
    cfg, _, rows, ids, truths = served
    replay = replay_span(cfg, SPAN)                     # stable: the span's main version 1; candidate: 3
    assert (replay.stable, replay.candidate) == (1, 3)
    assert replay.report.flipped == [] and replay.report.max_difference == 0.0
    replay = replay_span(cfg, SPAN, stable=1, candidate=2)
    first, second = expected_classes(rows, 1), expected_classes(rows, 2)
    flipped = [i for i in range(ROWS) if first[i] != second[i]]
    assert flipped and replay.report.flipped == flipped
    assert [(f["request_id"], f["stable_class"], f["candidate_class"]) for f in replay.flips] == [
        (ids[i], first[i], second[i]) for i in flipped]
    both = replay.report.slices[0]
    assert both.slice == ALL_ROWS and both.rows == LABELLED
    assert both.stable_accuracy == pytest.approx(np.mean([first[i] == truths[i] for i in range(LABELLED)]))
    assert both.candidate_accuracy == pytest.approx(np.mean([second[i] == truths[i] for i in range(LABELLED)]))
    assert any(s.slice.startswith("payment_type=") for s in replay.report.slices)
    fares = np.array([[probability(bias_of(v), r.get("fare", 0.0), r.get("payment_type", ""))
                       for r in rows] for v in (1, 2)])
    assert replay.report.max_difference == pytest.approx(np.abs(fares[1] - fares[0]).max(), abs=1e-6)


def test_the_diff_cli_exits_1_on_a_failed_threshold_and_lists_the_flipped_rows(served, capsys):
    cfg, overrides, _, _, _ = served
    sets = [a for o in overrides for a in ("--set", o)]
    args = ["diff", "--config", TAXI, "--span", str(SPAN), "--stable", "1", "--candidate", "2", "--show", "2"]
    assert main(args + sets) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "FAIL differential predicted_class flip_rate" in out
    assert out.count("  flipped d-") == 2 and "more flipped rows in the report" in out
    path = os.path.join(cfg.run_dir, "taxi", "monitoring", "diffs", f"span-{SPAN}-v1-v2.json")
    with open(path) as f:
        report = json.load(f)
    assert report["failed"] and len(report["flipped_rows"]) == len(replay_span(cfg, SPAN, 1, 2).flips)
    store = open_store(os.path.join(cfg.run_dir, "taxi", "monitoring.db"))
    [test] = store.get_executions_by_type(DIFFERENTIAL_TYPE)
    assert (test.properties["stable"].int_value, test.properties["candidate"].int_value) == (1, 2)
    assert test.properties["failed"].int_value == 1 and test.properties["report_file"].string_value == path
    assert test.properties["flipped"].int_value == len(report["flipped_rows"])
    contexts = {c.name for c in store.get_contexts_by_execution(test.id)}
    assert contexts == {"taxi/version-1", "taxi/version-2"}
    lenient = ["--set", "differential.max_flip_rate=1", "--set", "differential.max_mean_difference=1",
               "--set", "differential.max_difference=1", "--set", "differential.max_slice_accuracy_drop=1"]
    assert main(args + sets + lenient) == 0
    assert "passed" in capsys.readouterr().out
    assert main(["diff", "--config", TAXI, "--span", str(SPAN), "--candidate", "9"] + sets) == 2
    assert "version 9 is not a complete pushed version" in capsys.readouterr().err
