"""The two-pass CsvExampleGen: the same tf.Examples as TFX's executor, no parsed line held
for a second reader, and errors that name the files."""
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx.types import standard_component_specs as specs

from components.csv_example_gen import CsvExampleGen, TwoPassCsvExecutor, _TwoPassCsvToExample, runs_on_direct_runner
from testing.example_gen_run import run_csv_executor

HEADER = "trip_miles,company,payment_type,trip_seconds,note\n"
# Quoted commas, a quoted field over two lines, empty cells, an int column with one float
# (inferred as float), a column that is empty in every row (no feature at all).
ROWS = ['1.55,"Flash Cab, Inc.",Cash,300,\n', '0.05,,Credit Card,61.5,\n',
        '2.25,"Two\nLines",Cash,,\n'] + [f"{i / 10},C{i % 7},Cash,{60 + i},\n" for i in range(60)]


def write_csv(directory, name, rows, header=HEADER):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as f:
        f.write(header + "".join(rows))


def run_executor(executor_class, input_base, out, ordered=False):
    run_csv_executor(executor_class, input_base, out, pattern="*.csv")
    read = list if ordered else sorted
    return {split: read(canonical(record) for record in tf.data.TFRecordDataset(
                sorted(tf.io.gfile.glob(os.path.join(out, f"Split-{split}", "*.gz"))), "GZIP").as_numpy_iterator())
            for split in ("train", "eval")}


def canonical(record):
    """The record with its feature map in a fixed order (protobuf maps serialize in any order)."""
    return tf.train.Example.FromString(record).SerializeToString(deterministic=True)


def test_the_examples_and_splits_are_tfx_own_record_for_record(tmp_path):
    data = str(tmp_path / "data")
    write_csv(data, "a.csv", ROWS[:30])
    write_csv(data, "b.csv", ROWS[30:])
    ours = run_executor(TwoPassCsvExecutor, data, str(tmp_path / "ours"))
    theirs = run_executor(tfx_csv.Executor, data, str(tmp_path / "tfx"))
    assert ours == theirs
    assert sum(len(records) for records in ours.values()) == len(ROWS)
    parsed = [tf.train.Example.FromString(r) for records in ours.values() for r in records]
    two_lines = next(e for e in parsed if e.features.feature["company"].bytes_list.value == [b"Two\nLines"])
    assert "trip_seconds" not in two_lines.features.feature or not two_lines.features.feature[
        "trip_seconds"].float_list.value  # an empty cell is a missing value
    assert all(e.features.feature["trip_seconds"].WhichOneof("kind") in (None, "float_list") for e in parsed)


def test_on_direct_runner_each_split_keeps_the_order_of_the_file_and_runs_repeat_exactly(tmp_path):
    """No shuffle held in memory: the examples are written as read (TFX's shuffle would
    scramble them differently on every run)."""
    data = str(tmp_path / "data")
    write_csv(data, "a.csv", ROWS)
    first = run_executor(TwoPassCsvExecutor, data, str(tmp_path / "one"), ordered=True)
    assert first == run_executor(TwoPassCsvExecutor, data, str(tmp_path / "two"), ordered=True)
    order = {float(np.float32(i / 10)): i for i in range(60)}  # trip_miles of the generated rows
    for records in first.values():
        miles = [tf.train.Example.FromString(r).features.feature["trip_miles"].float_list.value[0]
                 for r in records]
        positions = [order[m] for m in miles if m in order]
        assert len(positions) > 10 and positions == sorted(positions)


@pytest.mark.parametrize("args, direct", [
    ([], True), (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], True),
    (["--runner=DirectRunner"], True), (["--runner=DataflowRunner", "--project=p", "--region=r"], False),
    (["--runner=FlinkRunner", "--flink_master=localhost:8081"], False), (["--runner", "SparkRunner"], False),
])
def test_the_shuffle_is_skipped_only_on_direct_runner(args, direct):
    assert runs_on_direct_runner(args) is direct


def _readers_of_parsed_lines(transform_class, input_base):
    """How many transforms read each PCollection of parsed CSV lines (the outputs of the
    ``ExtractParsedCSVLines`` steps, TFX's label, kept here) in a pipeline's graph."""
    pipeline = beam.Pipeline()
    _ = pipeline | transform_class({specs.INPUT_BASE_KEY: input_base}, "*.csv")
    transforms = pipeline.to_runner_api().components.transforms
    parsed = {pcollection for t in transforms.values() if "ExtractParsedCSVLines" in t.unique_name
              for pcollection in t.outputs.values()}
    return [sum(1 for t in transforms.values() if not t.subtransforms and pcollection in t.inputs.values())
            for pcollection in parsed]


def test_no_parsed_line_is_read_by_two_stages_unlike_tfx(tmp_path):
    """What bounded memory rests on: a PCollection with two readers, one of them waiting for
    a side input computed from it, is held whole by the runner."""
    data = str(tmp_path / "data")
    write_csv(data, "a.csv", ROWS)
    assert _readers_of_parsed_lines(_TwoPassCsvToExample, data) == [1, 1]
    assert _readers_of_parsed_lines(tfx_csv._CsvToExample, data) == [2]  # what this avoids


def test_files_with_different_headers_are_named(tmp_path):
    data = str(tmp_path / "data")
    write_csv(data, "a.csv", ROWS[:5])
    write_csv(data, "b.csv", ROWS[5:10], header="x,y,z,w,v\n")
    with pytest.raises(RuntimeError, match=r"different header: .*b\.csv differs from .*a\.csv"):
        with beam.Pipeline() as pipeline:
            _ = pipeline | _TwoPassCsvToExample({specs.INPUT_BASE_KEY: data}, "*.csv")


def test_a_pattern_without_files_is_named(tmp_path):
    with pytest.raises(RuntimeError, match=r"nothing\*\.csv does not match any files"):
        with beam.Pipeline() as pipeline:
            _ = pipeline | _TwoPassCsvToExample({specs.INPUT_BASE_KEY: str(tmp_path)}, "nothing*.csv")


def test_the_pipeline_builds_it_under_tfx_component_id(taxi_config):
    from components.data import build_example_gen

    component = build_example_gen(taxi_config)
    assert isinstance(component, CsvExampleGen) and component.id == "CsvExampleGen"
    assert component.executor_spec.executor_class is TwoPassCsvExecutor
