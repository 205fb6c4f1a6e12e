"""The extension, bundled with a small text model, scores like the SavedModel.

A small model built here (statement text + party and state inputs) uses the
same op families as the real text models (regex normalisation, whitespace
split, hashing, embeddings, constant-initialised vocabulary tables, a wide sum
and a deep concatenation of per-feature vectors), so the extension's plumbing
(bundling, the statement-only specialisation, TF.js in the service worker,
selection and page paths) is tested in seconds, independently of any pipeline
run. Both bundles (the Trainer's TF.js export as is, and its statement-only
specialisation) must give the SavedModel's scores with the metadata missing.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from edge import browser_extension
from tests.extension.conftest import drive_extension

# Node (TF.js) and Chromium run as child processes.
pytestmark = pytest.mark.integration

STATEMENTS = [
    "Says the state budget grew by 40 percent in four years.",
    "Unemployment is at its LOWEST level since 1969!",
    "We have cut taxes for 95 percent of working families.",
    "The governor vetoed the bill twice, citing costs.",
    "\"Crime went up 300%\" -- according to the mailer.",
    "Über-rich donors fund both campaigns equally, she said.",
]
BUCKETS = 97
SIGNATURE = {"statement": tf.TensorSpec([None], tf.string, name="statement"),
             "party": tf.TensorSpec([None], tf.string, name="party"),
             "state": tf.TensorSpec([None], tf.string, name="state")}
CLASSES = ["pants-fire", "false", "barely-true", "half-true", "mostly-true", "true"]


class TinyTextModel(tf.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = tf.Variable(tf.random.stateless_normal([BUCKETS, 8], seed=[1, 2]))
        self.party_embeddings = tf.Variable(tf.random.stateless_normal([3, 8], seed=[3, 4]))
        self.state_embeddings = tf.Variable(tf.random.stateless_normal([3, 4], seed=[7, 8]))
        self.weights = tf.Variable(tf.random.stateless_normal([8 + 8 + 4, 6], seed=[5, 6]))
        self.parties = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(["democrat", "republican"]),
                                                tf.constant([0, 1], tf.int64)), default_value=2)
        self.states = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(["ohio", "texas"]),
                                                tf.constant([0, 1], tf.int64)), default_value=2)

    @tf.function(input_signature=[SIGNATURE])
    def serve(self, inputs):
        """The SavedModel's signature: raw text, lower-cased in the graph."""
        return self.edge({**inputs, "statement": tf.strings.lower(inputs["statement"])})

    @tf.function(input_signature=[SIGNATURE])
    def edge(self, inputs):
        """The TF.js export: lower-cased text in (TF.js has no StringLower), and
        only lower-case regex patterns (TF.js lower-cases the patterns it loads)."""
        text = tf.strings.regex_replace(inputs["statement"], "[^a-z0-9]+", " ")
        tokens = tf.compat.v1.string_split(text, " ")
        ids = tf.strings.to_hash_bucket_fast(tokens.values, BUCKETS)
        n = tf.shape(inputs["statement"])[0]
        rows = tokens.indices[:, 0]
        # Per-row sums as a membership matmul: TF.js has no UnsortedSegmentSum, and
        # its OneHot refuses depth 1 (a single statement).
        membership = tf.cast(tf.equal(rows[:, None], tf.range(tf.cast(n, tf.int64))[None, :]), tf.float32)
        summed = tf.matmul(membership, tf.gather(self.embeddings, ids), transpose_a=True)
        counts = tf.reduce_sum(membership, axis=0)
        text_vector = summed / tf.maximum(counts, 1.0)[:, None]
        party = tf.gather(self.party_embeddings, self.parties.lookup(inputs["party"]))
        state = tf.gather(self.state_embeddings, self.states.lookup(inputs["state"]))
        # A wide sum and a deep concatenation: the two ways metadata meets the text.
        features = tf.concat([text_vector + party, party, state], axis=1)
        return {"outputs": tf.nn.softmax(tf.matmul(features, self.weights))}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tensorflowjs.converters import tf_saved_model_conversion_v2

    base = tmp_path_factory.mktemp("tiny")
    model_dir = str(base / "1")
    edge_dir = os.path.join(model_dir, browser_extension.EDGE_SAVED_MODEL_SUBDIR)
    module = TinyTextModel()
    tf.saved_model.save(module, model_dir, signatures={"serving_default": module.serve})
    tf.saved_model.save(module, edge_dir, signatures={"serving_default": module.edge})
    tfjs_dir = os.path.join(model_dir, browser_extension.TFJS_SUBDIR)
    tf_saved_model_conversion_v2.convert_tf_saved_model(
        edge_dir, tfjs_dir, signature_def="serving_default", saved_model_tags="serve")
    return model_dir, tfjs_dir


def saved_model_scores(model_dir, statements):
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    missing = tf.constant([""] * len(statements))
    return serve(statement=tf.constant(statements), party=missing, state=missing)["outputs"].numpy()


def _config(model_dir):
    return {"model": "tiny", "model_version": "1", "text_feature": "statement", "ascii_lowercase": True,
            "inputs": browser_extension.signature_inputs(model_dir), "classes": CLASSES}


def test_signature_inputs_are_read_from_the_saved_model(tiny_model):
    model_dir, _ = tiny_model
    assert browser_extension.signature_inputs(model_dir) == [
        {"name": "party", "dtype": "string"}, {"name": "state", "dtype": "string"},
        {"name": "statement", "dtype": "string"}]


def test_bundle_refuses_a_model_without_tfjs_export(tmp_path):
    with pytest.raises(browser_extension.ExtensionBuildError, match="model.json"):
        browser_extension.bundle(str(tmp_path / "ext"), str(tmp_path / "none"), {})


def _bundle(kind, model_dir, tfjs_dir, out_dir):
    if kind == "full":
        return browser_extension.bundle(out_dir, tfjs_dir, _config(model_dir))
    return browser_extension.bundle_statement_only(out_dir, model_dir, _config(model_dir))


@pytest.mark.parametrize("kind", ["full", "statement_only"])
def test_extension_scores_equal_the_saved_model(kind, tiny_model, tmp_path):
    model_dir, tfjs_dir = tiny_model
    extension = _bundle(kind, model_dir, tfjs_dir, str(tmp_path / "extension"))
    assert json.load(open(os.path.join(extension, "manifest.json")))["manifest_version"] == 3

    result = drive_extension(extension, STATEMENTS, tmp_path)
    expected = saved_model_scores(model_dir, STATEMENTS)

    page = np.array([r["raw"] for r in result["page"]])
    np.testing.assert_allclose(page, expected, atol=1e-4)
    np.testing.assert_allclose(result["selection"]["raw"], expected[0], atol=1e-4)
    assert result["selection"]["label"] == CLASSES[int(np.argmax(expected[0]))]
    assert result["latency"]["median_ms"] > 0


def test_statement_only_bundle_reads_only_the_statement(tiny_model, tmp_path):
    """The bundled graph has no metadata input left, and the config says what it was made from."""
    model_dir, tfjs_dir = tiny_model
    extension = browser_extension.bundle_statement_only(str(tmp_path / "extension"), model_dir,
                                                        _config(model_dir))
    with open(os.path.join(extension, "model", "extension_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert config["inputs"] == [{"name": "statement", "dtype": "string"}]
    made = config["tfjs_model"]
    assert made["kind"] == "statement_only" and made["model_version"] == "1"
    assert made["source"] == browser_extension.EDGE_SAVED_MODEL_SUBDIR
    assert made["fixed_inputs"] == {"party": {"dtype": "string", "value": ""},
                                    "state": {"dtype": "string", "value": ""}}
    assert made["graph_nodes"]["statement_only"] < made["graph_nodes"]["edge_model"]
    edge_dir = os.path.join(model_dir, browser_extension.EDGE_SAVED_MODEL_SUBDIR)
    assert made["source_fingerprint"] == str(
        tf.saved_model.experimental.read_fingerprint(edge_dir).saved_model_checksum)

    def placeholders(path):
        with open(os.path.join(path, "model.json"), encoding="utf-8") as f:
            nodes = json.load(f)["modelTopology"]["node"]
        return {n["name"] for n in nodes if n["op"] == "Placeholder" and n["attr"]["dtype"]["type"] == "DT_STRING"}

    assert placeholders(tfjs_dir) == {"statement", "party", "state"}
    assert placeholders(os.path.join(extension, "model")) == {"statement"}


def test_statement_only_bundle_refuses_a_model_without_edge_saved_model(tmp_path):
    with pytest.raises(browser_extension.ExtensionBuildError, match="edge_saved_model.*--full_model"):
        browser_extension.bundle_statement_only(str(tmp_path / "ext"), str(tmp_path / "none"),
                                                {"text_feature": "statement", "inputs": []})
