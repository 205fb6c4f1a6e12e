"""The gateway's claim-neighbour record: made with the pipeline's code from the index
pushed inside a version, only for rows that lack it (tests/e2e/test_liar_served_record.py
replays a real run through REST)."""
import os

import numpy as np
import pytest

from serving import claim_records
from serving.claim_records import ClaimRecords, index_dir
from trainer.claim_index import RecordSpec, record_tokens, record_value, write_index
from trainer.claim_neighbours import NeighbourIndex, statement_folds

TRAIN = ["The unemployment rate doubled last year.", "Taxes on the middle class went up.",
         "Crime fell by half in the city.", "The state budget grew by 3 percent.",
         "Jobless claims are at a record high.", "Violent crime is rising everywhere."]
LABELS = [0, 1, 0, 1, 0, 1]
SPEC = RecordSpec(column="claim_neighbours", text="statement", separator=",", classes=("false", "true"),
                  k=3, temperature=20.0, repeats=10, folds=5)
QUERY = "Unemployment has doubled."


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    """A pushed version directory holding only the claim index (the SavedModel is not read)."""
    encoder = claim_records._encoder()
    root = str(tmp_path_factory.mktemp("model") / "1")
    os.makedirs(index_dir(root))
    index = NeighbourIndex(encoder.encode(TRAIN), np.array(LABELS), statement_folds(TRAIN, 5), 2)
    write_index(index_dir(root), index, SPEC, encoder.weights_key)
    return root, index, encoder


def test_the_record_is_the_pipelines(version):
    root, index, encoder = version
    records = ClaimRecords.for_version(root)
    expected = record_value(record_tokens(index, SPEC, encoder.encode([QUERY]), [QUERY])[0], ",")
    assert records.values([QUERY, " "]) == [expected, None]
    assert expected.startswith("false") and expected.split(",")[-1].startswith("similarity-")


def test_only_rows_without_a_record_get_one(version):
    records = ClaimRecords.for_version(version[0])
    made = records.values([QUERY])[0]
    rows = [{"statement": QUERY}, {"statement": QUERY, "claim_neighbours": ""},
            {"statement": QUERY, "claim_neighbours": "true,similarity-2"}, {"statement": ""},
            {"b64": "AAAA"}]
    body = {"instances": rows}
    completed = records.complete("predict", body)
    assert [r.get("claim_neighbours") for r in completed["instances"][:4]] == [
        made, made, "true,similarity-2", None]
    assert completed["instances"][4] == {"b64": "AAAA"}
    assert "claim_neighbours" not in rows[0]  # the request's own body is left as sent


def test_columnar_inputs_and_classify_context(version):
    records = ClaimRecords.for_version(version[0])
    made = records.values([QUERY])[0]
    columns = records.complete("predict", {"inputs": {"statement": [QUERY, ""], "party": ["a", "b"]}})
    assert columns["inputs"]["claim_neighbours"] == [made, ""]
    sent = {"inputs": {"statement": [QUERY], "claim_neighbours": ["true"]}}
    assert records.complete("predict", sent) is sent
    examples = records.complete("classify", {"context": {"statement": QUERY}, "examples": [{}, {"party": "x"}]})
    assert [e["claim_neighbours"] for e in examples["examples"]] == [made, made]
    shared = {"context": {"claim_neighbours": "true"}, "examples": [{"statement": QUERY}]}
    assert records.complete("classify", shared) is shared


def test_a_version_without_an_index_is_served_as_sent_and_other_weights_are_refused(version, tmp_path):
    assert ClaimRecords.for_version(str(tmp_path)) is None
    root, index, _ = version
    other = str(tmp_path / "2")
    os.makedirs(index_dir(other))
    write_index(index_dir(other), index, SPEC, "0" * 64)
    with pytest.raises(ValueError, match="built with sentence-encoder weights 000000000000"):
        ClaimRecords.for_version(other)
