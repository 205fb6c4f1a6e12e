"""components.baselines: the majority class and the best one-feature rule."""
import numpy as np

from components.baselines import best_one_feature_rule, majority_accuracy, one_rule


def test_majority_class_baseline():
    result = majority_accuracy(np.array([0, 0, 1]), np.array([0, 1, 1, 1]))
    assert result == {"predicts": 0, "accuracy": 0.25}


def test_one_rule_on_categories_and_quantiles():
    x_train = np.array([0, 0, 1, 1, 2])
    y_train = np.array([0, 0, 1, 1, 1])
    assert one_rule(x_train, y_train, np.array([0, 1, 2, 7]), fallback=0).tolist() == [0, 1, 1, 0]
    floats = np.linspace(0, 1, 100)
    labels = (floats > 0.5).astype(int)
    assert (one_rule(floats, labels, np.array([0.05, 0.95]), fallback=0) == [0, 1]).all()


def test_best_rule_picks_the_informative_feature():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    train = {"label": y, "noise": rng.integers(0, 5, 500), "signal": y * 3 + rng.integers(0, 2, 500)}
    best = best_one_feature_rule(train, train, "label", ["noise", "signal"])
    assert best["feature"] == "signal" and best["accuracy"] == 1.0
