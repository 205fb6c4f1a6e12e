"""Model pieces for text-like inputs, feature dropout, and the shared classification figures."""
import numpy as np
import pytest
import tensorflow as tf

from components import classification_metrics as cm
from components.error_analysis import analyse
from components.text_baselines import fit_and_score
from common.loader import load_config
from testing import liar_fixture
from trainer import feature_dropout
from trainer.features import ModelInput
from trainer.model import BagMean, FoldedCrossEntropy, HyperParameters, build_model
from tests.unit.test_liar_config import LIAR_CONFIG

HP = HyperParameters(learning_rate=0.01, hidden_units=16, num_layers=1, embedding_dim=4, dropout=0.0)
INPUTS = [ModelInput("statement_xf", 20, "statement", length=5), ModelInput("party_xf", 3, "party"),
          ModelInput("prior_xf", 0, "prior", width=6), ModelInput("prior_count_xf", 0, "prior")]


def _batch(n=32, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 20, size=(n, 5))
    ids[:4] = 0  # empty bags
    return {"statement_xf": ids, "party_xf": rng.integers(0, 3, size=n),
            "prior_xf": rng.dirichlet(np.ones(6), size=n).astype(np.float32),
            "prior_count_xf": rng.random(n).astype(np.float32)}


def test_bag_mean_ignores_padding_and_empty_bags_are_zero():
    layer = BagMean(5, 2)
    out = layer(tf.constant([[1, 2, 0], [0, 0, 0], [1, 1, 0]], tf.int64)).numpy()
    table = layer.embedding.embeddings.numpy()
    np.testing.assert_allclose(out[0], (table[1] + table[2]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out[1], [0, 0])
    np.testing.assert_allclose(out[2], table[1], rtol=1e-6)


def test_bag_mean_pools_with_one_matmul_not_a_broadcast_product():
    """TF.js's CPU backend runs a broadcast product index by index (the extension's
    latency); the pooling must reach it as a matmul."""
    layer = BagMean(5, 2)
    traced = tf.function(layer).get_concrete_function(tf.TensorSpec([None, 3], tf.int64))
    ops = {op.type for op in traced.graph.get_operations()}
    assert "BatchMatMulV2" in ops and "Mul" not in ops


def test_token_dropout_forgets_ids_in_training_only():
    layer = BagMean(50, 3, token_dropout=0.5)
    ids = tf.constant(np.arange(1, 41).reshape(1, 40), tf.int64)
    inference = layer(ids, training=False).numpy()
    plain = BagMean(50, 3)
    plain(ids)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(inference, plain(ids).numpy(), rtol=1e-6)  # every id kept
    trained = layer(ids, training=True).numpy()
    assert not np.allclose(trained, inference)  # about half of the 40 ids forgotten
    table = layer.embedding.embeddings.numpy()[1:41]
    # what remains is the mean of a subset of the row's embeddings, not a rescaled mean
    assert np.all(trained >= table.min(axis=0) - 1e-6) and np.all(trained <= table.max(axis=0) + 1e-6)
    traced = tf.function(lambda x: layer(x, training=False)).get_concrete_function(
        tf.TensorSpec([None, 40], tf.int64))
    assert "RandomUniform" not in {op.type for op in traced.graph.get_operations()}  # exports unchanged


@pytest.mark.parametrize("num_classes, width", [(6, 6), (2, 1)])
def test_multiclass_and_binary_models_train(num_classes, width):
    model = build_model(INPUTS, HP, num_classes)
    x = _batch()
    y = np.arange(32) % num_classes
    model.fit(x, y, epochs=2, verbose=0)
    out = model.predict(x, verbose=0)
    assert out.shape == (32, width) and np.isfinite(out).all()
    if num_classes > 2:
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_feature_dropout_blanks_a_fixed_share_with_missing_values():
    feats = {"statement_xf": tf.ones([1000, 5], tf.int64), "party_xf": tf.fill([1000], tf.constant(2, tf.int64)),
             "prior_xf": tf.ones([1000, 6])}
    missing = {"party_xf": tf.constant([7], tf.int64), "prior_xf": tf.fill([1, 6], 0.5)}
    ds = tf.data.Dataset.from_tensors((feats, tf.zeros([1000], tf.int64)))

    def run():
        out = feature_dropout.apply_dropout(ds, ["party_xf", "prior_xf"], missing, 0.3, seed=42)
        return next(iter(out))[0]

    first, second = run(), run()
    dropped = first["party_xf"].numpy() == 7
    assert 0.25 < dropped.mean() < 0.35
    np.testing.assert_array_equal(dropped, second["party_xf"].numpy() == 7)  # seeded
    np.testing.assert_array_equal(first["prior_xf"].numpy()[dropped], 0.5)  # same rows, every key
    np.testing.assert_array_equal(first["prior_xf"].numpy()[~dropped], 1.0)
    np.testing.assert_array_equal(first["statement_xf"].numpy(), 1)  # kept


def test_classification_scores_and_binary_fold():
    labels = np.array([0, 1, 2, 3, 4, 5])
    probabilities = np.eye(6)[[0, 1, 1, 3, 5, 5]]
    predictions = cm.predicted_classes(probabilities)
    folded = (cm.positive_probability(probabilities, [3, 4, 5]) > 0.5).astype(int)
    result = cm.scores(labels, predictions, 6, cm.fold(labels, [3, 4, 5]), folded)
    assert result["accuracy"] == pytest.approx(4 / 6) and result["binary_accuracy"] == 1.0
    assert result["confusion_matrix"][2][1] == 1
    assert cm.predicted_classes(np.array([[0.2], [0.7]])).tolist() == [0, 1]
    with pytest.raises(ValueError, match="split eval: label 'maybe' is not one of"):
        cm.class_ids([b"maybe"], liar_fixture.CLASSES, "split eval")


def test_calibration_bins_predicted_against_actual_and_weights_the_gaps():
    p = np.array([0.05, 0.15, 0.15, 0.55, 0.95, 1.0])
    y = np.array([0, 0, 1, 1, 1, 1])
    result = cm.calibration(p, y, bins=10)
    bins = result["bins"]
    assert [b["examples"] for b in bins] == [1, 2, 0, 0, 0, 1, 0, 0, 0, 2]  # 1.0 falls in the last bin
    assert bins[1]["mean_predicted"] == pytest.approx(0.15) and bins[1]["positive_share"] == 0.5
    assert "mean_predicted" not in bins[2]  # an empty bin has no mean
    # gaps: 0.05 (1 row), 0.35 (2), 0.45 (1), 0.025 (2) -> weighted by rows over 6
    assert result["expected_calibration_error"] == pytest.approx((0.05 + 0.7 + 0.45 + 0.05) / 6)
    assert cm.calibration(np.array([0.3, 0.7]), np.array([0, 1]), bins=2)["expected_calibration_error"] == \
        pytest.approx(0.3)


def test_error_analysis_reports_the_calibration_of_the_binary_fold():
    liar_cfg = load_config(LIAR_CONFIG, require_data=False)  # six classes, half-true and above positive
    probabilities = np.array([[0.1, 0.1, 0.1, 0.3, 0.2, 0.2], [0.4, 0.3, 0.1, 0.1, 0.05, 0.05]])
    result = analyse(liar_cfg, probabilities, np.array([4, 0]))
    filled = [b for b in result["calibration"]["bins"] if b["examples"]]
    assert [(round(b["mean_predicted"], 6), b["positive_share"]) for b in filled] == [(0.2, 0.0), (0.7, 1.0)]


def test_text_baselines_on_the_fixture():
    train, test = liar_fixture.rows(300), liar_fixture.rows(100, offset=5000)
    ids = lambda rows: cm.class_ids([r[1] for r in rows], liar_fixture.CLASSES, "x")  # noqa: E731
    result = fit_and_score([r[2] for r in train], ids(train), [r[2] for r in test], ids(test),
                           liar_fixture.CLASSES, [3, 4, 5], seed=0)
    lr, majority = result["tfidf_logistic_regression"], result["majority_class"]
    # the fixture's wording decides the binary label: TF-IDF finds it, the majority cannot
    assert lr["binary_accuracy"] > 0.9 > majority["binary_accuracy"]
    assert 0 <= lr["macro_f1"] <= 1 and majority["predicts"] in liar_fixture.CLASSES


def test_folded_cross_entropy_adds_the_binary_fold_term():
    """Six-way cross-entropy plus weight x the binary cross-entropy of the fold."""
    probabilities = np.array([[0.1, 0.2, 0.1, 0.3, 0.2, 0.1], [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]], np.float32)
    labels = np.array([4, 1])
    loss = FoldedCrossEntropy([3, 4, 5], 0.5, reduction="none")(labels, probabilities).numpy()
    folded = probabilities[:, 3:].sum(axis=1)  # 0.6 and 0.3; row 0 is positive, row 1 not
    expected = -np.log(probabilities[[0, 1], labels]) + 0.5 * -np.log([folded[0], 1 - folded[1]])
    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    assert FoldedCrossEntropy.from_config(FoldedCrossEntropy([3, 4, 5], 0.5).get_config()).weight == 0.5


def test_fold_loss_pulls_the_folded_probability_towards_the_binary_label():
    """Same data, same seed: the fold term makes the model's binary fold surer."""
    x = _batch(64)
    y = np.arange(64) % 6

    def folded_loss(weight):
        tf.keras.utils.set_random_seed(0)
        model = build_model(INPUTS, HP, 6, [3, 4, 5], weight)
        model.fit(x, y, epochs=30, verbose=0)
        p = model.predict(x, verbose=0)[:, 3:].sum(axis=1)
        return float(np.mean(-np.log(np.where(y >= 3, p, 1 - p))))

    assert folded_loss(2.0) < folded_loss(0.0)


def test_weight_averaging_ends_training_on_the_averaged_weights():
    """With weight_averaging, fit ends on the moving average of the weights: the
    last step's raw weights are replaced, so the two runs from one seed differ."""
    x, y = _batch(64), np.arange(64) % 6

    def fitted(weight_averaging):
        tf.keras.utils.set_random_seed(0)
        hp = HyperParameters(0.05, 16, 1, 4, 0.0, weight_averaging=weight_averaging)
        model = build_model(INPUTS, hp, 6)
        model.fit(x, y, batch_size=16, epochs=3, verbose=0)
        return model

    raw, averaged = fitted(0.0), fitted(0.9)
    assert averaged.optimizer.use_ema and not raw.optimizer.use_ema
    differences = [np.abs(a - b).max() for a, b in zip(raw.get_weights(), averaged.get_weights())]
    assert max(differences) > 1e-3
    # the averaged weights trail the raw ones: a smaller step from the initial weights
    tf.keras.utils.set_random_seed(0)
    initial = build_model(INPUTS, HyperParameters(0.05, 16, 1, 4, 0.0), 6).get_weights()
    moved = lambda m: sum(np.abs(w - w0).sum() for w, w0 in zip(m.get_weights(), initial))  # noqa: E731
    assert moved(averaged) < moved(raw)
