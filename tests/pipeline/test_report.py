"""The run summary and the HTML headline table: any figure shown, none crashes them."""
from pipeline import html_report
from pipeline.figures import figure
from pipeline.report import summary_text
from pipeline.results import RunResult

GATE_FAILED = ("binary_accuracy 0.8770 does not beat the one-feature rule (on payment_type_xf)'s "
               "0.8940 by margin 0")


def test_figure_formats_numbers_shows_text_and_skips_missing():
    assert figure(0.87654) == "0.8765"
    assert figure(73) == "73.0000"
    assert figure("NaN") == "NaN"
    assert figure(None) is None


def test_summary_survives_text_and_missing_figures(taxi_config):
    result = RunResult(
        metrics={"auc": 0.9192, "precision": "NaN", "recall": None},
        baselines={"majority_class": {"predicts": 0}, "one_feature_rule": {"accuracy": "n/a"}},
        analysis={"splits": {"eval": {"all_features": {"accuracy": "NaN", "macro_f1": 0.5}}}},
        model_blessed=True, baseline_gate="binary_accuracy 0.9 beats the majority class's 0.8 by more than margin 0")
    text = summary_text(taxi_config, result)
    assert "auc                          0.9192" in text
    assert "precision                    NaN" in text
    assert "recall" not in text.split("Error analysis")[0]
    assert "baseline: majority class" not in text  # no accuracy recorded: skipped
    assert "baseline: best one-feature   n/a (accuracy, rule on ?)" in text
    assert "NaN" in text.split("Error analysis")[1] and "0.5000" in text
    assert ("Evaluator: BLESSED (all thresholds met; binary_accuracy 0.9 beats the majority class's 0.8 "
            "by more than margin 0)") in text


def test_summary_names_every_rule_that_blocked_the_model(taxi_config):
    result = RunResult(metrics={"binary_accuracy": 0.877}, model_blessed=False,
                       blessing_failures=["auc = 0.8834, below the floor 0.9", GATE_FAILED])
    text = summary_text(taxi_config, result)
    assert f"Evaluator: NOT blessed (auc = 0.8834, below the floor 0.9; {GATE_FAILED})" in text
    assert "Not pushed" in text


def test_html_headline_table_survives_text_figures():
    result = RunResult(analysis={"splits": {"eval": {"all_features": {
        "accuracy": "NaN", "macro_f1": 0.25, "calibration": {"expected_calibration_error": "NaN"}}}}})
    table = html_report.headline_table(result)
    assert "<td>NaN</td><td>0.2500</td><td>–</td><td>NaN</td>" in table


def test_summary_shows_the_flip_rate_against_the_pushed_model_with_its_threshold(taxi_config):
    import dataclasses

    result = RunResult(metrics={"auc": 0.91, "symmetric_flip_rate_diff": 0.0312})
    assert ("flip rate vs pushed model    0.0312 (share of rows changing class; not gated: "
            "evaluation.max_flip_rate)") in summary_text(taxi_config, result)
    gated = dataclasses.replace(taxi_config, evaluation=dataclasses.replace(taxi_config.evaluation,
                                                                            max_flip_rate=0.1))
    assert "0.0312 (share of rows changing class; max 0.1)" in summary_text(gated, result)
    assert "flip rate" not in summary_text(taxi_config, RunResult(metrics={"auc": 0.91}))  # no baseline
