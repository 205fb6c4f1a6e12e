"""``claim_neighbours``: a string text column to encode, a 'classes' label, a feature that reads the record."""
from __future__ import annotations

from typing import Callable

from common.checks.data import file_dtypes
from common.config import PipelineConfig


def check(cfg: PipelineConfig, fail: Callable) -> None:
    nb = cfg.claim_neighbours
    if not nb.column:
        return
    dtypes = file_dtypes(cfg)
    if dtypes.get(nb.text) != "string":
        fail("claim_neighbours.text", f"a string column from data.columns {sorted(dtypes)}", nb.text)
    if cfg.label.kind != "classes":
        fail("label.kind", "'classes' (the record is made of class names)", cfg.label.kind)
    for key in ("k", "repeats"):
        if getattr(nb, key) < 1:
            fail(f"claim_neighbours.{key}", "a positive integer", getattr(nb, key))
    if nb.folds < 2:
        fail("claim_neighbours.folds", "at least 2 folds (training rows read other folds)", nb.folds)
    if nb.temperature <= 0:
        fail("claim_neighbours.temperature", "a positive number", nb.temperature)
    if not any(f.column == nb.column for f in cfg.features):
        fail("claim_neighbours.column", "the column of a feature (else the record is made and unused)",
             nb.column)
