"""``python -m monitoring diff``: a served span replayed through the stable and the candidate version.

Which versions (``serving.push_dir``/<model>/<version>, loaded with the gateway's
``serving.servable.ServedModel``): ``stable`` defaults to the version that
answered most of the span's rows, ``candidate`` to the newest complete pushed
version other than it. The figures and their thresholds are
``monitoring.differential``'s; the whole report, every flipped row included, is
written to ``<alerts_dir>/diffs/span-<N>-v<stable>-v<candidate>.json`` and the
test recorded in ML Metadata (``DifferentialTest``, ``monitoring.metadata``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from common.config import PipelineConfig
from monitoring import locations
from monitoring.check import describe
from monitoring.differential import (
    DiffReport,
    compare,
    flipped_rows,
    optional_truths,
    report_json,
    slice_values,
    unknown_slices,
)
from monitoring.labelled import row_truths
from monitoring.metadata import record_differential
from monitoring.reference import logged_columns
from monitoring.served import ServedSpan, choose_span, read_span
from serving import request_log
from serving.servable import ServedModel
from serving.versions import complete_versions

DIFFS_DIR = "diffs"
CHUNK_ROWS = 1024  # rows per model call: bounded memory on large spans


@dataclass
class Replay:
    """One span replayed through two versions, and what the comparison found."""
    span: int
    stable: int
    candidate: int
    report: DiffReport
    flips: List[Dict[str, Any]]
    skipped_slices: List[str]
    path: str = ""
    execution_id: int = 0


def scores(model: ServedModel, serialized: Sequence[bytes]) -> np.ndarray:
    """[rows, k] outputs of ``model``'s tf.Example signature (its ``outputs`` key, else its only one)."""
    signature = model.example_signature(None)
    name = next(iter(model.input_specs(signature)))
    parts = []
    for start in range(0, len(serialized), CHUNK_ROWS):
        chunk = np.asarray(list(serialized[start:start + CHUNK_ROWS]), dtype=object)
        outputs = model.run(signature, {name: chunk}, None)
        key = "outputs" if "outputs" in outputs else next(iter(outputs)) if len(outputs) == 1 else None
        if key is None:
            raise ValueError(f"{model.path}: signature {signature} has outputs {sorted(outputs)}: "
                             "expected 'outputs' or a single one")
        parts.append(np.asarray(outputs[key], dtype=float).reshape(len(chunk), -1))
    return np.concatenate(parts) if parts else np.zeros((0, 1))


def choose_versions(cfg: PipelineConfig, served: ServedSpan, stable: Optional[int],
                    candidate: Optional[int]) -> Sequence[int]:
    """(stable, candidate): given ones, else the span's main version and the newest other one."""
    pushed = complete_versions(cfg.push_dir)
    stable = served.main_version if stable is None else stable
    if candidate is None:
        others = [v for v in pushed if v != stable]
        if not others:
            raise ValueError(f"{cfg.push_dir}: no pushed version besides the stable {stable} "
                             f"(complete versions: {pushed})")
        candidate = others[-1]
    for version in (stable, candidate):
        if version not in pushed:
            raise ValueError(f"{cfg.push_dir}: version {version} is not a complete pushed version "
                             f"(complete versions: {pushed})")
    if stable == candidate:
        raise ValueError(f"stable and candidate are both version {stable}: nothing to compare")
    return stable, candidate


def load_version(cfg: PipelineConfig, version: int) -> ServedModel:
    """Pushed ``version`` loaded as the gateway loads it (the caller closes it)."""
    return ServedModel.load(os.path.join(cfg.push_dir, str(version)), cfg.serving.model_name, version)


def replay_span(cfg: PipelineConfig, span: Optional[int] = None, stable: Optional[int] = None,
                candidate: Optional[int] = None) -> Replay:
    """Replays ``span`` (default: the newest closed one) through both versions (module doc)."""
    log_dir = locations.request_log_dir(cfg)
    model = cfg.serving.model_name
    span = choose_span(log_dir, cfg.serving.request_log_window_seconds, span)
    slice_columns = [key for spec in cfg.evaluation.slices for key in spec]
    columns = list(dict.fromkeys(list(logged_columns(cfg)) + slice_columns))
    served = read_span(log_dir, span, model, columns, examples=True)
    stable, candidate = choose_versions(cfg, served, stable, candidate)
    outputs = {}
    for version in (stable, candidate):
        loaded = load_version(cfg, version)
        try:
            outputs[version] = scores(loaded, served.examples)
        finally:
            loaded.close()
    truths = optional_truths(row_truths(cfg, log_dir, served))
    present = [c for c in served.frame.columns if served.frame[c].notna().any()]
    report = compare(outputs[stable], outputs[candidate], cfg.num_classes, truths,
                     slice_values(served.frame[present], cfg.evaluation.slices), cfg.differential)
    flips = flipped_rows(report, served.keys, outputs[stable], outputs[candidate], cfg.num_classes, truths)
    return Replay(span, stable, candidate, report, flips, unknown_slices(cfg.evaluation.slices, present))


def write_replay(cfg: PipelineConfig, replay: Replay) -> str:
    """Writes the report JSON (module doc) and records the test in ML Metadata
    (``DifferentialTest``, ``monitoring.metadata``); sets and returns ``replay.path``."""
    directory = os.path.join(locations.alerts_dir(cfg), DIFFS_DIR)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"span-{replay.span}-v{replay.stable}-v{replay.candidate}.json")
    raw = report_json(replay.report, replay.flips, model=cfg.serving.model_name, span=replay.span,
                      stable=replay.stable, candidate=replay.candidate, skipped_slices=replay.skipped_slices)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(raw, f, indent=1, sort_keys=True)
        f.write("\n")
    replay.path = path
    report = replay.report
    replay.execution_id = record_differential(
        locations.metadata_path(cfg), model=cfg.serving.model_name, span=replay.span,
        span_uri=request_log.span_dir(locations.request_log_dir(cfg), replay.span), rows=report.rows,
        stable=replay.stable, candidate=replay.candidate,
        properties={"flipped": len(report.flipped), "flip_rate": report.flip_rate,
                    "mean_difference": report.mean_difference, "max_difference": report.max_difference,
                    "failed": int(bool(report.failures)),
                    "failures": json.dumps([m.to_json() for m in report.failures]), "report_file": path})
    return path


def summary(replay: Replay, show: int) -> str:
    """What the CLI prints: the figures, each check, skipped slices and the first flipped rows."""
    report = replay.report
    failures = report.failures
    lines = [f"span {replay.span}: {report.rows} rows replayed through version {replay.stable} (stable) "
             f"and {replay.candidate} (candidate): {'FAILED' if failures else 'passed'}",
             f"flip rate {report.flip_rate:.4f} ({len(report.flipped)} rows), mean |difference| "
             f"{report.mean_difference:.4g}, max |difference| {report.max_difference:.4g}"]
    for m in report.measurements:
        lines.append(f"  {'FAIL' if m.alarmed else 'ok  '} {describe(m)}")
    if replay.skipped_slices:
        lines.append(f"slices not in the logged rows (skipped): {replay.skipped_slices}")
    for flip in replay.flips[:show]:
        lines.append(f"  flipped {flip['request_id']}#{flip['row']}: {flip['stable_class']} -> "
                     f"{flip['candidate_class']} (outputs {flip['stable_output']} -> "
                     f"{flip['candidate_output']}; label {flip['true_class']})")
    if len(replay.flips) > show:
        lines.append(f"  ... {len(replay.flips) - show} more flipped rows in the report")
    if replay.path:
        lines.append(f"wrote {replay.path}; ML Metadata: execution {replay.execution_id}")
    return "\n".join(lines)
