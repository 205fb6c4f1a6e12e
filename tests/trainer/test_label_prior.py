"""``label_prior``: the out-of-fold label record (no row's own label reaches its features)."""
import numpy as np
import pytest
import tensorflow as tf

from common.config import FeatureConfig
from trainer.kinds import label_prior

PRIOR = FeatureConfig("speaker_record", "label_prior", "string", source="speaker", fold_key="statement",
                      folds=2, smoothing=1.0)


def test_lookup_finds_keys_and_defaults_to_zero():
    keys = tf.constant([30, 10, 20], tf.int64)
    out = label_prior.lookup(keys, tf.constant([3, 1, 2], tf.int64), tf.constant([[20, 5], [30, 10]], tf.int64))
    assert out.numpy().tolist() == [[2, 0], [3, 1]]
    empty = label_prior.lookup(tf.zeros([0], tf.int64), tf.zeros([0], tf.int64), tf.constant([7], tf.int64))
    assert empty.numpy().tolist() == [0]


def _analyzed(rows):
    """What the analyzer computes, from (speaker, statement, label) training rows."""
    keys = label_prior.prior_keys(PRIOR, tf.constant([r[0] for r in rows]),
                                    label_prior.fold_key_hash(tf.constant([r[1] for r in rows])),
                                    tf.constant([r[2] for r in rows])).numpy()
    uniq, counts = np.unique(keys, return_counts=True)
    return {"keys": tf.constant(uniq), "counts": tf.constant(counts, tf.int64)}


def _prior(rows, queries, classes=("false", "true")):
    analyzed = _analyzed(rows)
    value = tf.constant([q[0] for q in queries])
    key_hash = label_prior.fold_key_hash(tf.constant([q[1] for q in queries]))
    return label_prior.apply_label_prior(PRIOR, classes, value, key_hash, analyzed)


TRAIN = [("ann", f"statement {i}", "true" if i % 3 else "false") for i in range(12)] + [
    ("bob", "bob said it", "false")]


def test_training_rows_see_only_other_folds():
    out = _prior(TRAIN, [(s, t) for s, t, _ in TRAIN])
    counts = np.expm1(out["speaker_record_count_xf"].numpy())
    folds = label_prior.fold_key_hash(tf.constant([t for _, t, _ in TRAIN])).numpy() % PRIOR.folds
    ann_folds = folds[:12]
    for i in range(12):  # ann's rows: the count is the size of the other fold
        assert counts[i] == pytest.approx(np.sum(ann_folds != ann_folds[i]))
    assert counts[12] == pytest.approx(0.0)  # bob's only row is in its own fold
    assert out["speaker_record_seen_xf"].numpy()[12] == 0


def test_own_label_never_reaches_a_training_row():
    flipped = list(TRAIN)
    flipped[4] = (flipped[4][0], flipped[4][1], "false" if flipped[4][2] == "true" else "true")
    fold_of = label_prior.fold_key_hash(tf.constant([t for _, t, _ in TRAIN])).numpy() % PRIOR.folds
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
