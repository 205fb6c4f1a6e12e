"""Cross-field rules that types alone cannot express, one module per config section.

Each section's ``check(cfg, fail, ...)`` calls ``fail(key, expected, got)`` on
the first broken rule; ``check_config`` turns that into a ``ConfigError``
naming the file, the dotted key and what was expected.
"""
from __future__ import annotations

import os
from typing import Any, NoReturn

from common.checks import (
    claim_neighbours,
    data,
    evaluation,
    features,
    kubeflow,
    monitoring,
    retraining,
    serving,
    training,
    validation,
)
from common.config import ConfigError, PipelineConfig


def check_config(cfg: PipelineConfig, path: str, require_data: bool = True) -> None:
    """Raises ``ConfigError`` for the first rule ``cfg`` (read from ``path``) breaks."""
    def fail(key: str, expected: str, got: Any) -> NoReturn:
        raise ConfigError(f"{path}: key '{key}': expected {expected}, got {got!r}")

    features.check(cfg, fail)
    data.check(cfg, fail, require_data)
    claim_neighbours.check(cfg, fail)
    validation.check(cfg, fail)
    training.check(cfg, fail)
    evaluation.check(cfg, fail)
    serving.check(cfg, fail)
    monitoring.check(cfg, fail)
    retraining.check(cfg, fail)
    kubeflow.check(cfg, fail)
    if not os.path.isfile(cfg.schema_path):
        fail("schema", f"an existing schema.pbtxt (resolved to {cfg.schema_path})", cfg.schema)
