"""The binary fold's FPR/FNR, computed by TFMA itself (analyze_raw_data runs the same
metric computations and Beam combiners as the Evaluator), against numpy."""
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow_model_analysis as tfma

from common.loader import load_config
from components import evaluation
from components.fold_metrics import RATES, FoldedRate
from testing import liar_fixture
from testing.liar_fixture import LIAR_CONFIG, fixture_overrides

POSITIVE = [3, 4, 5]


def _expected(labels, probabilities):
    predicted = probabilities[:, POSITIVE].sum(axis=1) > 0.5
    true = np.isin(labels, POSITIVE)
    return {"fpr": (predicted & ~true).sum() / (~true).sum(), "fnr": (~predicted & true).sum() / true.sum()}


def test_tfma_computes_the_folded_rates_per_slice():
    rng = np.random.default_rng(0)
    n = 60
    probabilities = rng.dirichlet(np.ones(6), n)
    labels = rng.integers(0, 6, n)
    party = np.array(["dem" if i % 3 else "rep" for i in range(n)])
    frame = pd.DataFrame({"label": labels, "prediction": list(probabilities), "party": party})
    config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="label", prediction_key="prediction")],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["party"])],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="FoldedRate", module="components.fold_metrics",
                              config=json.dumps({"positive_class_ids": POSITIVE, "rate": r, "name": r}))
            for r in RATES])])
    result = tfma.analyze_raw_data(frame, config)
    got = {key: {name: v["doubleValue"] for name, v in metrics[""][""].items()}
           for key, metrics in result.slicing_metrics}
    assert set(got) == {(), (("party", "dem"),), (("party", "rep"),)}
    for key, mask in (((), np.ones(n, bool)), ((("party", "dem"),), party == "dem"),
                      ((("party", "rep"),), party == "rep")):
        expected = _expected(labels[mask], probabilities[mask])
        for rate in RATES:
            assert got[key][rate] == pytest.approx(expected[rate], abs=1e-6), (key, rate)


def test_one_hot_labels_and_weights_and_bad_arguments():
    metric = FoldedRate(POSITIVE, "fnr")
    one_hot = np.eye(6)[[3, 4, 0]]
    probabilities = np.array([[0, 0, 0, 0.9, 0.1, 0], [0.6, 0.2, 0, 0, 0.2, 0], [1, 0, 0, 0, 0, 0]])
    metric.update_state(one_hot, probabilities, sample_weight=[1.0, 3.0, 1.0])
    assert float(metric.result()) == pytest.approx(3.0 / 4.0)  # the weighted positive row missed
    assert FoldedRate.from_config(metric.get_config()).positive_class_ids == POSITIVE
    with pytest.raises(ValueError, match="rate 'auc'"):
        FoldedRate(POSITIVE, "auc")
    with pytest.raises(ValueError, match="positive class id"):
        FoldedRate([], "fpr")


def test_six_way_evaluation_asks_tfma_for_the_folded_rates(tmp_path):
    data = liar_fixture.write_fixture(str(tmp_path / "data"))
    cfg = load_config(LIAR_CONFIG, fixture_overrides(data))
    metrics = evaluation.eval_config(cfg).metrics_specs[0].metrics
    folded = [m for m in metrics if m.class_name == "FoldedRate"]
    assert [json.loads(m.config) for m in folded] == [
        {"positive_class_ids": POSITIVE, "rate": r, "name": r} for r in RATES]
    no_fairness = load_config(LIAR_CONFIG, fixture_overrides(data) + ["evaluation.fairness_features=[]"])
    assert not [m for m in evaluation.eval_config(no_fairness).metrics_specs[0].metrics
                if m.class_name == "FoldedRate"]
