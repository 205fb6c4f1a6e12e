"""Where monitoring reads and writes, from the dataset config (one place for the defaults)."""
from __future__ import annotations

import os

from common.config import PipelineConfig
from common.paths import resolve_path

CHECKS_DIR = "checks"


def run_root(cfg: PipelineConfig) -> str:
    """``<run_dir>/<name>``: the directory the pipeline's local runs write."""
    return os.path.join(resolve_path(cfg.run_dir), cfg.name)


def alerts_dir(cfg: PipelineConfig) -> str:
    """``monitoring.alerts_dir``, default ``<run_dir>/<name>/monitoring``."""
    if cfg.monitoring.alerts_dir:
        return resolve_path(cfg.monitoring.alerts_dir)
    return os.path.join(run_root(cfg), "monitoring")


def metadata_path(cfg: PipelineConfig) -> str:
    """``monitoring.metadata``, default ``<run_dir>/<name>/monitoring.db``."""
    if cfg.monitoring.metadata:
        return resolve_path(cfg.monitoring.metadata)
    return os.path.join(run_root(cfg), "monitoring.db")


def request_log_dir(cfg: PipelineConfig) -> str:
    return resolve_path(cfg.serving.request_log_dir)


def check_file(directory: str, span: int) -> str:
    """The JSON of the last check of ``span``: ``<alerts_dir>/checks/span-<N>.json``."""
    return os.path.join(directory, CHECKS_DIR, f"span-{span}.json")


def report_path(cfg: PipelineConfig) -> str:
    """The default report: ``<run_dir>/<name>/monitoring.html``."""
    return os.path.join(run_root(cfg), "monitoring.html")
