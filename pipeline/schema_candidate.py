"""Infers a candidate schema with SchemaGen, for a person to review and curate.

The pipeline itself imports the curated ``schema/<dataset>/schema.pbtxt``;
this command only proposes one from the current data.
"""
from __future__ import annotations

import glob
import os
import shutil

from common.config import PipelineConfig
from components.data import build_example_gen
from components.tfx_api import tfx
from pipeline.local_runner import local_beam_args
from pipeline.run_paths import local_paths


def write_schema_candidate(cfg: PipelineConfig) -> str:
    """Runs ExampleGen -> StatisticsGen -> SchemaGen; returns the candidate's path."""
    paths = local_paths(cfg)
    example_gen = build_example_gen(cfg)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"],
                                          infer_feature_shape=False)
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=f"{cfg.name}-schema-candidate",
        pipeline_root=os.path.join(paths.root, "schema_candidate_root"),
        components=[example_gen, statistics_gen, schema_gen], enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(paths.root, "schema_candidate_metadata.db")),
        beam_pipeline_args=local_beam_args(cfg)))
    produced = sorted(glob.glob(os.path.join(paths.root, "schema_candidate_root", "SchemaGen",
                                             "schema", "*", "schema.pbtxt")), key=os.path.getmtime)
    target = os.path.join(paths.root, "schema_candidate.pbtxt")
    shutil.copy(produced[-1], target)
    return target
