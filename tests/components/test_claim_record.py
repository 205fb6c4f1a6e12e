"""ClaimNeighbours' record on LIAR-format rows with the real encoder: out of fold for
training rows, the whole index for other splits, nothing for empty text."""
import pytest
import tensorflow as tf

from common.loader import load_config
from components.claim_record import build_records, record_separator, with_record
from components.tsv_example_gen import parse_line
from testing import liar_fixture
from testing.liar_fixture import LIAR_CONFIG, fixture_overrides
from trainer.claim_neighbours import statement_folds
from trainer.sentence_encoder import SentenceEncoder


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    directory = liar_fixture.write_fixture(str(tmp_path_factory.mktemp("liar_nb")))
    return load_config(LIAR_CONFIG, fixture_overrides(directory))


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder.load()


def _records(cfg, rows):
    return [parse_line("\t".join(r), cfg.data.columns, "fixture").SerializeToString() for r in rows]


def test_training_rows_never_read_their_own_fold(cfg, encoder):
    # each training row's label is the class numbered like its fold, so a class name in a
    # row's record that equals its own fold's class could only come from its own fold
    classes, folds = list(cfg.label.classes), cfg.claim_neighbours.folds
    rows = liar_fixture.rows(150)
    fold_of = statement_folds([r[2] for r in rows], folds)
    for row, fold in zip(rows, fold_of):
        row[1] = classes[fold]
    eval_rows = liar_fixture.rows(30, offset=10_000)
    tokens, index = build_records(cfg, {"train": _records(cfg, rows), "eval": _records(cfg, eval_rows)}, encoder)
    assert len(index.vectors) == 150 and set(index.folds.tolist()) == set(range(folds))
    for row_tokens, fold in zip(tokens["train"], fold_of):
        assert row_tokens and row_tokens[-1].startswith("similarity-")
        assert classes[fold] not in row_tokens[:-1]
    # a new row reads every fold: across the eval rows, every fold's class appears
    seen = {t for row_tokens in tokens["eval"] for t in row_tokens[:-1]}
    assert seen == {classes[f] for f in range(folds)}


def test_a_row_without_text_gets_no_record_and_is_not_indexed(cfg, encoder):
    rows = liar_fixture.rows(20)
    rows[3][2] = ""
    tokens, index = build_records(cfg, {"train": _records(cfg, rows)}, encoder)
    assert tokens["train"][3] == [] and len(index.vectors) == 19
    assert all(t for i, t in enumerate(tokens["train"]) if i != 3)


def test_an_unknown_training_label_and_a_missing_train_split_are_named(cfg, encoder):
    rows = liar_fixture.rows(5)
    rows[2][1] = "mostly-false"
    with pytest.raises(ValueError, match="split train: label 'mostly-false'"):
        build_records(cfg, {"train": _records(cfg, rows)}, encoder)
    with pytest.raises(ValueError, match="no 'train' split among \\['eval'\\]"):
        build_records(cfg, {"eval": _records(cfg, rows)}, encoder)


def test_with_record_joins_the_tokens_replaces_the_column_and_drops_it_when_empty(cfg):
    record = _records(cfg, liar_fixture.rows(1))[0]
    once = with_record(record, "claim_neighbours", ["false", "similarity-3"], ",")
    assert list(tf.train.Example.FromString(once).features.feature["claim_neighbours"].bytes_list.value) == [
        b"false,similarity-3"]
    twice = tf.train.Example.FromString(with_record(once, "claim_neighbours", ["true"], ","))
    assert list(twice.features.feature["claim_neighbours"].bytes_list.value) == [b"true"]
    cleared = tf.train.Example.FromString(with_record(once, "claim_neighbours", [], ","))
    assert "claim_neighbours" not in cleared.features.feature
    assert cleared.features.feature["statement"].bytes_list.value  # the rest is kept
    assert record_separator(cfg) == ","
