"""Local runner: the pipeline on Beam's DirectRunner with SQLite ML Metadata.

Chooses only paths, the metadata store and Beam args; the DAG is
``create_pipeline``. Everything a run writes lives under
``<run_dir>/<dataset>/``: pipeline_root/ (artifacts), metadata.db, logs/.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional

from tfx import v1 as tfx

from common.config import PipelineConfig

from common.paths import resolve_path
from pipeline.pipeline import create_pipeline
from pipeline.span_backfill import backfill


@dataclass(frozen=True)
class LocalPaths:
    root: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.root, "pipeline_root")

    @property
    def metadata(self) -> str:
        return os.path.join(self.root, "metadata.db")

    @property
    def log_file(self) -> str:
        return os.path.join(self.root, "logs", "run.log")


def local_paths(cfg: PipelineConfig) -> LocalPaths:
    return LocalPaths(os.path.join(resolve_path(cfg.run_dir), cfg.name))


def local_beam_args(cfg: PipelineConfig) -> List[str]:
    """DirectRunner settings; in_memory is fastest for data that fits one machine."""
    return ["--runner=DirectRunner",
            f"--direct_running_mode={cfg.beam.direct_running_mode}",
            f"--direct_num_workers={cfg.beam.direct_num_workers}"]


def build_local_pipeline(cfg: PipelineConfig, tune: Optional[bool] = None) -> tfx.dsl.Pipeline:
    paths = local_paths(cfg)
    return create_pipeline(
        cfg, pipeline_root=paths.pipeline_root,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            paths.metadata),
        beam_pipeline_args=local_beam_args(cfg), tune=tune)


def run_local(cfg: PipelineConfig, tune: Optional[bool] = None) -> None:
    """Runs the whole DAG; raises on the first failed component. With spans, the window's
    older spans are ingested first (pipeline.span_backfill)."""
    if cfg.data.spans.pattern:
        paths = local_paths(cfg)
        backfill(cfg, paths.pipeline_root, paths.metadata, local_beam_args(cfg))
    tfx.orchestration.LocalDagRunner().run(build_local_pipeline(cfg, tune))
