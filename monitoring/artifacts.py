"""Calibration outputs on disk: the candidate schema for review and its JSON sidecar.

The candidate is written beside, never over, the curated schema: replacing
curated thresholds is a reviewed change (diff the two files), and the sidecar
keeps what the thresholds mean (budget, span size, draws, seed) next to them.
"""
from __future__ import annotations

import json
import os
from typing import Tuple

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from monitoring.calibration import Calibration

SCHEMA_FILE = "schema.pbtxt"
CALIBRATION_FILE = "calibration.json"


def write_calibration(out_dir: str, candidate: schema_pb2.Schema, calibration: Calibration,
                      curated_path: str) -> Tuple[str, str]:
    """``<out_dir>/schema.pbtxt`` and ``<out_dir>/calibration.json``; returns both paths."""
    os.makedirs(out_dir, exist_ok=True)
    schema_path = os.path.join(out_dir, SCHEMA_FILE)
    header = (f"# Candidate schema: {curated_path} with skew/drift thresholds calibrated by\n"
              f"# `python -m monitoring calibrate` (budget {calibration.budget} per comparison,\n"
              f"# spans of {calibration.span_size} rows, {calibration.draws} draws, seed "
              f"{calibration.seed}; see {CALIBRATION_FILE}).\n"
              "# Review the diff against the curated schema before adopting it.\n")
    with open(schema_path, "w", encoding="utf-8") as f:
        f.write(header + text_format.MessageToString(candidate))
    json_path = os.path.join(out_dir, CALIBRATION_FILE)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(calibration.to_json(), f, indent=2, sort_keys=True)
        f.write("\n")
    return schema_path, json_path


def read_calibration(path: str) -> Calibration:
    """A sidecar written by ``write_calibration``."""
    with open(path, encoding="utf-8") as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON: {e}") from e
    try:
        return Calibration.from_json(raw)
    except KeyError as e:
        raise ValueError(f"{path}: calibration sidecar lacks key {e}") from e
