"""TsvExampleGen: tabs only (quotes are text), named and typed columns, missing fields,
multi-valued columns, and errors that name the file, line and column."""
import os

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from google.protobuf import wrappers_pb2
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from common.config import ColumnConfig
from components.tsv_example_gen import TsvFormatError, _TsvToExample, build_tsv_example_gen, columns_to_json, parse_line
from testing import liar_fixture

COLUMNS = [ColumnConfig("id", "string"), ColumnConfig("label", "string"), ColumnConfig("statement", "string"),
           ColumnConfig("subjects", "string", ","), ColumnConfig("speaker", "string"),
           ColumnConfig("job", "string"), ColumnConfig("state", "string"), ColumnConfig("party", "string")] + [
    ColumnConfig(c, "int") for c in liar_fixture.COLUMNS[8:13]] + [ColumnConfig("context", "string")]


def _values(example, name):
    feature = example.features.feature[name]
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def test_quotes_are_text_and_empty_fields_are_missing():
    example = parse_line("\t".join(liar_fixture.TRICKY[1]), COLUMNS, "train.tsv:2")
    assert _values(example, "statement") == [b'Says "the moon is made of cheese," he insists.']
    assert _values(example, "job") == [] and _values(example, "state") == [] and _values(example, "context") == []
    assert _values(example, "false_count") == [4]


def test_separator_makes_a_multi_valued_feature_and_strips_blanks():
    example = parse_line("\t".join(liar_fixture.TRICKY[2]), COLUMNS, "train.tsv:3")
    assert _values(example, "subjects") == [b"economy", b"jobs"]


def test_wrong_column_count_names_file_line_and_columns():
    with pytest.raises(TsvFormatError, match=r"train.tsv:7: expected 14 tab-separated columns .*got 3"):
        parse_line("a\tb\tc", COLUMNS, "train.tsv:7")


def test_bad_number_names_the_column():
    row = list(liar_fixture.TRICKY[0])
    row[9] = "many"
    with pytest.raises(TsvFormatError, match=r"x.tsv:1: column 'false_count': expected int values, got 'many'"):
        parse_line("\t".join(row), COLUMNS, "x.tsv:1")


def test_ptransform_reads_every_line_of_a_split(tmp_path):
    directory = liar_fixture.write_fixture(str(tmp_path), train_rows=10, eval_rows=4)
    custom = example_gen_pb2.CustomConfig()
    custom.custom_config.Pack(wrappers_pb2.StringValue(value=columns_to_json(COLUMNS)))
    props = {standard_component_specs.INPUT_BASE_KEY: directory,
             standard_component_specs.CUSTOM_CONFIG_KEY: proto_utils.proto_to_json(custom)}

    def check(examples):
        assert len(examples) == 13  # 3 tricky rows + 10 generated, no header skipped
        statements = sorted(_values(e, "statement")[0] for e in examples)
        assert any(b'"we cut taxes by 5%"' in s for s in statements)

    with beam.Pipeline() as p:
        assert_that(p | _TsvToExample(props, "train.tsv"), check)


def test_builder_makes_one_split_per_file(tmp_path):
    from common.loader import load_config
    from testing.liar_fixture import LIAR_CONFIG, fixture_overrides

    directory = liar_fixture.write_fixture(str(tmp_path))
    open(os.path.join(directory, "test.tsv"), "w").write(open(os.path.join(directory, "valid.tsv")).read())
    cfg = load_config(LIAR_CONFIG, fixture_overrides(directory) + ["data.files.test=test.tsv"])
    component = build_tsv_example_gen(cfg)
    splits = component.exec_properties[standard_component_specs.INPUT_CONFIG_KEY]
    parsed = proto_utils.json_to_proto(splits, example_gen_pb2.Input())
    assert [(s.name, s.pattern) for s in parsed.splits] == [
        ("train", "train.tsv"), ("eval", "valid.tsv"), ("test", "test.tsv")]
    assert component.id == "TsvExampleGen"
