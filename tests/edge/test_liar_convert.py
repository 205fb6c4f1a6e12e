"""LIAR's text kinds at the edge: TF.js and TFLite give the SavedModel's outputs.

A tiny six-way model is trained in-process on the invented LIAR-format rows of
testing/liar_fixture.py (Transform through tft_beam, a few Keras epochs) and
exported with ``components.trainer_run.export_model``, which writes the edge files. The
rows that follow add the corners the edge graph must get exactly right:
capitals, quotes and curly apostrophes, digits, $ and %, non-ASCII letters
(some that Unicode would lower-case to ASCII), blank and padded metadata,
unseen speakers and subjects.
"""
import base64
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from common.loader import load_config
from components.tsv_example_gen import parse_line
from edge import runtime
from edge.signature import read_signature
from testing import liar_fixture
from testing.edge_model import assert_edge_transform_matches, train_and_export_instances
from testing.liar_fixture import LIAR_CONFIG, fixture_overrides
from trainer import features

TOLERANCE = 1e-4
CORNERS = [
    'Says "WE cut TAXES by 5%," and it\u2019s TRUE; don\'t you KNOW?',
    "\u00c9COLE funding rose 12% in \u0130stanbul and \u212aansas \u2014 na\u00efve claims!",
    "   $1,000,000 \t spent\non   nothing   ",
    "", "!!!", "Tax cuts work.", "ann SAYS the tax rate secretly \"rose by 7 percent.\"",
]


def _record(line):
    """A stand-in claim-neighbour record (the column the ClaimNeighbours component adds;
    here only its path through Transform and the edge graphs matters)."""
    return f"{line[1]},{line[1]},similarity-{len(line[2]) % 10}"


def _instances(cfg, lines):
    spec = features.raw_feature_spec(cfg)
    out = []
    for i, line in enumerate(lines):
        example = parse_line("\t".join(line), cfg.data.columns, f"row {i}").SerializeToString()
        parsed = tf.io.parse_single_example(example, spec)
        out.append({k: v.values.numpy().tolist() for k, v in parsed.items()})
        out[-1][cfg.claim_neighbours.column] = [_record(line).encode()]
    return out


def _serving_rows(cfg, lines):
    """What a serving_default client sends: one string per column, "" when missing."""
    index = {c.name: i for i, c in enumerate(cfg.data.columns)}
    return [{name: line[index[name]] if name in index else _record(line)
             for name in features.serving_feature_dtypes(cfg)} for line in lines]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("liar_edge"))
    directory = liar_fixture.write_fixture(os.path.join(root, "data"), train_rows=150)
    cfg = load_config(LIAR_CONFIG, fixture_overrides(directory) + ["trainer.embedding_dim=8"])
    train = liar_fixture.TRICKY + liar_fixture.rows(150)
    model_dir, tft_output, _ = train_and_export_instances(cfg, root, _instances(cfg, train), epochs=4)
    return cfg, model_dir, tft_output, {line[2] for line in train}


@pytest.fixture(scope="module")
def rows(trained):
    cfg, _, _, train_statements = trained
    # distinct from every training statement (the fixture's wording repeats)
    base = [dict(r, statement=f"{r['statement']} Check {i}.") for i, r in
            enumerate(_serving_rows(cfg, liar_fixture.rows(50, offset=10_000)))]
    corners = [dict(base[i % len(base)], statement=text) for i, text in enumerate(CORNERS)]
    corners += [dict(base[0], subjects=" Economy , JOBS ,\u00e9conomie,", speaker=" ann-lee "),
                dict(base[1], speaker="Nobody-Known", party="GREEN", state="\u00cele-de-France"),
                {name: "" for name in base[0]}]
    # A statement seen in training is a training row to serving_default (out-of-fold speaker
    # counts); the edge has no row ids and always uses the full counts: compare the others.
    return [r for r in base if r["statement"] not in train_statements] + corners


def test_rows_cover_the_corners(trained, rows):
    assert len(rows) >= 40
    assert any(r["statement"] != runtime.ascii_lower(r["statement"]) for r in rows)
    assert any(ord(c) > 127 for r in rows for c in r["statement"])


def test_tflite_and_tfjs_match_the_saved_model(trained, rows):
    _, model_dir, _, _ = trained
    reference = runtime.saved_model(model_dir, rows).outputs
    assert reference.shape == (len(rows), 6)
    assert reference.std(axis=0).max() > 0.01  # the model says something, so equality means something
    for run in (runtime.tflite, runtime.tfjs):
        got = run(model_dir, rows).outputs
        assert got.shape == reference.shape
        worst = int(np.argmax(np.abs(got - reference).max(axis=1)))
        assert np.abs(got[worst] - reference[worst]).max() <= TOLERANCE, (
            f"{run.__name__}: row {worst} {rows[worst]}: {got[worst]} vs SavedModel {reference[worst]}")


def test_single_row_calls_match_batched_calls(trained, rows):
    _, model_dir, _, _ = trained
    batched = runtime.tfjs(model_dir, rows[-12:]).outputs
    single = runtime.tfjs(model_dir, rows[-12:], single=True)
    np.testing.assert_allclose(single.outputs, batched, atol=TOLERANCE)


def test_edge_transform_equals_transform_graph(trained, rows):
    """Each transformed feature: the edge graph on lower-cased inputs vs the Transform graph."""
    cfg, model_dir, tft_output, _ = trained
    # statement/fold key of a serving row: never a training row here (see the rows fixture)
    got = assert_edge_transform_matches(cfg, model_dir, tft_output, rows)
    assert (got["statement_xf"].numpy() > 0).sum(axis=1).max() > 10  # words and bigrams were found


def test_signature_marks_the_lowercased_inputs_and_the_ops(trained):
    cfg, model_dir, _, _ = trained
    signature = read_signature(model_dir)
    lowered = sorted(i["name"] for i in signature["inputs"] if i["ascii_lowercase"])
    assert lowered == ["claim_neighbours", "context", "job", "statement", "subjects"]
    assert [i["name"] for i in signature["inputs"]] == list(features.serving_feature_dtypes(cfg))
    with open(os.path.join(model_dir, "assets.extra", "tfjs", "model.json")) as f:
        topology = json.load(f)["modelTopology"]
    nodes = topology["node"] + [n for fn in topology.get("library", {}).get("function", [])
                                for n in fn.get("nodeDef", [])]
    ops = {node["op"] for node in nodes}
    assert not ops & {"StringLower", "StringStrip", "ReduceJoin", "AsString", "StringLength",
                      "UnsortedSegmentSum", "InitializeTableFromTextFileV2", "ParseExampleV2"}
    patterns = [n["attr"]["pattern"]["s"] for n in nodes if n["op"] == "StaticRegexReplace"]
    assert patterns, "the text normalisation runs in the graph"
    # the converter reads patterns lower-cased and as Latin-1: only lower-case ASCII matches there
    decoded = [base64.b64decode(p) for p in patterns]
    assert all(p.isascii() and p == p.lower() for p in decoded), decoded
