"""Text-like feature kinds: normalisation, tokens and n-grams, multi-valued values,
padded ids, and the out-of-fold label prior (no row's own label reaches its features)."""
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from components.tsv_example_gen import parse_line
from common import executor_config
from common.config import FeatureConfig
from common.loader import load_config
from testing import liar_fixture
from tests.unit.test_liar_config import LIAR_CONFIG, fixture_overrides
from trainer import edge_runtime, features, preprocessing, text_features

TEXT = FeatureConfig("statement", "text", "string", ngrams=(1, 2), max_tokens=6)
MULTI = FeatureConfig("subjects", "multi_categorical", "string", max_tokens=3)
PRIOR = FeatureConfig("speaker_record", "label_prior", "string", source="speaker", fold_key="statement",
                      folds=2, smoothing=1.0)


def _strings(t):
    return [[v.decode() for v in row] for row in t.to_list()]


def test_normalize_lowercases_and_strips_punctuation():
    out = text_features.normalize(tf.constant(['Says "We CUT taxes by 5%," don\'t we?', "  "]))
    assert [s.decode() for s in out.numpy()] == ["says we cut taxes by 5% dont we", ""]


def test_the_typographic_apostrophe_is_the_ascii_one():
    """Pages write don\u2019t; training rows mostly don't. Both are one word, and the edge
    caller's preparation (edge_runtime.ascii_lower, scorer.js) folds it the same way."""
    out = text_features.normalize(tf.constant(["Don\u2019t STOP", "don't stop"]))
    assert [s.decode() for s in out.numpy()] == ["dont stop", "dont stop"]
    caller = edge_runtime.ascii_lower("Don\u2019t STOP \u00c9t\u00e9")
    assert caller == "don't stop \u00c9t\u00e9"
    transform = text_features.ascii_lower(tf.constant(["Don\u2019t STOP \u00c9t\u00e9"]))
    assert transform.numpy()[0].decode() == caller


def _token_rows(feature, column, kind_column, prepare):
    """Each row's tokens in position order, via the kind's column and prepare steps."""
    prepared = prepare(feature, kind_column(feature, column))
    flat, row, position = text_features._feature_tokens(feature, prepared)
    out = [[] for _ in range(int(tf.shape(prepared)[0]))]
    for token, r, p in sorted(zip(flat.numpy(), row.numpy(), position.numpy()), key=lambda t: (t[1], t[2])):
        assert p == len(out[r]), "positions are dense from 0"
        out[r].append(token.decode())
    return out


def test_tokens_with_bigrams_and_missing_text():
    x = tf.SparseTensor([[0, 0], [2, 0]], tf.constant(["Tax cuts work.", "Jobs!"]), [3, 1])
    assert _token_rows(TEXT, x, text_features.text_column, text_features.text_prepare) == [
        ["tax", "cuts", "work", "tax cuts", "cuts work"], [], ["jobs"]]


def test_multi_values_split_inside_values_and_drop_blanks():
    x = tf.SparseTensor([[0, 0], [0, 1], [1, 0]], tf.constant(["Economy, jobs", "taxes", " ,"]), [3, 2])
    assert _token_rows(MULTI, x, text_features.multi_column, text_features.multi_prepare) == [
        ["economy", "jobs", "taxes"], [], []]


def test_lowercasing_is_ascii_only_as_at_the_edge():
    """Transform lower-cases A-Z only: what scorer.js does before the TF.js model."""
    out = text_features.ascii_lower(tf.constant(["ÉCOLE Kelvin \u212a İ"]))
    assert out.numpy()[0].decode() == "École kelvin \u212a İ"


def test_padded_ids_shift_by_one_and_truncate():
    ids = tf.constant([0, 4, 2, 9, 1], tf.int64)
    row = tf.constant([0, 0, 0, 0, 2], tf.int64)
    position = tf.constant([0, 1, 2, 3, 0], tf.int64)
    out = text_features.padded_ids(ids, row, position, tf.constant(3, tf.int64), 3).numpy()
    assert out.tolist() == [[1, 5, 3], [0, 0, 0], [2, 0, 0]]


def test_lookup_finds_keys_and_defaults_to_zero():
    keys = tf.constant([30, 10, 20], tf.int64)
    out = text_features.lookup(keys, tf.constant([3, 1, 2], tf.int64), tf.constant([[20, 5], [30, 10]], tf.int64))
    assert out.numpy().tolist() == [[2, 0], [3, 1]]
    empty = text_features.lookup(tf.zeros([0], tf.int64), tf.zeros([0], tf.int64), tf.constant([7], tf.int64))
    assert empty.numpy().tolist() == [0]


def _analyzed(rows):
    """What the analyzer computes, from (speaker, statement, label) training rows."""
    keys = text_features.prior_keys(PRIOR, tf.constant([r[0] for r in rows]),
                                    text_features.fold_key_hash(tf.constant([r[1] for r in rows])),
                                    tf.constant([r[2] for r in rows])).numpy()
    uniq, counts = np.unique(keys, return_counts=True)
    return {"keys": tf.constant(uniq), "counts": tf.constant(counts, tf.int64)}


def _prior(rows, queries, classes=("false", "true")):
    analyzed = _analyzed(rows)
    value = tf.constant([q[0] for q in queries])
    key_hash = text_features.fold_key_hash(tf.constant([q[1] for q in queries]))
    return text_features.apply_label_prior(PRIOR, classes, value, key_hash, analyzed)


TRAIN = [("ann", f"statement {i}", "true" if i % 3 else "false") for i in range(12)] + [
    ("bob", "bob said it", "false")]


def test_training_rows_see_only_other_folds():
    out = _prior(TRAIN, [(s, t) for s, t, _ in TRAIN])
    counts = np.expm1(out["speaker_record_count_xf"].numpy())
    folds = text_features.fold_key_hash(tf.constant([t for _, t, _ in TRAIN])).numpy() % PRIOR.folds
    ann_folds = folds[:12]
    for i in range(12):  # ann's rows: the count is the size of the other fold
        assert counts[i] == pytest.approx(np.sum(ann_folds != ann_folds[i]))
    assert counts[12] == pytest.approx(0.0)  # bob's only row is in its own fold
    assert out["speaker_record_seen_xf"].numpy()[12] == 0


def test_own_label_never_reaches_a_training_row():
    flipped = list(TRAIN)
    flipped[4] = (flipped[4][0], flipped[4][1], "false" if flipped[4][2] == "true" else "true")
    fold_of = text_features.fold_key_hash(tf.constant([t for _, t, _ in TRAIN])).numpy() % PRIOR.folds
    same_fold = [i for i in range(12) if fold_of[i] == fold_of[4]]
    before = _prior(TRAIN, [(s, t) for s, t, _ in TRAIN])["speaker_record_xf"].numpy()
    after = _prior(flipped, [(s, t) for s, t, _ in TRAIN])["speaker_record_xf"].numpy()
    for i in same_fold:  # the flipped row and its fold mates are unchanged (class prior aside)
        np.testing.assert_allclose(before[i], after[i], atol=0.03)
    # a non-training request sees every training row, the flipped label included
    full_before = _prior(TRAIN, [("ann", "a new statement")])["speaker_record_count_xf"].numpy()
    assert np.expm1(full_before[0]) == pytest.approx(12)


def test_unknown_or_blank_speaker_gets_the_overall_prior():
    out = _prior(TRAIN, [("zed", "new"), ("", "other")])
    prior = out["speaker_record_xf"].numpy()
    np.testing.assert_allclose(prior[0], prior[1])
    np.testing.assert_allclose(prior.sum(axis=1), [1.0, 1.0], atol=1e-6)
    assert out["speaker_record_count_xf"].numpy().tolist() == [0.0, 0.0]


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    directory = liar_fixture.write_fixture(str(tmp_path_factory.mktemp("liar")), train_rows=40)
    cfg = load_config(LIAR_CONFIG, fixture_overrides(directory))
    spec = features.raw_feature_spec(cfg)
    rows = []
    for line in liar_fixture.TRICKY + liar_fixture.rows(40):
        parsed = tf.io.parse_single_example(parse_line("\t".join(line), cfg.data.columns, "x").SerializeToString(),
                                            spec)
        rows.append({k: v.values.numpy().tolist() for k, v in parsed.items()})
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    fn = lambda inputs: preprocessing.preprocessing_fn(inputs, executor_config.transform(cfg))  # noqa: E731
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(), force_tf_compat_v1=False):
        (out, _), _ = ((rows, metadata) | tft_beam.AnalyzeAndTransformDataset(fn, output_record_batches=False))
    return cfg, out


def test_preprocessing_fn_outputs_for_liar(transformed):
    cfg, out = transformed
    assert [r["truth_xf"] for r in out[:3]] == [5, 1, 3]  # true, false, half-true: six-way ids
    first = out[0]
    assert first["statement_xf"].shape == (64,) and first["subjects_xf"].shape == (8,)
    assert (first["subjects_xf"][:2] > 0).all() and (first["subjects_xf"][2:] == 0).all()
    assert (out[1]["job_xf"] == 0).all()  # empty job: an empty bag
    assert first["speaker_record_xf"].shape == (6,)
    assert abs(first["speaker_record_xf"].sum() - 1) < 1e-5


def test_binary_fold_label(tmp_path):
    directory = liar_fixture.write_fixture(str(tmp_path))
    cfg = load_config(LIAR_CONFIG, fixture_overrides(directory) + ["label.fold_to_binary=true"])
    label = preprocessing.make_label(cfg.label, {"label": tf.constant(
        ["pants-fire", "false", "barely-true", "half-true", "mostly-true", "true"])})
    assert label.numpy().tolist() == [0, 0, 0, 1, 1, 1]
