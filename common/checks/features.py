"""``name``, ``label`` and ``features``: names Kubeflow accepts, no label leakage, kind/dtype pairs."""
from __future__ import annotations

import re
from typing import Callable, List, Sequence

from common.config import FeatureConfig, PipelineConfig

# Kinds whose raw column is a string whatever they derive from it.
STRING_KINDS = ("text", "multi_categorical", "label_prior")
NUMERIC_KINDS = ("numeric", "bucketized", "timestamp")


def repeated(names: Sequence[str]) -> List[str]:
    """The names that occur more than once, sorted."""
    return sorted({n for n in names if names.count(n) > 1})


def check(cfg: PipelineConfig, fail: Callable) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,100}", cfg.name):
        fail("name", "lower-case letters, digits and '-' (Kubeflow pipeline names)", cfg.name)
    names = [f.name for f in cfg.features]
    if not names:
        fail("features", "at least one feature", [])
    if repeated(names):
        fail("features", "unique feature names", repeated(names))
    if cfg.label.column in names or cfg.label.column in {f.column for f in cfg.features}:
        fail("label.column", "a column that is not also a feature (label leakage)", cfg.label.column)
    for i, f in enumerate(cfg.features):
        _check_feature(cfg, f, f"features[{i}]", fail)
    if cfg.label.kind == "ratio_threshold" and not cfg.label.denominator:
        fail("label.denominator", "a column name for a ratio_threshold label", None)
    if cfg.label.kind == "classes" and len(cfg.label.classes) < 2:
        fail("label.classes", "at least two class names", list(cfg.label.classes))
    unknown_pos = set(cfg.label.positive_classes) - set(cfg.label.classes)
    if unknown_pos:
        fail("label.positive_classes", f"names from label.classes {list(cfg.label.classes)}",
             sorted(unknown_pos))


def _check_feature(cfg: PipelineConfig, f: FeatureConfig, key: str, fail: Callable) -> None:
    if f.column in cfg.data.excluded_columns:
        fail(f"{key}.name", "a column not listed in data.excluded_columns", f.column)
    if f.kind in NUMERIC_KINDS and f.dtype == "string":
        fail(f"{key}.dtype", f"int or float for a {f.kind} feature", f.dtype)
    if f.kind in STRING_KINDS and f.dtype != "string":
        fail(f"{key}.dtype", f"string for a {f.kind} feature", f.dtype)
    if f.buckets < 2:
        fail(f"{key}.buckets", "at least 2", f.buckets)
    if f.max_value and (f.kind != "categorical" or f.dtype != "int"):
        fail(f"{key}.max_value", "only on categorical int features", f.max_value)
    if f.top_k < 1 or f.oov_buckets < 1:
        fail(f"{key}.top_k/oov_buckets", "positive integers", (f.top_k, f.oov_buckets))
    if f.max_tokens < 1:
        fail(f"{key}.max_tokens", "a positive integer", f.max_tokens)
    if not f.ngrams or any(n < 1 for n in f.ngrams):
        fail(f"{key}.ngrams", "a non-empty list of n-gram sizes >= 1", list(f.ngrams))
    if f.kind == "multi_categorical" and not f.separator:
        fail(f"{key}.separator", "a non-empty separator", f.separator)
    if f.kind == "label_prior":
        if cfg.label.kind != "classes":
            fail(f"{key}.kind", "label_prior only with a 'classes' label", cfg.label.kind)
        columns = {g.column: g for g in cfg.features if not g.leaky or g is f}
        if f.fold_key not in columns or columns[f.fold_key].dtype != "string":
            fail(f"{key}.fold_key", f"the raw column of a string feature {sorted(columns)} "
                 "(it identifies training rows, also at serving time)", f.fold_key)
        if f.folds < 2:
            fail(f"{key}.folds", "at least 2", f.folds)
        if f.smoothing <= 0:
            fail(f"{key}.smoothing", "a positive number", f.smoothing)
