"""ExampleGen (hash split, or spans split by time), the curated schema and the data gate."""
from __future__ import annotations

import hashlib
from typing import List, Optional

from tfx import types
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from common import executor_config
from common.config import PipelineConfig
from components.accepted_statistics import build_accepted_statistics_resolver
from components.anomalies_gate import AnomaliesGate, thresholds_json
from components.csv_example_gen import CsvExampleGen
from components.span_inputs import build_span_example_gen, build_span_window_resolver
from components.span_window_gen import build_span_window_example_gen
from components.tfx_api import tfx
from components.time_split import TimeSplit
from components.tsv_example_gen import build_tsv_example_gen

PREPROCESSING_FN = "trainer.preprocessing.preprocessing_fn"


def build_example_gen(cfg: PipelineConfig, span_range=None):
    """By ``data.format``: CSV split by hash buckets (or the newest span, with ``data.spans``),
    or TSV with splits from files. ``span_range`` (Kubeflow, a runtime parameter): the whole
    span window from the files, ending at that span (components.span_window_gen)."""
    if cfg.data.format == "tsv":
        return build_tsv_example_gen(cfg)
    if cfg.data.spans.pattern and span_range is not None:
        return build_span_window_example_gen(cfg, span_range)
    if cfg.data.spans.pattern:
        return build_span_example_gen(cfg)
    splits = [tfx.proto.SplitConfig.Split(name=name, hash_buckets=buckets)
              for name, buckets in cfg.data.splits.items()]
    return CsvExampleGen(
        input_base=cfg.data_path,
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=splits)))


class _CuratedSchemaSpec(standard_component_specs.ImportSchemaGenSpec):
    PARAMETERS = {**standard_component_specs.ImportSchemaGenSpec.PARAMETERS,
                  "schema_sha256": ExecutionParameter(type=str)}


class CuratedImportSchemaGen(ImportSchemaGen):
    """TFX's ImportSchemaGen (its own executor) with the file's SHA-256 as one more
    parameter, which the executor ignores.

    Why: a component's cache key is its inputs and parameters, and ImportSchemaGen's
    only parameter is the file's path, so after an edit to the curated schema a
    rerun in the same pipeline root reused the old copy and validated the data
    against the schema as it was. With the digest, an edit is a new import."""

    SPEC_CLASS = _CuratedSchemaSpec

    def __init__(self, schema_file: str, schema_sha256: str):
        spec = _CuratedSchemaSpec(schema_file=schema_file, schema_sha256=schema_sha256,
                                  schema=types.Channel(type=standard_artifacts.Schema))
        super(ImportSchemaGen, self).__init__(spec=spec)


def file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def build_schema_importer(cfg: PipelineConfig, schema_sha256: Optional[str] = None) -> ImportSchemaGen:
    """The reviewed schema from schema/<dataset>/, not an inferred one. ``schema_sha256``
    defaults to the file's digest; a caller compiling for another file system (Kubeflow:
    the path is the image's) passes the digest of the same file on this host."""
    digest = schema_sha256 or file_sha256(cfg.schema_path)
    return CuratedImportSchemaGen(cfg.schema_path, digest).with_id("ImportSchemaGen")


def build_time_split(cfg: PipelineConfig, example_gen) -> List:
    """The span window from ML Metadata and TimeSplit: eval = newest span, train = the ones before."""
    window = build_span_window_resolver(cfg, example_gen)
    return [window, TimeSplit(spans=window.outputs["spans"])]


def build_data_validation(cfg: PipelineConfig, statistics, schema) -> List:
    """ExampleValidator, the last accepted statistics, and the gate that stops the run on any
    anomaly, empty split or drift from them (the gate is last)."""
    validator = tfx.components.ExampleValidator(statistics=statistics, schema=schema)
    accepted = build_accepted_statistics_resolver()
    gate = AnomaliesGate(anomalies=validator.outputs["anomalies"], statistics=statistics, schema=schema,
                         previous_statistics=accepted.outputs["accepted_statistics"],
                         thresholds=thresholds_json(cfg.validation))
    return [validator, accepted, gate]


def build_transform(cfg: PipelineConfig, examples, validated_schema) -> tfx.components.Transform:
    return tfx.components.Transform(
        examples=examples, schema=validated_schema,
        preprocessing_fn=PREPROCESSING_FN, custom_config=executor_config.transform(cfg),
        # StatisticsGen already profiles the raw data; Transform's own pre/post
        # statistics would double the Beam work for figures nobody reads here.
        disable_statistics=True)
