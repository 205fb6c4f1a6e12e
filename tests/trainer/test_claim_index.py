"""The claim index on disk: what ClaimNeighbours writes is what the gateway reads."""
import json
import os

import numpy as np
import pytest

from trainer.claim_index import (
    INDEX_FILE,
    PARAMS_FILE,
    RecordSpec,
    read_index,
    record_tokens,
    record_value,
    write_index,
)
from trainer.claim_neighbours import NeighbourIndex

SPEC = RecordSpec(column="claim_neighbours", text="statement", separator=",", classes=("false", "true"),
                  k=2, temperature=20.0, repeats=10, folds=5)


def _index():
    vectors = np.eye(3, dtype=np.float32)
    return NeighbourIndex(vectors, np.array([0, 1, 1]), np.array([0, 1, 2]), 2)


def test_the_index_and_its_settings_round_trip(tmp_path):
    write_index(str(tmp_path), _index(), SPEC, "abc123")
    index, spec, encoder_sha256 = read_index(str(tmp_path))
    assert spec == SPEC and encoder_sha256 == "abc123"
    np.testing.assert_array_equal(index.vectors, _index().vectors)
    np.testing.assert_array_equal(index.labels, [0, 1, 1])
    assert json.load(open(tmp_path / PARAMS_FILE))["classes"] == ["false", "true"]


def test_a_blank_text_gets_no_tokens_and_tokens_join_with_the_separator():
    queries = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    tokens = record_tokens(_index(), SPEC, queries, ["a claim", "  "])
    assert tokens[0][0] == "false" and tokens[0][-1] == "similarity-9" and tokens[1] == []
    assert record_value(["false", "similarity-9"], ",") == "false,similarity-9"


def test_an_incomplete_index_directory_is_named(tmp_path):
    write_index(str(tmp_path), _index(), SPEC, "abc123")
    os.remove(tmp_path / INDEX_FILE)
    with pytest.raises(ValueError, match=f"claim index {tmp_path}: expected index.npz"):
        read_index(str(tmp_path))
