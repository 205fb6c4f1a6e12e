"""The claim-neighbour record: out-of-fold for training rows, weighted by similarity,
and never a row's own label."""
import numpy as np
import pytest

from trainer.claim_neighbours import NeighbourIndex, statement_folds


def _unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


VECTORS = _unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1]])
LABELS = np.array([0, 1, 2, 2, 1])


def test_statement_folds_are_stable_and_equal_for_equal_statements():
    folds = statement_folds(["a claim", "another", "a claim"], 5)
    assert folds[0] == folds[2]
    np.testing.assert_array_equal(folds, statement_folds(["a claim", "another", "a claim"], 5))
    assert set(statement_folds([f"claim {i}" for i in range(200)], 5)) == {0, 1, 2, 3, 4}


def test_a_new_row_reads_every_indexed_row_weighted_by_similarity():
    index = NeighbourIndex(VECTORS, LABELS, np.arange(5), num_classes=3)
    out = index.label_distribution(VECTORS[:1], k=2, temperature=10.0)
    # neighbours: row 0 itself (cos 1, class 0) and row 1 (cos 0.994, class 1)
    cos = float(VECTORS[0] @ VECTORS[1])
    w1 = np.exp(10 * (cos - 1)) / (1 + np.exp(10 * (cos - 1)))
    np.testing.assert_allclose(out[0], [1 - w1, w1, 0.0, 1.0], atol=1e-6)


def test_a_training_row_never_reads_its_own_fold():
    folds = np.array([0, 1, 0, 1, 2])
    index = NeighbourIndex(VECTORS, LABELS, folds, num_classes=3)
    out = index.label_distribution(VECTORS, k=1, temperature=10.0, query_folds=folds)
    # row 0 (fold 0) cannot see itself: its nearest other-fold row is row 1 (class 1)
    np.testing.assert_allclose(out[0, :3], [0, 1, 0])
    assert out[0, 3] == pytest.approx(float(VECTORS[0] @ VECTORS[1]), abs=1e-6)
    # row 2 (fold 0, class 2): its nearest other-fold row is row 3, also class 2
    np.testing.assert_allclose(out[2, :3], [0, 0, 1])
    np.testing.assert_allclose(out[:, :3].sum(axis=1), 1.0, atol=1e-6)


def test_no_usable_neighbour_gives_zeros_and_similarity_minus_one():
    index = NeighbourIndex(VECTORS[:2], LABELS[:2], np.array([0, 0]), num_classes=3)
    out = index.label_distribution(VECTORS[:1], k=5, temperature=10.0, query_folds=np.array([0]))
    np.testing.assert_allclose(out, [[0, 0, 0, -1]])


def test_bad_index_and_bad_k_are_named():
    with pytest.raises(ValueError, match="5 vectors but 4 labels"):
        NeighbourIndex(VECTORS, LABELS[:4], np.arange(5), num_classes=3)
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\)"):
        NeighbourIndex(VECTORS, LABELS, np.arange(5), num_classes=2)
    with pytest.raises(ValueError, match="k must be at least 1"):
        NeighbourIndex(VECTORS, LABELS, np.arange(5), num_classes=3).label_distribution(VECTORS, 0, 1.0)


def test_record_tokens_repeat_labels_by_weight_and_end_with_the_similarity():
    classes = ["false", "half-true", "true"]
    folds = np.array([0, 1, 0, 1, 2])
    index = NeighbourIndex(VECTORS, LABELS, folds, num_classes=3)
    tokens = index.record_tokens(VECTORS[:1], classes, k=2, temperature=1000.0, repeats=4, query_folds=folds[:1])
    # row 0 reads rows 1 (cos 0.994, "half-true") and 3 (cos ~0, "true"): all weight on row 1
    assert tokens == [["half-true"] * 4 + ["similarity-9"]]
    even = index.record_tokens(VECTORS[:1], classes, k=2, temperature=1e-9, repeats=4)
    # near-zero temperature: equal weights, 2 repeats each, nearest first (row 0 itself, then row 1)
    assert even == [["false", "false", "half-true", "half-true", "similarity-9"]]


def test_record_tokens_of_a_row_without_usable_neighbours_are_empty():
    index = NeighbourIndex(VECTORS[:2], LABELS[:2], np.array([0, 0]), num_classes=3)
    assert index.record_tokens(VECTORS[:1], ["a", "b", "c"], 3, 10.0, 5, np.array([0])) == [[]]
