"""ExampleGen, statistics, the curated schema and the data gate."""
from __future__ import annotations

from tfx import v1 as tfx

from components.anomalies_gate import AnomaliesGate
from components.tsv_example_gen import build_tsv_example_gen
from pipeline.config import PipelineConfig

PREPROCESSING_FN = "trainer.preprocessing.preprocessing_fn"


def build_example_gen(cfg: PipelineConfig):
    """By ``data.format``: CSV split by hash buckets, or TSV with splits from files."""
    if cfg.data.format == "tsv":
        return build_tsv_example_gen(cfg)
    splits = [tfx.proto.SplitConfig.Split(name=name, hash_buckets=buckets)
              for name, buckets in cfg.data.splits.items()]
    return tfx.components.CsvExampleGen(
        input_base=cfg.data_path,
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=splits)))


def build_schema_importer(cfg: PipelineConfig) -> tfx.components.ImportSchemaGen:
    """The reviewed schema from schema/<dataset>/, not an inferred one."""
    return tfx.components.ImportSchemaGen(schema_file=cfg.schema_path)


def build_data_validation(statistics, schema):
    """ExampleValidator plus the gate that stops the run on any anomaly."""
    validator = tfx.components.ExampleValidator(statistics=statistics, schema=schema)
    gate = AnomaliesGate(anomalies=validator.outputs["anomalies"], schema=schema)
    return validator, gate


def build_transform(cfg: PipelineConfig, examples, validated_schema) -> tfx.components.Transform:
    return tfx.components.Transform(
        examples=examples, schema=validated_schema,
        preprocessing_fn=PREPROCESSING_FN, custom_config=cfg.transform_custom_config(),
        # StatisticsGen already profiles the raw data; Transform's own pre/post
        # statistics would double the Beam work for figures nobody reads here.
        disable_statistics=True)
