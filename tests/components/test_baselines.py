"""components.baselines: the majority class and the best one-feature rule, from a bounded
sample of the training split and a streamed eval split."""
import numpy as np

from components import baselines
from components.baselines import (
    accuracies,
    baseline_figures,
    best_one_feature_rule,
    fit_one_rule,
    majority_class,
    sample_rows,
)


def _batches(columns, size):
    n = len(next(iter(columns.values())))
    for start in range(0, n, size):
        yield {k: v[start:start + size] for k, v in columns.items()}


def test_majority_class_baseline():
    assert majority_class(np.array([0, 0, 1])) == 0
    rows, accuracy = accuracies([{"y": np.array([0, 1])}, {"y": np.array([1, 1])}], "y",
                                {"majority": lambda b: np.zeros(len(b["y"]))})
    assert (rows, accuracy) == (4, {"majority": 0.25})


def test_one_rule_on_categories_and_quantiles():
    x_train = np.array([0, 0, 1, 1, 2])
    y_train = np.array([0, 0, 1, 1, 1])
    assert fit_one_rule(x_train, y_train, fallback=0).predict(np.array([0, 1, 2, 7])).tolist() == [0, 1, 1, 0]
    floats = np.linspace(0, 1, 100)
    labels = (floats > 0.5).astype(int)
    assert (fit_one_rule(floats, labels, fallback=0).predict(np.array([0.05, 0.95])) == [0, 1]).all()


def test_best_rule_picks_the_informative_feature():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    train = {"label": y, "noise": rng.integers(0, 5, 500), "signal": y * 3 + rng.integers(0, 2, 500)}
    feature, train_accuracy, rule = best_one_feature_rule(train, "label", ["noise", "signal"], fallback=0)
    assert (feature, train_accuracy) == ("signal", 1.0)
    assert (rule.predict(train["signal"]) == y).all()


def test_sample_keeps_every_row_of_a_small_stream_in_order():
    columns = {"a": np.arange(10), "b": np.arange(10) * 2.0}
    sample = sample_rows(_batches(columns, 3), size=100)
    assert sample["a"].tolist() == list(range(10)) and sample["b"].tolist() == [2.0 * i for i in range(10)]
    assert sample_rows([], size=5) == {}


def test_sample_of_a_large_stream_is_bounded_uniform_and_seeded():
    n, size = 50_000, 2_000
    columns = {"a": np.arange(n), "b": -np.arange(n)}
    sample = sample_rows(_batches(columns, 4096), size)
    assert len(sample["a"]) == size and len(np.unique(sample["a"])) == size
    assert (np.diff(sample["a"]) > 0).all() and (sample["b"] == -sample["a"]).all()  # rows stay whole
    # uniform: each tenth of the stream holds about a tenth of the sample (binomial sd ~13)
    counts = np.bincount(sample["a"] * 10 // n, minlength=10)
    assert (abs(counts - size / 10) < 80).all(), counts
    again = sample_rows(_batches(columns, 1000), size)  # same seed, other batching: same keys per row
    assert (again["a"] == sample["a"]).all()
    assert not (sample_rows(_batches(columns, 4096), size, seed=1)["a"] == sample["a"]).all()


def test_figures_fit_on_a_capped_sample_and_score_every_eval_row(monkeypatch):
    rng = np.random.default_rng(1)
    y = (rng.random(3000) < 0.3).astype(np.int64)  # a clear majority: the sample's is the same
    train = {"label": y, "signal": y * 2 + rng.integers(0, 2, 3000)}
    evaluation = {"label": y[:1000], "signal": train["signal"][:1000]}
    whole = baseline_figures(_batches(train, 256), _batches(evaluation, 256), "label", ["signal"])
    assert whole["train_rows_fitted"] == 3000 and whole["eval_examples"] == 1000
    assert whole["one_feature_rule"] == {"feature": "signal", "train_accuracy": 1.0, "accuracy": 1.0}
    monkeypatch.setattr(baselines, "TRAIN_SAMPLE_ROWS", 500)
    capped = baseline_figures(_batches(train, 256), _batches(evaluation, 256), "label", ["signal"])
    assert capped["train_rows_fitted"] == 500 and capped["eval_examples"] == 1000
    assert capped["one_feature_rule"]["accuracy"] == 1.0
    assert capped["majority_class"]["accuracy"] == whole["majority_class"]["accuracy"]
