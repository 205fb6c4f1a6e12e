"""trainer.model: bag pooling, token dropout, multi-class and binary heads, the fold loss, weight averaging."""
import numpy as np
import pytest
import tensorflow as tf

from trainer.features import ModelInput
from trainer.model import BagMean, FoldedCrossEntropy, HyperParameters, build_model

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


def test_sqrtn_pooling_divides_the_sum_by_the_root_of_the_count():
    layer = BagMean(5, 2, pooling="sqrtn")
    out = layer(tf.constant([[1, 2, 3, 0], [0, 0, 0, 0], [4, 0, 0, 0]], tf.int64)).numpy()
    table = layer.embedding.embeddings.numpy()
    np.testing.assert_allclose(out[0], (table[1] + table[2] + table[3]) / np.sqrt(3), rtol=1e-6)
    np.testing.assert_allclose(out[1], [0, 0])
    np.testing.assert_allclose(out[2], table[4], rtol=1e-6)
    with pytest.raises(ValueError, match="pooling: expected 'mean' or 'sqrtn', got 'max'"):
        BagMean(5, 2, pooling="max")


def test_wide_bag_pooling_reaches_the_wide_bags_only():
    model = build_model(INPUTS, HyperParameters(0.01, 16, 1, 4, 0.0, wide_bag_pooling="sqrtn"), 6)
    pooling = {layer.name: layer.pooling for layer in model.layers if isinstance(layer, BagMean)}
    assert pooling == {"wide_statement_xf": "sqrtn", "embed_statement_xf": "mean"}


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
