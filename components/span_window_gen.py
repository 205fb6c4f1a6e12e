"""The span window in one ExampleGen, for Kubeflow: the newest span is eval, the ones before it train.

Why a second way to the window: locally the window is read back from ML
Metadata (components.span_inputs: a SpanRangeStrategy resolver, then
TimeSplit), but Kubeflow's v2 compiler has no resolver for a span range (it
compiles only latest-artifact and latest-blessed-model queries). Here the
window comes from the files instead. It is TFX's FileBasedExampleGen with its
own driver, so the span the run evaluates on is ExampleGen's ``range_config``,
which Kubeflow takes as a runtime parameter: a RangeConfig JSON with a static
range, or empty for the newest span on disk. The driver resolves that span
(and its newest ``{VERSION}``) and fingerprints its files before KFP's cache
check, so a new span is never served from the cache. The executor reads the
``train_spans`` spans before it from ``data.path`` into the train split, with
TFX's own CSV reader, and records the window on the artifact the way TimeSplit
does (components.time_split.record_window).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Union

import apache_beam as beam
from google.protobuf import wrappers_pb2
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen import utils
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from common.config import PipelineConfig
from components.csv_example_gen import TwoPassCsvExecutor
from components.span_inputs import EXAMPLE_GEN_ID, newest_span_files
from components.time_split import SpanWindowError, record_window

TRAIN, EVAL = "train", "eval"
# The Kubeflow runtime parameter: ExampleGen's own range_config, as RangeConfig JSON.
RANGE_PARAMETER = "range_config"


def range_parameter() -> data_types.RuntimeParameter:
    """The span the run evaluates on, set per run (empty: the newest span on disk)."""
    return data_types.RuntimeParameter(name=RANGE_PARAMETER, ptype=str, default="")


def default_parameters(cfg: PipelineConfig) -> Dict[str, str]:
    """Runtime parameter values of a run that names no span: with ``data.spans``, the range
    left empty, so it evaluates on the newest span on disk (ExampleGen's default)."""
    return {RANGE_PARAMETER: ""} if cfg.data.spans.pattern else {}


def span_range_json(span: int) -> str:
    """The runtime parameter's value for a run that evaluates on ``span``."""
    return proto_utils.proto_to_json(range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span)))


def window(data_path: str, pattern: str, eval_span: int, train_spans: int) -> Dict[int, List[str]]:
    """Span -> files (newest versions) of the spans on disk numbered ``eval_span - train_spans``
    to ``eval_span - 1``: a rolling range by span number, as the local SpanRangeStrategy's."""
    on_disk = newest_span_files(data_path, pattern)
    older = sorted(s for s in on_disk if eval_span - train_spans <= s < eval_span)
    if not older:
        raise SpanWindowError(
            f"{EXAMPLE_GEN_ID}: a split by time needs a span to train on within data.spans.train_spans "
            f"({train_spans}) spans before the eval span {eval_span}, but {os.path.join(data_path, pattern)} "
            f"matches span(s) {sorted(on_disk)}")
    return {s: on_disk[s] for s in older}


class SpanWindowExecutor(TwoPassCsvExecutor):
    """The two-pass CsvExampleGen executor with a train split of the spans before the driver's span."""

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                               exec_properties: Dict[str, Any]) -> Dict[str, beam.pvalue.PCollection]:
        data_path = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        train = self._train_window  # Do's, so the spans read are the spans recorded
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        # the driver has already put the eval span's number (and version) into the patterns
        eval_pattern = {s.name: s.pattern for s in input_config.splits}[EVAL]
        read = self.GetInputSourceToExamplePTransform()
        parts = [pipeline | f"Read[{TRAIN}][span-{span}]" >> read(
            exec_properties, os.path.relpath(path, data_path)) for span, files in train.items() for path in files]
        return {TRAIN: parts | f"Flatten[{TRAIN}]" >> beam.Flatten(),
                EVAL: pipeline | f"Read[{EVAL}]" >> read(exec_properties, eval_pattern)}

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        """Resolves the window once: GenerateExamplesByBeam (inside ``super().Do``) reads it and
        the artifact records it."""
        settings = _settings(exec_properties)
        eval_span = int(exec_properties[utils.SPAN_PROPERTY_NAME])
        self._train_window = window(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                                    settings["pattern"], eval_span, settings["train_spans"])
        super().Do(input_dict, output_dict, exec_properties)
        train = sorted(self._train_window)
        version = exec_properties.get(utils.VERSION_PROPERTY_NAME)
        versions = {s: {"version": -1, "artifact_id": None} for s in train}
        versions[eval_span] = {"version": -1 if version is None else int(version), "artifact_id": None}
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        record_window(examples, eval_span, train, versions)


def _settings(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
    """The span pattern and the window size, from the component's custom config."""
    custom = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], example_gen_pb2.CustomConfig())
    text = wrappers_pb2.StringValue()
    custom.custom_config.Unpack(text)
    return json.loads(text.value)


def build_span_window_example_gen(
        cfg: PipelineConfig,
        range_config: Union[range_config_pb2.RangeConfig, data_types.RuntimeParameter, None] = None
) -> FileBasedExampleGen:
    """ExampleGen of the window ending at ``range_config``'s span (None: the newest on disk)."""
    pattern = cfg.data.spans.pattern
    custom = example_gen_pb2.CustomConfig()
    custom.custom_config.Pack(wrappers_pb2.StringValue(value=json.dumps(
        {"pattern": pattern, "train_spans": cfg.data.spans.train_spans})))
    return FileBasedExampleGen(
        input_base=cfg.data_path,
        # both splits name the span pattern so that the driver resolves it; the executor
        # then reads the train split from the spans before the eval span
        input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name=name, pattern=pattern)
                                                   for name in (TRAIN, EVAL)]),
        custom_config=custom,
        range_config=range_config,
        custom_executor_spec=executor_spec.BeamExecutorSpec(SpanWindowExecutor),
    ).with_id(EXAMPLE_GEN_ID)
