"""Run the same raw rows through the SavedModel, the TFLite interpreter and TF.js.

Used by the differential test and the edge benchmark, so both compare the
three runtimes through the same code. Rows are dicts of raw feature values,
one value per feature, exactly what ``serving_default`` takes.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from common.serving_contract import OUTPUT_KEY, SERVING_SIGNATURE, TFJS_DIR, TFLITE_FILE, edge_path
from edge.signature import read_signature

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TFJS_SCRIPT = os.path.join(REPO_ROOT, "edge", "tfjs_predict.mjs")
Row = Mapping[str, object]


@dataclass
class Predictions:
    """Outputs (one probability per row) and how long they took."""
    outputs: np.ndarray
    batch_ms: Optional[float] = None
    per_row_ms: Optional[List[float]] = None


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ\u2019", "abcdefghijklmnopqrstuvwxyz'")


def ascii_lower(text: str) -> str:
    """A-Z -> a-z and U+2019 -> "'" only: what Transform (trainer.kinds.strings.ascii_lower) and
    extension/scorer.js do."""
    return text.translate(_ASCII_LOWER)


def edge_rows(rows: Sequence[Row], signature: Mapping[str, object]) -> List[Dict[str, object]]:
    """Rows as an edge caller feeds them: inputs marked ``ascii_lowercase`` lower-cased."""
    lower = {spec["name"] for spec in signature["inputs"] if spec.get("ascii_lowercase")}
    return [{k: ascii_lower(v) if k in lower and isinstance(v, str) else v for k, v in row.items()}
            for row in rows]


def _per_row(outputs: np.ndarray, n: int) -> np.ndarray:
    """[n] for one output per row (a sigmoid), else [n, classes]."""
    outputs = outputs.reshape(n, -1)
    return outputs[:, 0] if outputs.shape[1] == 1 else outputs


def columns(rows: Sequence[Row], signature: Mapping[str, object], edge: bool = False) -> Dict[str, np.ndarray]:
    """Columnar numpy inputs typed as the edge signature says (``edge``: as an edge
    caller feeds them, see ``edge_rows``)."""
    out = {}
    rows = edge_rows(rows, signature) if edge else rows
    for spec in signature["inputs"]:
        name, dtype = spec["name"], tf.as_dtype(spec["dtype"])
        values = [row[name] for row in rows]
        out[name] = (np.array([v.encode() if isinstance(v, str) else v for v in values], dtype=object)
                     if dtype == tf.string else np.array(values, dtype=dtype.as_numpy_dtype))
    return out


def saved_model(model_dir: str, rows: Sequence[Row], single: bool = False) -> Predictions:
    """``serving_default`` of the SavedModel, as TF Serving runs it."""
    fn = tf.saved_model.load(model_dir).signatures[SERVING_SIGNATURE]
    signature = read_signature(model_dir)

    def call(batch):
        return _per_row(fn(**{k: tf.constant(v) for k, v in columns(batch, signature).items()})[
            OUTPUT_KEY].numpy(), len(batch))

    return _timed(call, rows, single)


def tflite(model_dir: str, rows: Sequence[Row], single: bool = False) -> Predictions:
    """The TFLite model through ``tf.lite.Interpreter``'s signature runner."""
    runner = tf.lite.Interpreter(model_path=edge_path(model_dir, TFLITE_FILE)).get_signature_runner(SERVING_SIGNATURE)
    signature = read_signature(model_dir)

    def call(batch):
        return _per_row(runner(**columns(batch, signature, edge=True))[OUTPUT_KEY], len(batch))

    return _timed(call, rows, single)


def _timed(call, rows: Sequence[Row], single: bool, warmup: int = 3) -> Predictions:
    for row in rows[:warmup]:
        call([row])
    if not single:
        start = time.perf_counter()
        outputs = call(rows)
        return Predictions(outputs, batch_ms=(time.perf_counter() - start) * 1000)
    outputs, per_row = [], []
    for row in rows:
        start = time.perf_counter()
        outputs.append(call([row])[0])
        per_row.append((time.perf_counter() - start) * 1000)
    return Predictions(np.array(outputs), per_row_ms=per_row)


def tfjs(model_dir: str, rows: Sequence[Row], single: bool = False, node: str = "node",
         timeout: float = 600) -> Predictions:
    """The TF.js graph model in Node (``edge/tfjs_predict.mjs``)."""
    tfjs_dir = edge_path(model_dir, TFJS_DIR)
    rows = edge_rows(rows, read_signature(model_dir))
    with tempfile.TemporaryDirectory() as tmp:
        rows_path, out_path = os.path.join(tmp, "rows.json"), os.path.join(tmp, "out.json")
        with open(rows_path, "w") as f:
            json.dump([dict(row) for row in rows], f)
        cmd = [node, TFJS_SCRIPT, "--model", tfjs_dir, "--rows", rows_path, "--out", out_path,
               "--mode", "single" if single else "batch"]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"TF.js in Node failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
        with open(out_path) as f:
            result = json.load(f)
    return Predictions(_per_row(np.array(result["outputs"], dtype=np.float32), len(rows)),
                       batch_ms=result.get("batch_ms"), per_row_ms=result.get("per_row_ms"))
