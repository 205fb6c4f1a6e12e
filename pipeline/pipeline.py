"""``create_pipeline(config)``: the one definition of the DAG, read top to bottom.

Runners (pipeline.local_runner, kubeflow.runner) only choose the pipeline
root, the metadata store and the Beam arguments.
"""
from __future__ import annotations

import json
from typing import List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration.data_types import RuntimeParameter

from common import executor_config
from common.config import PipelineConfig
from components.baselines import TrivialBaselines
from components.claim_record import ClaimNeighbours
from components.data import (
    build_data_validation,
    build_example_gen,
    build_schema_importer,
    build_time_split,
    build_transform,
)
from components.error_analysis import ErrorAnalysis
from components.evaluation import build_baseline_model_resolver, build_evaluator
from components.infra_validation import build_infra_validator
from components.pusher import build_pusher
from components.text_baselines import TextBaselines
from components.tfx_api import tfx
from components.training import build_last_hyperparameters_resolver, build_trainer, build_tuner
from trainer import features


def create_pipeline(cfg: PipelineConfig, pipeline_root: str,
                    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
                    beam_pipeline_args: Optional[List[str]] = None,
                    tune: Optional[bool] = None, schema_sha256: Optional[str] = None,
                    span_range: Optional[RuntimeParameter] = None) -> tfx.dsl.Pipeline:
    """The full DAG for one dataset config; ``tune`` overrides ``tuner.enabled``;
    ``schema_sha256``: the curated schema's digest when its path is not on this host;
    ``span_range`` (Kubeflow, which cannot resolve a span window from ML Metadata): the
    runtime parameter naming the eval span, the window then read from the files."""
    tune = cfg.tuner.enabled if tune is None else tune

    example_gen = build_example_gen(cfg, span_range)
    examples = example_gen.outputs["examples"]
    # Spans: the newest ingested span is the eval split, the train_spans before it the train split.
    time_split = build_time_split(cfg, example_gen) if cfg.data.spans.pattern and span_range is None else []
    if time_split:
        examples = time_split[-1].outputs["examples"]
    # Columns derived from other rows' labels are added before anything reads the data
    # (its own slice of the config: training settings keep this step cached).
    derived = []
    if cfg.claim_neighbours.column:
        derived = [ClaimNeighbours(examples=examples,
                                   config_json=json.dumps(executor_config.claim_neighbours(cfg)))]
        examples = derived[0].outputs["enriched"]
    statistics_gen = tfx.components.StatisticsGen(examples=examples)
    schema_importer = build_schema_importer(cfg, schema_sha256)
    schema = schema_importer.outputs["schema"]
    validation = build_data_validation(cfg, statistics_gen.outputs["statistics"], schema)

    transform = build_transform(cfg, examples, schema)
    # After the gate, by an explicit edge: the gate reads the last accepted statistics, so it runs
    # anew every time, and a data edge from it would also make Transform rerun on unchanged data.
    transform.add_upstream_node(validation[-1])
    transformed = transform.outputs["transformed_examples"]
    transform_graph = transform.outputs["transform_graph"]

    hyperparameter_sources, hyperparameters = [], None
    if tune:
        hyperparameter_sources = [build_tuner(cfg, transformed, transform_graph)]
        hyperparameters = hyperparameter_sources[0].outputs["best_hyperparameters"]
    elif cfg.tuner.reuse_last:
        hyperparameter_sources = [build_last_hyperparameters_resolver()]
        hyperparameters = hyperparameter_sources[0].outputs["hyperparameters"]
    trainer = build_trainer(cfg, transformed, transform_graph, hyperparameters)
    model = trainer.outputs["model"]

    baselines = TrivialBaselines(
        examples=transformed, transform_graph=transform_graph,
        label_key=features.transformed_label_name(cfg),
        feature_keys_json=json.dumps(_baseline_keys(cfg)))
    baseline_model = build_baseline_model_resolver()
    evaluator = build_evaluator(cfg, examples, model, baseline_model.outputs["model"],
                                baselines.outputs["baselines"])
    infra_validator = build_infra_validator(cfg, model, examples)
    # the claim index goes inside the pushed version: the gateway makes a request's record from it
    pusher = build_pusher(model, evaluator.outputs["blessing"], infra_validator.outputs["blessing"],
                          cfg.push_dir, derived[0].outputs["index"] if derived else None)
    # Read-only analyses beside the gate: text baselines (when the config names a
    # text feature) and the candidate's error analysis for the run report.
    analyses = [ErrorAnalysis(examples=examples, model=model,
                              config_json=json.dumps(executor_config.error_analysis(cfg)))]
    if cfg.evaluation.text_baseline_feature:
        analyses.append(TextBaselines(examples=examples,
                                       config_json=json.dumps(executor_config.text_baselines(cfg))))

    return tfx.dsl.Pipeline(
        pipeline_name=cfg.pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, *time_split, *derived, statistics_gen, schema_importer, *validation,
                    transform, *hyperparameter_sources, trainer, baselines, baseline_model,
                    evaluator, infra_validator, pusher] + analyses,
        enable_cache=True,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [])


def _baseline_keys(cfg: PipelineConfig) -> List[str]:
    """The main transformed key of each feature the one-feature rule may try."""
    by_name = {f.name: f for f in cfg.features}
    return [features.primary_transformed_key(by_name[name]) for name in cfg.evaluation.baseline_features]
