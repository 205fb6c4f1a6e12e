"""The baseline gate: the verdict, its effect on the Evaluator's blessing, and the
latest-blessed-model resolver reading blessings the gate withdrew."""
import json
import os

import pytest
from tfx.components.evaluator import constants
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.types import standard_artifacts

from components import baseline_gate
from components.baselines import BASELINES_FILE, BaselineMetrics

# The run that motivated the gate: TFMA blessed 0.877 beside a 0.894 one-feature rule.
BASELINES = {"eval_examples": 1000,
             "majority_class": {"predicts": 0, "accuracy": 0.774},
             "one_feature_rule": {"feature": "payment_type_xf", "train_accuracy": 0.9, "accuracy": 0.894}}


def test_a_model_below_the_one_feature_rule_fails_with_the_rule_named():
    result = baseline_gate.verdict("binary_accuracy", 0.877, BASELINES, 0.0)
    assert not result.passed
    assert result.reason == ("binary_accuracy 0.8770 does not beat the one-feature rule (on payment_type_xf)'s "
                             "0.8940 by margin 0")


def test_a_model_above_the_best_baseline_passes():
    result = baseline_gate.verdict("binary_accuracy", 0.91, BASELINES, 0.0)
    assert result.passed and "beats the one-feature rule" in result.reason


def test_the_margin_and_a_tie():
    assert not baseline_gate.verdict("binary_accuracy", 0.90, BASELINES, 0.01).passed
    assert baseline_gate.verdict("binary_accuracy", 0.905, BASELINES, 0.01).passed
    assert not baseline_gate.verdict("binary_accuracy", 0.894, BASELINES, 0.0).passed  # equal is not better


def test_the_majority_class_alone_when_no_rule_was_found():
    baselines = dict(BASELINES, one_feature_rule={})
    result = baseline_gate.verdict("sparse_categorical_accuracy", 0.7, baselines, 0.0)
    assert not result.passed and "the majority class's 0.7740" in result.reason


@pytest.mark.parametrize("accuracy", ["NaN", None, float("nan"), True])
def test_no_numeric_accuracy_fails_closed(accuracy):
    result = baseline_gate.verdict("binary_accuracy", accuracy, BASELINES, 0.0)
    assert not result.passed and "not a number" in result.reason


def test_no_baseline_figure_fails_closed():
    result = baseline_gate.verdict("binary_accuracy", 0.9, {"majority_class": {"accuracy": "NaN"}}, 0.0)
    assert not result.passed and BASELINES_FILE in result.reason


def test_read_baselines_from_the_artifact(tmp_path):
    artifact = BaselineMetrics()
    artifact.uri = str(tmp_path)
    (tmp_path / BASELINES_FILE).write_text(json.dumps(BASELINES))
    assert baseline_gate.read_baselines(artifact) == BASELINES


def _blessing(tmp_path, name, model_id, blessed):
    """A ModelBlessing as TFX's Evaluator writes it: file and custom properties."""
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / name)
    os.makedirs(blessing.uri)
    open(os.path.join(blessing.uri, constants.BLESSED_FILE_NAME if blessed
                      else constants.NOT_BLESSED_FILE_NAME), "w").close()
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY, int(blessed))
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model_id)
    return blessing


def test_a_failed_gate_withdraws_the_blessing(tmp_path):
    blessing = _blessing(tmp_path, "b", 1, blessed=True)
    result = baseline_gate.verdict("binary_accuracy", 0.877, BASELINES, 0.0)
    baseline_gate.apply(blessing, result)
    assert blessing.get_int_custom_property("blessed") == 0
    assert os.listdir(blessing.uri) == [constants.NOT_BLESSED_FILE_NAME]
    assert blessing.get_int_custom_property(baseline_gate.PASSED_PROPERTY) == 0
    assert blessing.get_string_custom_property(baseline_gate.REASON_PROPERTY) == result.reason


def test_a_passed_gate_keeps_either_verdict_of_tfma(tmp_path):
    passed = baseline_gate.verdict("binary_accuracy", 0.95, BASELINES, 0.0)
    blessed = _blessing(tmp_path, "blessed", 1, blessed=True)
    baseline_gate.apply(blessed, passed)
    assert blessed.get_int_custom_property("blessed") == 1
    assert os.listdir(blessed.uri) == [constants.BLESSED_FILE_NAME]
    unblessed = _blessing(tmp_path, "unblessed", 2, blessed=False)
    baseline_gate.apply(unblessed, passed)  # a TFMA threshold failed: the gate never blesses
    assert unblessed.get_int_custom_property("blessed") == 0
    assert unblessed.get_int_custom_property(baseline_gate.PASSED_PROPERTY) == 1


def test_the_latest_blessed_model_resolver_skips_a_model_the_gate_rejected(tmp_path):
    """Model 2 passed TFMA but not the gate: the change threshold must compare against model 1."""
    models = []
    for model_id in (1, 2):
        model = standard_artifacts.Model()
        model.id = model_id
        models.append(model)
    good = _blessing(tmp_path, "good", 1, blessed=True)
    baseline_gate.apply(good, baseline_gate.verdict("binary_accuracy", 0.95, BASELINES, 0.0))
    rejected = _blessing(tmp_path, "rejected", 2, blessed=True)
    baseline_gate.apply(rejected, baseline_gate.verdict("binary_accuracy", 0.877, BASELINES, 0.0))
    resolved = LatestBlessedModelStrategy().resolve_artifacts(
        None, {"model": models, "model_blessing": [good, rejected]})
    assert [m.id for m in resolved["model"]] == [1]
    assert resolved["model_blessing"] == [good]
