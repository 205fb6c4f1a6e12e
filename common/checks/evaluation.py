"""``evaluation``: slices and baseline/fairness features that exist, thresholds in [0, 1],
the margin over the trivial baselines in [0, 1)."""
from __future__ import annotations

from typing import Callable

from common.config import PipelineConfig, extra_slice_keys


def check(cfg: PipelineConfig, fail: Callable) -> None:
    evaluation = cfg.evaluation
    names = [f.name for f in cfg.features]
    slice_keys = names + [key for f in cfg.features for key in extra_slice_keys(f)]
    for i, s in enumerate(evaluation.slices):
        for col in s:
            if col not in slice_keys:
                fail(f"evaluation.slices[{i}]", f"feature names or slice keys from {slice_keys}", col)
    for key in ("baseline_features", "fairness_features", "reduced_features"):
        for col in getattr(evaluation, key):
            if col not in names:
                fail(f"evaluation.{key}", f"feature names from {names}", col)
    text_names = [f.name for f in cfg.features if f.kind == "text"]
    if evaluation.text_baseline_feature and evaluation.text_baseline_feature not in text_names:
        fail("evaluation.text_baseline_feature", f"the name of a text feature {text_names}",
             evaluation.text_baseline_feature)
    if evaluation.text_baseline_feature and cfg.label.kind != "classes":
        fail("evaluation.text_baseline_feature", "a 'classes' label (the baselines score class names)",
             cfg.label.kind)
    for key in ("min_auc", "min_accuracy"):
        v = getattr(evaluation, key)
        if not 0 <= v <= 1:
            fail(f"evaluation.{key}", "a number in [0, 1]", v)
    # An accuracy difference: above 1 no model could pass; below 0 a model worse
    # than a trivial rule would be blessed.
    if not 0 <= evaluation.min_margin_over_baselines < 1:
        fail("evaluation.min_margin_over_baselines", "a number in [0, 1)", evaluation.min_margin_over_baselines)
    flip = evaluation.max_flip_rate
    if flip is not None and not 0 <= flip <= 1:
        fail("evaluation.max_flip_rate", "null or a share in [0, 1]", flip)
    if flip is not None and cfg.num_classes != 2:
        fail("evaluation.max_flip_rate", "null for a multi-class model (TFMA's flip rates compare binary "
             f"predictions; {cfg.num_classes} classes here: `python -m monitoring diff` reports class flips)",
             flip)
