"""Where a local run writes: ``<run_dir>/<dataset>/`` (pipeline_root/, metadata.db, logs/).

A module of its own, without TFX, so the no-op rerun check (``pipeline.noop_rerun``)
finds the run directory before anything heavy is imported.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from common.config import PipelineConfig
from common.paths import resolve_path


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

    @property
    def report(self) -> str:
        return os.path.join(self.root, "report.html")

    @property
    def last_success(self) -> str:
        """The fingerprints of the last successful run (``pipeline.noop_rerun``)."""
        return os.path.join(self.root, "last_success.json")


def local_paths(cfg: PipelineConfig) -> LocalPaths:
    return LocalPaths(os.path.join(resolve_path(cfg.run_dir), cfg.name))


def config_arg(cfg: PipelineConfig) -> str:
    """The config file as the user would type it (relative when possible)."""
    if not cfg.source_file:
        return f"configs/{cfg.name}.yaml"
    relative = os.path.relpath(cfg.source_file)
    return cfg.source_file if relative.startswith("..") else relative
