"""The real DAG on a few hundred LIAR rows: TSV ExampleGen, text features, baselines,
error analysis, the HTML report, and a REST prediction from the pushed model.

LIAR is research-only and not in this repository: the rows are read from the shared
copy ($LIAR_DIR or ../shared/datasets/liar) into a temporary directory.
"""
import os

import pytest

from pipeline import html_report
from pipeline.results import collect
from pipeline.run_paths import local_paths

# The sampled run (conftest.py::liar_run) is shared with tests/e2e/test_liar_edge.py.
from tests.e2e.conftest import EVAL_ROWS, predict_through_gateway

# one worker runs both LIAR files, so the session-scoped sampled run (conftest.liar_run) is made once
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("liar_run")]


def test_liar_dag_runs_with_baselines_and_error_analysis(liar_run):
    cfg, code = liar_run
    assert code == 0
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert {"TsvExampleGen", "Transform", "Trainer", "Evaluator", "TextBaselines",
            "ErrorAnalysis", "Pusher"} <= set(result.artifacts)
    figures = result.analysis["splits"]["eval"]
    assert set(figures) == {"all_features", "only_statement"}
    assert figures["all_features"]["examples"] == EVAL_ROWS
    assert len(figures["all_features"]["confusion_matrix"]) == 6
    for key in ("accuracy", "macro_f1", "binary_accuracy"):
        assert 0.0 <= figures["all_features"][key] <= 1.0
    # the binary fold's reliability bins cover every eval row, and the report draws them
    for variant in figures.values():
        bins = variant["calibration"]["bins"]
        assert len(bins) == 10 and sum(b["examples"] for b in bins) == EVAL_ROWS
        assert 0.0 <= variant["calibration"]["expected_calibration_error"] <= 1.0
    baselines = result.text_baselines["eval"]
    assert set(baselines) == {"majority_class", "tfidf_logistic_regression"}
    assert "sparse_categorical_accuracy" in result.metrics
    report = os.path.join(local_paths(cfg).root, "report.html")
    text = open(report, encoding="utf-8").read()
    # two confusion matrices and two reliability diagrams (all features, statement only),
    # and one chart per slice feature
    assert text.count("data:image/png;base64") >= 8
    assert "calibration error (binary)" in text
    for heading in ("Per-slice sparse_categorical_accuracy", "<h3>party</h3>", "<h3>subjects</h3>",
                    "<h3>speaker_record_seen_xf</h3>", "Fairness by party"):
        assert heading in text
    # the six-way model's binary-fold rates come from TFMA, per party
    rows = html_report.slice_rows(result.evaluation_uri)
    party_rates = {(value, name): v for column, value, sub_key, name, v in rows
                   if column == "party" and sub_key == "" and name in ("fpr", "fnr")}
    assert party_rates and all(0.0 <= v <= 1.0 for v in party_rates.values())


def test_pushed_liar_model_scores_a_statement_without_metadata(liar_run):
    cfg, _ = liar_run
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert result.pushed, result.blessing_failures
    blank = {"statement": "", "subjects": "", "speaker": "", "job": "", "state": "", "party": "",
             "context": "", "claim_neighbours": ""}
    instances = [dict(blank, statement="Says the unemployment rate doubled in one year."),
                 dict(blank, statement="The state budget grew by 3 percent.", party="democrat",
                      speaker="barack-obama", subjects="economy,jobs")]
    predictions = predict_through_gateway(cfg, instances)
    assert len(predictions) == 2
    for p in predictions:
        assert len(p) == 6 and abs(sum(p) - 1.0) < 1e-4
