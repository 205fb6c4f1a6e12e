"""TsvExampleGen: headerless tab-separated files with named, typed columns.

Custom because TFX's CsvExampleGen cannot read these files: it takes the
column names from a header row (LIAR has none), it parses fields as CSV, so a
statement like ``Says "we won" twice`` is mangled by the quote handling, and
it infers dtypes per run instead of taking them from the config. Here a line
is split on tabs only (quotes are ordinary characters), names and dtypes come
from ``data.columns``, a column with a ``separator`` becomes a multi-valued
feature, and an empty field is a missing value (no value in the tf.Example).

It is TFX's FileBasedExampleGen with its own executor, so splitting by
files, fingerprints/spans, output format and ML Metadata are TFX's own.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import apache_beam as beam
import tensorflow as tf
from google.protobuf import wrappers_pb2
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from common.config import ColumnConfig, PipelineConfig


class TsvFormatError(ValueError):
    """A line does not match the configured columns; names file, line and column."""


def columns_to_json(columns: Sequence[ColumnConfig]) -> str:
    return json.dumps([{"name": c.name, "dtype": c.dtype, "separator": c.separator} for c in columns])


def columns_from_json(text: str) -> List[ColumnConfig]:
    return [ColumnConfig(**c) for c in json.loads(text)]


def _values(raw: str, column: ColumnConfig, where: str) -> List[Any]:
    parts = raw.split(column.separator) if column.separator else [raw]
    parts = [p.strip() for p in parts]
    parts = [p for p in parts if p]
    try:
        if column.dtype == "int":
            return [int(p) for p in parts]
        if column.dtype == "float":
            return [float(p) for p in parts]
    except ValueError:
        raise TsvFormatError(f"{where}: column {column.name!r}: expected {column.dtype} values, "
                             f"got {raw!r}") from None
    return [p.encode("utf-8") for p in parts]


def parse_line(line: str, columns: Sequence[ColumnConfig], where: str) -> tf.train.Example:
    """One TSV line -> tf.Example; an empty field is a missing value."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != len(columns):
        raise TsvFormatError(f"{where}: expected {len(columns)} tab-separated columns "
                             f"({', '.join(c.name for c in columns)}), got {len(fields)}: {line[:80]!r}")
    example = tf.train.Example()
    for column, raw in zip(columns, fields):
        values = _values(raw, column, where)
        feature = example.features.feature[column.name]
        if column.dtype == "int":
            feature.int64_list.value.extend(values)
        elif column.dtype == "float":
            feature.float_list.value.extend(values)
        else:
            feature.bytes_list.value.extend(values)
    return example


def read_lines(path: str) -> Iterable[Tuple[str, int, str]]:
    """(file, line number, line) for each non-blank line of one file."""
    with fileio.open(path, "r") as f:
        for number, line in enumerate(f, start=1):
            line = line.decode("utf-8") if isinstance(line, bytes) else line
            if line.strip():
                yield path, number, line


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _TsvToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                  split_pattern: str) -> beam.pvalue.PCollection:
    """The files of one split -> tf.Examples (a PTransform, as ExampleGen wants)."""
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    files = sorted(fileio.glob(pattern))
    if not files:
        raise TsvFormatError(f"split pattern {pattern} matches no files")
    custom = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], example_gen_pb2.CustomConfig())
    text = wrappers_pb2.StringValue()
    custom.custom_config.Unpack(text)
    columns = columns_from_json(text.value)
    return (pipeline
            | "Files" >> beam.Create(files)
            | "Lines" >> beam.FlatMap(read_lines)
            | "Parse" >> beam.Map(lambda r: parse_line(r[2], columns, f"{r[0]}:{r[1]}")))


class TsvExecutor(BaseExampleGenExecutor):
    """ExampleGen executor for headerless TSV with configured columns."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _TsvToExample


def build_tsv_example_gen(cfg: PipelineConfig) -> FileBasedExampleGen:
    """One output split per configured file (train, eval, and test only when given)."""
    splits = [example_gen_pb2.Input.Split(name=split, pattern=name)
              for split, name in cfg.data.files.items()]
    custom = example_gen_pb2.CustomConfig()
    custom.custom_config.Pack(wrappers_pb2.StringValue(value=columns_to_json(cfg.data.columns)))
    return FileBasedExampleGen(
        input_base=cfg.data_path,
        input_config=example_gen_pb2.Input(splits=splits),
        custom_config=custom,
        custom_executor_spec=executor_spec.BeamExecutorSpec(TsvExecutor),
    ).with_id("TsvExampleGen")
