"""``data``: the directory exists, splits are well formed, headerless files name their columns,
span patterns carry one ``{SPAN}``."""
from __future__ import annotations

import os
from typing import Callable, Dict, List

from common.checks.features import repeated
from common.config import PipelineConfig
from common.paths import TAXI_DEFAULT

SPAN_SPEC, VERSION_SPEC = "{SPAN}", "{VERSION}"  # TFX ExampleGen's file-pattern specs


def check(cfg: PipelineConfig, fail: Callable, require_data: bool) -> None:
    data = cfg.data
    exists = data.path == TAXI_DEFAULT or "://" in data.path or os.path.isdir(cfg.data_path)
    if require_data and not exists:
        env = f" or ${data.path_env}" if data.path_env else ""
        what = (f"span directories matching data.spans.pattern {data.spans.pattern!r} (`python -m "
                "pipeline spans` cuts a CSV into spans)" if data.spans.pattern
                else f"{data.format.upper()} files")
        fail("data.path", f"an existing directory of {what}{env} (resolved to {cfg.data_path})", data.path)
    if data.format == "csv":
        _check_csv(cfg, fail)
    else:
        _check_tsv(cfg, fail, require_data)
    if data.spans.pattern:
        _check_spans(cfg, fail)


def split_names(cfg: PipelineConfig) -> List[str]:
    """The split names a run's data has: train/eval for csv (hash or time split), data.files for tsv."""
    return ["train", "eval"] if cfg.data.format == "csv" else list(cfg.data.files)


def file_dtypes(cfg: PipelineConfig) -> Dict[str, str]:
    """dtype per column of a headerless file, as ``data.columns`` declares them."""
    return {c.name: c.dtype for c in cfg.data.columns}


def _check_csv(cfg: PipelineConfig, fail: Callable) -> None:
    data = cfg.data
    if set(data.splits) != {"train", "eval"}:
        fail("data.splits", "exactly the splits 'train' and 'eval'", sorted(data.splits))
    for split, buckets in data.splits.items():
        if buckets < 1:
            fail(f"data.splits.{split}", "a positive number of hash buckets", buckets)
    if data.files or data.columns:
        fail("data.files", "no files or columns for csv (the header names the columns)",
             sorted(data.files))


def _check_spans(cfg: PipelineConfig, fail: Callable) -> None:
    spans = cfg.data.spans
    if cfg.data.format != "csv":
        fail("data.spans.pattern", "no span pattern for data.format tsv (its splits are data.files)",
             spans.pattern)
    if cfg.data.path == TAXI_DEFAULT:
        fail("data.path", "a directory of spans, not the single taxi CSV inside tfx (`python -m pipeline "
             "spans --config configs/taxi.yaml --out data/taxi_spans` cuts it into spans)", cfg.data.path)
    pattern = spans.pattern
    plain = pattern.replace(SPAN_SPEC, "", 1).replace(VERSION_SPEC, "", 1)
    if pattern.count(SPAN_SPEC) != 1 or "{" in plain or "}" in plain or os.path.isabs(pattern) \
            or "://" in pattern:
        fail("data.spans.pattern", f"a file pattern relative to data.path with one {SPAN_SPEC} "
             f"(and at most one {VERSION_SPEC}), e.g. 'span-{SPAN_SPEC}/*'", pattern)
    if spans.train_spans < 1:
        fail("data.spans.train_spans", "a positive number of spans before the newest to train on",
             spans.train_spans)


def _check_tsv(cfg: PipelineConfig, fail: Callable, require_data: bool) -> None:
    data = cfg.data
    if not {"train", "eval"} <= set(data.files) or not set(data.files) <= {"train", "eval", "test"}:
        fail("data.files", "file names for the splits train and eval (and optionally test)",
             dict(data.files))
    for split, name in data.files.items():
        if require_data and "://" not in cfg.data_path and not os.path.isfile(os.path.join(cfg.data_path, name)):
            fail(f"data.files.{split}", f"a file in {cfg.data_path}", name)
    columns = [c.name for c in data.columns]
    if not columns:
        fail("data.columns", "the names and dtypes of the file's columns, in order", [])
    if repeated(columns):
        fail("data.columns", "unique column names", repeated(columns))
    dtypes = file_dtypes(cfg)
    derived = cfg.claim_neighbours.column
    if derived in dtypes:
        fail("claim_neighbours.column", f"a new column name, not one of data.columns {columns}", derived)
    # the derived column is made by the ClaimNeighbours component; features may read it
    if derived:
        dtypes[derived] = "string"
    for i, f in enumerate(cfg.features):
        if f.column not in dtypes:
            fail(f"features[{i}].name", f"a column from data.columns {columns}", f.column)
        if dtypes[f.column] != f.dtype:
            fail(f"features[{i}].dtype", f"the dtype of column {f.column!r} ({dtypes[f.column]})", f.dtype)
    if cfg.label.column not in dtypes:
        fail("label.column", f"a column from data.columns {columns}", cfg.label.column)
