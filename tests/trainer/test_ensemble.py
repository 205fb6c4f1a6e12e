"""The fused ensemble is exactly the mean of its members' logits, in one member's graph."""
import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.test_model import INPUTS, _batch
from trainer.ensemble import merge_members
from trainer.features import ModelInput
from trainer.model import HyperParameters, build_model

HP2 = HyperParameters(learning_rate=0.05, hidden_units=8, num_layers=2, embedding_dim=4, dropout=0.2)


def _members(inputs, hparams, num_classes, count=3):
    x, y = _batch(64), np.arange(64) % num_classes
    members = []
    for seed in range(count):
        tf.keras.utils.set_random_seed(seed)
        model = build_model(inputs, hparams, num_classes)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        members.append(model)
    return members, x


def _logits(probabilities, num_classes):
    if num_classes == 2:
        return np.log(probabilities) - np.log1p(-probabilities)
    return np.log(probabilities)  # softmax logits up to a per-row constant


@pytest.mark.parametrize("num_classes", [6, 2])
@pytest.mark.parametrize("hparams", [HP2, HyperParameters(0.05, 8, 1, 4, 0.0),
                                     HyperParameters(0.05, 8, 2, 4, 0.2, wide_bag_pooling="sqrtn")])
def test_merged_model_outputs_the_mean_of_member_logits(num_classes, hparams):
    members, x = _members(INPUTS, hparams, num_classes)
    merged = merge_members(members, INPUTS, hparams, num_classes)
    got = merged.predict(x, verbose=0)
    mean_logits = np.mean([_logits(m.predict(x, verbose=0), num_classes) for m in members], axis=0)
    if num_classes == 2:
        expected = 1 / (1 + np.exp(-mean_logits))
    else:
        expected = np.exp(mean_logits) / np.exp(mean_logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # and it is not simply one of the members
    assert min(np.abs(got - m.predict(x, verbose=0)).max() for m in members) > 1e-4


def test_merged_model_has_a_single_members_layers():
    members, _ = _members(INPUTS, HP2, 6)
    merged = merge_members(members, INPUTS, HP2, 6)
    assert [type(layer).__name__ for layer in merged.layers] == [type(layer).__name__ for layer in members[0].layers]
    assert merged.get_layer("deep_0").units == 3 * HP2.hidden_units


def test_merge_without_dense_inputs_and_with_one_member():
    inputs = [ModelInput("statement_xf", 20, "statement", length=5), ModelInput("party_xf", 3, "party")]
    members, x = _members(inputs, HP2, 6, count=2)
    x = {k: v for k, v in x.items() if k in ("statement_xf", "party_xf")}
    merged = merge_members(members, inputs, HP2, 6)
    mean_logits = np.mean([np.log(m.predict(x, verbose=0)) for m in members], axis=0)
    expected = np.exp(mean_logits) / np.exp(mean_logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(merged.predict(x, verbose=0), expected, atol=1e-5)
    single = merge_members(members[:1], inputs, HP2, 6)
    np.testing.assert_allclose(single.predict(x, verbose=0), members[0].predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="no members"):
        merge_members([], inputs, HP2, 6)
