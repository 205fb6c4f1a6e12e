"""The statement-only specialisation folds the missing inputs' branches and nothing else.

Small tf.Modules with the shapes that matter (a per-row metadata vector added to
and concatenated with the text's, and a metadata tensor that depends on the
batch size) are specialised here in TensorFlow only; the extension tests run
the result in Chromium.
"""
import numpy as np
import pytest
import tensorflow as tf

from edge import statement_only

TEXTS = ["the budget grew", "", "taxes taxes taxes 40 percent"]


def _signature(*names):
    return {name: tf.TensorSpec([None], tf.string, name=name) for name in names}


class TextAndParty(tf.Module):
    """Text hashed into an embedding; a party looked up in a table; summed and concatenated."""

    def __init__(self):
        super().__init__()
        self.words = tf.Variable(tf.random.stateless_normal([31, 4], seed=[1, 1]))
        self.parties = tf.Variable(tf.random.stateless_normal([3, 4], seed=[2, 2]))
        self.weights = tf.Variable(tf.random.stateless_normal([12, 3], seed=[3, 3]))
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(["democrat", "republican"]), tf.constant([0, 1], tf.int64)), default_value=2)

    def text_vector(self, statement):
        tokens = tf.strings.split(statement)
        ids = tf.strings.to_hash_bucket_fast(tokens, 31)
        return tf.reduce_sum(tf.gather(self.words, ids), axis=1)  # dense [n, 4]; 0 for no words

    @tf.function(input_signature=[_signature("statement", "party")])
    def serve(self, inputs):
        text = self.text_vector(inputs["statement"])
        party = tf.gather(self.parties, self.table.lookup(inputs["party"]))
        features = tf.concat([text + party, party, party * 2.0], axis=1)
        return {"outputs": tf.nn.softmax(tf.matmul(features, self.weights))}


class BatchDependent(TextAndParty):
    """A metadata branch whose value depends on how many rows come together."""

    @tf.function(input_signature=[_signature("statement", "party")])
    def serve(self, inputs):
        text = self.text_vector(inputs["statement"])
        crowd = tf.cast(tf.size(inputs["party"]), tf.float32)
        return {"outputs": tf.nn.softmax(tf.matmul(tf.concat([text, text, text * crowd], 1), self.weights))}


def _save(module, path):
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


def test_per_row_constant_accepts_rows_and_batch_independent_values():
    row = np.array([[1.0, 2.0]], np.float32)
    value, per_row = statement_only.per_row_constant("t", [row, np.repeat(row, 2, 0), np.repeat(row, 3, 0)])
    assert per_row and value.shape == (1, 2)
    scalar = np.array(5, np.int32)
    value, per_row = statement_only.per_row_constant("t", [scalar, scalar, scalar])
    assert not per_row and value == 5


def test_per_row_constant_refuses_a_value_that_grows_with_the_batch():
    with pytest.raises(statement_only.SpecialisationError, match="'crowd:0'.*neither one row"):
        statement_only.per_row_constant("crowd:0", [np.float32(1), np.float32(2), np.float32(3)])


def test_specialised_model_equals_the_edge_model_with_missing_party(tmp_path):
    source = _save(TextAndParty(), tmp_path / "edge")
    info = statement_only.specialise(source, "statement", str(tmp_path / "only"))
    assert info.fixed_inputs == {"party": "string"}
    assert info.nodes_after < info.nodes_before and info.max_abs_difference <= statement_only.CHECK_TOLERANCE

    specialised = tf.saved_model.load(str(tmp_path / "only")).signatures["serving_default"]
    assert set(specialised.structured_input_signature[1]) == {"statement"}
    edge = tf.saved_model.load(source).signatures["serving_default"]
    expected = edge(statement=tf.constant(TEXTS), party=tf.constant([""] * len(TEXTS)))["outputs"].numpy()
    got = specialised(statement=tf.constant(TEXTS))["outputs"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # The party table is folded away: nothing in the specialised graph looks anything up.
    ops = {op.type for op in specialised.graph.get_operations()}
    functions = specialised.graph.as_graph_def().library.function
    ops |= {n.op for f in functions for n in f.node_def}
    assert not any(op.startswith("LookupTable") for op in ops), ops


def test_a_batch_dependent_metadata_branch_is_refused(tmp_path):
    source = _save(BatchDependent(), tmp_path / "edge")
    with pytest.raises(statement_only.SpecialisationError, match="neither one row per statement"):
        statement_only.specialise(source, "statement", str(tmp_path / "only"))


def test_an_unknown_text_input_is_named(tmp_path):
    source = _save(TextAndParty(), tmp_path / "edge")
    with pytest.raises(statement_only.SpecialisationError, match="no input 'headline'.*party.*statement"):
        statement_only.specialise(source, "headline", str(tmp_path / "only"))
