"""CsvExampleGen whose memory does not grow with the data: TFX's component, its own executor.

Why custom: on Beam's DirectRunner, TFX 1.16's CSV ExampleGen held the whole
dataset in the process: ``bench/scale_bench.py`` measured its peak at 4.6 GB
for 1.5 M taxi rows, above every other component (2.8-3.1 GB). Two places:

* its write step (``tfx/components/example_gen/write_split.py``) runs
  ``beam.Reshuffle()`` before ``WriteToTFRecord``, and DirectRunner holds a
  GroupByKey's whole input in memory: every serialized example of a split.
  On a distributed runner the shuffle spreads the writes over workers and
  goes through disk, so it is kept there; on DirectRunner (one machine, the
  local runs) the examples are written in the order they are read instead,
  which also makes the files the same on every run (the shuffle was unseeded).
* its CSV reader parses the lines once and reads the parsed lines twice, to
  infer the column types (a ``CombineGlobally`` used as a side input) and to
  build the examples; a PCollection read by two stages, one waiting for a side
  input computed from it, is held whole until the second stage runs. Here
  each pass reads the files itself: pass one parses and infers the types with
  TFX's own ``ColumnTypeInferrer``, pass two parses again and converts with
  TFX's own ``_ParsedCsvToTfExample``, streaming.

Measured alone on the 1.5 M-row taxi file, DirectRunner in_memory, one process
(``docs/benchmarks.md#scale``): TFX's executor 324 s and 5.01 GB peak RSS;
without the shuffle 335 s and 1.88 GB; two passes with the shuffle 334 s and
4.79 GB; two passes without it (this executor on DirectRunner) 299 s and
0.88 GB, the process's size before it reads anything. The examples are TFX's, record for record
(``tests/components/test_csv_example_gen.py``); splitting, fingerprints, spans
and ML Metadata are TFX's ``FileBasedExampleGen``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

import apache_beam as beam
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from tfx import types
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx.components.util import examples_utils
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils
from tfx_bsl.coders import csv_decoder


def _parsed_lines(pipeline: beam.Pipeline, csv_files: list, label: str) -> beam.PCollection:
    """TFX's read and parse steps (header skipped, multi-line records kept whole)."""
    return (pipeline
            | f"CreateFilenames[{label}]" >> beam.Create(csv_files)
            | f"ReadFromText[{label}]" >> beam.ParDo(tfx_csv._ReadCsvRecordsFromTextFile())  # pylint: disable=protected-access
            | f"ParseCSVLine[{label}]" >> beam.ParDo(csv_decoder.ParseCSVLine(delimiter=","))
            | f"ExtractParsedCSVLines[{label}]" >> beam.Keys())


@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
class _TwoPassCsvToExample(beam.PTransform):
    """CSV files -> tf.Examples, reading the files once per pass (see the module doc)."""

    def __init__(self, exec_properties: Dict[str, Any], split_pattern: str) -> None:
        super().__init__()
        self._csv_pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                                         split_pattern)

    def expand(self, pipeline: beam.Pipeline) -> beam.PCollection:
        csv_files = fileio.glob(self._csv_pattern)
        if not csv_files:
            raise RuntimeError(f"Split pattern {self._csv_pattern} does not match any files.")
        column_names = io_utils.load_csv_column_names(csv_files[0])
        for csv_file in csv_files[1:]:
            if io_utils.load_csv_column_names(csv_file) != column_names:
                raise RuntimeError(f"Files in same split {self._csv_pattern} have different header: "
                                   f"{csv_file} differs from {csv_files[0]}.")
        column_infos = beam.pvalue.AsSingleton(
            _parsed_lines(pipeline, csv_files, "infer")
            | "InferColumnTypes" >> beam.CombineGlobally(
                csv_decoder.ColumnTypeInferrer(column_names, skip_blank_lines=True)))
        return (_parsed_lines(pipeline, csv_files, "convert")
                | "ToTFExample" >> beam.ParDo(tfx_csv._ParsedCsvToTfExample(), column_infos))  # pylint: disable=protected-access


class TwoPassCsvExecutor(BaseExampleGenExecutor):
    """TFX's CSV executor with the two-pass read, and on DirectRunner the write without the
    shuffle (see the module doc)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _TwoPassCsvToExample

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """TFX's ``Do``, except that on DirectRunner each split is written in the order read.

        Anything else than tf.Examples in TFRecords (Parquet, another payload) and any
        other runner take TFX's own ``Do`` unchanged."""
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
        payload = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if (not runs_on_direct_runner(self._beam_pipeline_args)
                or file_format not in (None, example_gen_pb2.FILE_FORMAT_UNSPECIFIED,
                                       example_gen_pb2.FORMAT_TFRECORDS_GZIP)
                or payload not in (None, example_gen_pb2.FORMAT_TF_EXAMPLE)):
            super().Do(input_dict, output_dict, exec_properties)
            return
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        output_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
        outputs = output_dict[standard_component_specs.EXAMPLES_KEY]
        artifact_utils.get_single_instance(outputs).split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config))
        with self._make_beam_pipeline() as pipeline:
            for split_name, examples in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                _ = examples | f"WriteSplit[{split_name}]" >> _WriteSplitInOrder(
                    artifact_utils.get_split_uri(outputs, split_name))
        for artifact in outputs:
            if payload:
                examples_utils.set_payload_format(artifact, payload)
            if file_format:
                examples_utils.set_file_format(artifact, write_split.to_file_format_str(file_format))


@beam.ptransform_fn
def _WriteSplitInOrder(examples: beam.PCollection, output_split_path: str) -> beam.pvalue.PDone:  # noqa: N802
    """TFX's ``WriteSplit`` (same files, same names) without its ``Reshuffle``."""
    return (examples
            | "MaybeSerialize" >> beam.ParDo(write_split.MaybeSerialize())
            | "Write" >> beam.io.WriteToTFRecord(
                os.path.join(output_split_path, write_split.DEFAULT_FILE_NAME), file_name_suffix=".gz"))


def runs_on_direct_runner(beam_pipeline_args: List[str]) -> bool:
    """True when these Beam arguments run on DirectRunner (Beam's default without ``--runner``)."""
    runner = PipelineOptions(list(beam_pipeline_args)).view_as(StandardOptions).runner
    return runner is None or str(runner).lower() in ("direct", "directrunner", "switchingdirectrunner",
                                                     "bundlebaseddirectrunner")


class CsvExampleGen(FileBasedExampleGen):
    """TFX's ``CsvExampleGen`` (same parameters and outputs) on ``TwoPassCsvExecutor``."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(TwoPassCsvExecutor)
