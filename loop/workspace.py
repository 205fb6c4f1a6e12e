"""The loop's working directory: the taxi quarters cut once, the first ones as data spans.

``<work>/quarters/span-<N>/data.csv``: every quarter of the embedded taxi CSV, cut by
``pipeline.span_cutter`` (the same cut ``python -m pipeline spans`` makes).
``<work>/data/``: the pipeline's span directory: the initial quarters are copied in;
later spans arrive only as feedback spans (``pipeline.feedback_spans``), i.e. what
users sent and labelled. ``<work>/history/data.csv``: the rows the first model
trained on, the reference monitoring compares served spans with.
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Dict, List, Optional, Tuple

import pandas as pd

from common.config import PipelineConfig
from common.paths import taxi_data_dir
from loop.plan import Plan
from pipeline.span_cutter import SPAN_FILE, cut_spans, timestamp_column
from testing.served_spans import typed_rows


def quarter_file(work_dir: str, quarter: int) -> str:
    return os.path.join(work_dir, "quarters", f"span-{quarter}", SPAN_FILE)


def history_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "history")


def prepare(base: PipelineConfig, plan: Plan, work_dir: str) -> None:
    """Cuts the quarters (once) and lays out the initial data spans and the history.

    ``base``: the config before the loop's overrides (its data.path is not the loop's yet)."""
    if os.path.isdir(os.path.join(work_dir, "data")) or os.path.isdir(os.path.join(work_dir, "runs")):
        raise FileExistsError(f"{work_dir}: holds an earlier loop (data/ or runs/); the loop starts from "
                              "an empty directory (remove it or pass another --work-dir)")
    quarters = os.path.join(work_dir, "quarters")
    if not os.path.isdir(quarters):
        cut_spans([os.path.join(taxi_data_dir(), "data.csv")], quarters, timestamp_column(base))
    frames = []
    for quarter in plan.initial:
        target = os.path.join(work_dir, "data", f"span-{quarter}")
        os.makedirs(target)
        shutil.copy(quarter_file(work_dir, quarter), target)
        frames.append(pd.read_csv(quarter_file(work_dir, quarter)))
    os.makedirs(history_dir(work_dir))
    pd.concat(frames, ignore_index=True).to_csv(os.path.join(history_dir(work_dir), SPAN_FILE), index=False)


def quarter_rows(cfg: PipelineConfig, work_dir: str, quarter: int, limit: Optional[int],
                 seed: int = 0) -> Tuple[List[Dict[str, Any]], List[float]]:
    """(served rows, raw labels) of one quarter: each row's features typed by the config,
    missing ones absent; ``limit`` rows drawn with ``seed`` (in their time order)."""
    frame = pd.read_csv(quarter_file(work_dir, quarter))
    if limit is not None and len(frame) > limit:
        frame = frame.sample(limit, random_state=seed).sort_index()
    return typed_rows(cfg, frame), [float(v) for v in frame[cfg.label.column]]
