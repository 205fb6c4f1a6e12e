"""The claim rule (extension/claims.js) and the lean's interpolation (scorer.js), run in Node.

Why in Node: the extension's own files are what is tested, not a Python copy of them.
"""
import json
import os
import subprocess

import numpy as np
import pytest

from tests.extension.conftest import REPO_ROOT

FIXTURE = os.path.join(REPO_ROOT, "tests", "extension", "fixtures", "non_claims.json")
RUN = """
const Claims = require('./extension/claims.js');
const {StatementScorer} = require('./extension/scorer.js');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify({
  split: input.split.map(Claims.splitSentences),
  explain: input.explain.map(Claims.explain),
  claims: input.claims.map(Claims.claimsOf),
  interpolate: input.interpolate.values.map(
    (v) => StatementScorer.interpolate(v, input.interpolate.x, input.interpolate.y)),
  lean: input.lean.map(([probabilities, lean]) => StatementScorer.leanOf(probabilities, lean)),
}));
"""


def run_node(**inputs) -> dict:
    payload = {"split": [], "explain": [], "claims": [], "interpolate": {"x": [0, 1], "y": [0, 1], "values": []},
               "lean": [], **inputs}
    done = subprocess.run(["node", "-e", RUN], cwd=REPO_ROOT, input=json.dumps(payload), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sentences_split_at_ends_but_not_at_abbreviations_initials_or_decimals():
    text = ("Sen. John F. Kennedy said the U.S. economy grew 3.5 percent in 1961. Mr. Smith disagreed! "
            "\"Taxes rose,\" he said. Was it true? yes, mostly.")
    split, = run_node(split=[text])["split"]
    assert split == ["Sen. John F. Kennedy said the U.S. economy grew 3.5 percent in 1961.",
                     "Mr. Smith disagreed!", "\"Taxes rose,\" he said.", "Was it true? yes, mostly."]


@pytest.mark.parametrize("sentence, reason", [
    ("Says the state budget grew by 40 percent in four years.", "claim"),
    ("Texas leads the nation in uninsured residents.", "claim"),  # a name starts the sentence
    ("We have cut taxes for 95 percent of working families.", "claim"),
    ("Crime is higher than it was under the last mayor.", "claim"),  # a comparison
    ("The insurance commissioner cant do squat about health care in Florida.", "claim"),  # no apostrophe
    ("Read more", "fewer than 4 words"),
    ("Offshore energy policy for Texas and Ohio", "no verb"),
    ("The weather was pleasant and the crowd was large.", "nothing checkable"),
    ("The " + "very " * 80 + "long sentence has 2 numbers.", "too long"),
])
def test_the_rule_needs_length_a_verb_and_something_checkable(sentence, reason):
    explained, = run_node(explain=[sentence])["explain"]
    assert explained["reason"] == reason
    assert explained["claim"] == (reason == "claim")


def test_a_paragraph_keeps_only_its_claim_sentences():
    claims, = run_node(claims=["The weather was pleasant and the crowd was large. The state cut 1,200 "
                               "teaching jobs last year. Thanks for reading!"])["claims"]
    assert claims == ["The state cut 1,200 teaching jobs last year."]


def test_the_non_claim_fixture_is_mostly_dropped():
    with open(FIXTURE, encoding="utf-8") as f:
        sentences = json.load(f)["sentences"]
    claims = run_node(claims=sentences)["claims"]
    kept = [s for s, c in zip(sentences, claims) if c]
    assert len(kept) / len(sentences) <= 0.05, kept


def test_the_extension_interpolates_the_calibration_as_numpy_does():
    x, y = [0.1, 0.25, 0.5, 0.9], [0.05, 0.3, 0.6, 0.97]
    values = np.linspace(-0.1, 1.1, 61).tolist() + x
    got = run_node(interpolate={"x": x, "y": y, "values": values})["interpolate"]
    np.testing.assert_allclose(got, np.interp(values, x, y), atol=1e-12)


def test_the_lean_sums_the_positive_classes_and_says_not_sure_below_the_threshold():
    lean = {"positive_indices": [3, 4, 5], "positive_label": "true", "negative_label": "false",
            "calibration": {"x": [0.0, 1.0], "y": [0.0, 1.0]}, "threshold": 0.65}
    sure, unsure, uncalibrated = run_node(lean=[
        [[0.05, 0.1, 0.1, 0.25, 0.25, 0.25], lean],  # P(true) 0.75
        [[0.1, 0.2, 0.1, 0.2, 0.2, 0.2], lean],  # 0.6: below 0.65
        [[0.5, 0.2, 0.1, 0.1, 0.05, 0.05], dict(lean, calibration=None, threshold=None)],  # 0.2
    ])["lean"]
    assert sure["text"] == "leans true 75 %" and sure["sure"] and sure["side"] == "true"
    assert unsure["text"] == "not sure" and not unsure["sure"] and unsure["side"] == "true"
    assert uncalibrated["text"] == "leans false 80 %" and not uncalibrated["calibrated"]
