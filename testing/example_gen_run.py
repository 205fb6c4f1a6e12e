"""One CSV ExampleGen executor run directly, outside a pipeline: the splits of the taxi config
(train 2 hash buckets, eval 1) from every file of a directory.

Shared by ``bench/example_gen_memory.py`` (TFX's executor against ours on 1.5 M rows) and
``tests/components/test_csv_example_gen.py`` (the same examples, record for record).
"""
import os
from typing import Sequence

from google.protobuf import json_format
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

SPLITS = (("train", 2), ("eval", 1))


def run_csv_executor(executor_class: type, input_base: str, out: str, pattern: str = "*",
                     beam_pipeline_args: Sequence[str] = ("--direct_num_workers=1",)) -> None:
    """``executor_class`` (a CSV ExampleGen executor) over ``<input_base>/<pattern>`` into ``out``."""
    examples = standard_artifacts.Examples()
    examples.uri = out
    props = {
        specs.INPUT_BASE_KEY: input_base,
        specs.INPUT_CONFIG_KEY: json_format.MessageToJson(example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=pattern)])),
        specs.OUTPUT_CONFIG_KEY: json_format.MessageToJson(example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(splits=[
                example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets) for name, buckets in SPLITS]))),
        specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
    }
    context = BaseBeamExecutor.Context(beam_pipeline_args=list(beam_pipeline_args),
                                       tmp_dir=os.path.join(out, ".tmp"), unique_id="1")
    executor_class(context).Do({}, {specs.EXAMPLES_KEY: [examples]}, props)
