"""The extension, bundled with a small text model, scores like the SavedModel.

It also shows what a reader trusts (issue 19), on a page with non-claims: the
calibrated lean or "not sure" per claim sentence, headings, navigation,
captions and chatter left alone, and feedback sent only once a gateway URL was
entered on the options page (to a local server that records requests).

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
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from edge import browser_extension
from edge.calibration import Calibration, Lean, apply
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


# Page furniture and chatter around the statements: only the claim sentence of #mixed is scored.
NON_CLAIM_HTML = """
<h1 id="heading">Budget grew 40 percent in 2016, the governor says</h1>
<nav id="nav"><ul><li>Home</li><li>Politics: the Senate voted 52 to 48 on the bill</li></ul></nav>
<figure><img alt=""><figcaption id="caption">Governor Smith signed the bill in Ohio in 2019.</figcaption></figure>
<p id="mixed">The weather was pleasant and the crowd was large. The state cut 1,200 teaching jobs last year.
Thanks for reading!</p>
<p id="chatter">Sign up for our newsletter</p>
<p id="pleasant">It was a lovely evening, and everyone seemed to have a good time.</p>
"""
MIXED_CLAIM = "The state cut 1,200 teaching jobs last year."
POSITIVE = [3, 4, 5]  # half-true, mostly-true, true


def lean_text(probability_true: float, threshold: float) -> str:
    """What scorer.js shows (Math.round, not Python's round-half-even)."""
    confidence = max(probability_true, 1 - probability_true)
    side = "true" if probability_true >= 0.5 else "false"
    return f"leans {side} {math.floor(confidence * 100 + 0.5)} %" if confidence >= threshold else "not sure"


def test_page_shows_a_calibrated_lean_on_claims_and_sends_feedback_only_when_opted_in(tiny_model, tmp_path):
    model_dir, tfjs_dir = tiny_model
    statements = STATEMENTS + [MIXED_CLAIM]
    p_true = saved_model_scores(model_dir, statements)[:, POSITIVE].sum(axis=1)
    calibration = Calibration(x=[0.0, 0.3, 0.6, 1.0], y=[0.05, 0.3, 0.75, 0.95])
    confidences = sorted(np.maximum(apply(calibration, p_true), 1 - apply(calibration, p_true)), reverse=True)
    assert confidences[2] - confidences[3] > 1e-3, "the tiny model must give distinct confidences"
    threshold = float((confidences[2] + confidences[3]) / 2)  # three verdicts shown, four "not sure"
    lean = Lean(calibration=calibration, threshold=threshold, target_precision=0.7, folds=2, rows=100)
    config = dict(_config(model_dir), lean=browser_extension.lean_section(POSITIVE, CLASSES, lean))
    extension = browser_extension.bundle(str(tmp_path / "extension"), tfjs_dir, config)

    result = drive_extension(extension, {"statements": STATEMENTS, "extra_html": NON_CLAIM_HTML,
                                         "feedback": True}, tmp_path)

    verdicts = {v["statement"]: v for v in result["verdicts"]}
    assert sorted(verdicts) == sorted(statements), "only claim sentences get a verdict"
    assert verdicts[MIXED_CLAIM]["in"] == "mixed"
    calibrated = apply(calibration, p_true)
    for statement, probability in zip(statements, calibrated):
        shown = verdicts[statement]
        assert shown["probability_true"] == pytest.approx(probability, abs=1e-4)
        assert shown["text"] == lean_text(probability, threshold)
        sure = shown["text"] != "not sure"
        assert shown["lean"] == (("true" if probability >= 0.5 else "false") if sure else "unsure")
        assert shown["buttons"] == (2 if sure else 0)
    assert sum(v["text"] == "not sure" for v in verdicts.values()) == 4
    assert "pants-fire" in result["details"] and "%" in result["details"]

    feedback = result["feedback"]
    assert feedback["off"] == {"state": "not-sent", "requests": 0}, "no gateway URL: nothing leaves"
    assert feedback["popup_off"]["state"] == "off" and "nothing leaves" in feedback["popup_off"]["text"]
    assert feedback["saved"] == "on" and feedback["popup_on"]["state"] == "on"
    assert feedback["popup_on"]["text"].count(feedback["gateway"]) == 1
    assert feedback["on"]["state"] == "sent"
    assert len(feedback["received"]) == 1, feedback["received"]
    request = feedback["received"][0]
    assert (request["method"], request["path"]) == ("POST", "/v1/models/tiny/feedback")
    assert request["content_type"] == "application/json"
    sure = [s for s in statements if verdicts[s]["text"] != "not sure"]
    body = request["body"]
    assert body["statement"] == sure[1] and body["answer"] == "wrong"
    assert (body["model"], body["model_version"]) == ("tiny", "1")
    assert body["lean"] == verdicts[sure[1]]["lean"]
    assert body["probability"] == pytest.approx(verdicts[sure[1]]["probability_true"], abs=1e-9)
