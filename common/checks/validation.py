"""``validation``: the data gate's thresholds name real splits and are ratios that let equal counts pass."""
from __future__ import annotations

from typing import Callable

from common.checks.data import split_names
from common.config import PipelineConfig


def check(cfg: PipelineConfig, fail: Callable) -> None:
    validation = cfg.validation
    splits = split_names(cfg)
    for split, count in validation.min_examples.items():
        if split not in splits:
            fail(f"validation.min_examples.{split}", f"a split name from {splits}", split)
        if count < 0:
            fail(f"validation.min_examples.{split}", "a number of examples >= 0", count)
    # The ratio of a split's examples to the last accepted data's: a rerun on the
    # same data (ratio 1) must pass.
    if validation.min_count_ratio and not 0 < validation.min_count_ratio <= 1:
        fail("validation.min_count_ratio", "0 (unchecked) or a ratio in (0, 1]", validation.min_count_ratio)
    if validation.max_count_ratio and validation.max_count_ratio < 1:
        fail("validation.max_count_ratio", "0 (unchecked) or a ratio >= 1", validation.max_count_ratio)
