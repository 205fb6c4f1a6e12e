"""Edge exports: a TFLite model and a TF.js graph model beside the SavedModel.

The trainer writes the edge module (the Keras model with the Transform
analysis as constants, ``trainer.edge_graph``) as SavedModels under
``assets.extra/``; this module converts them, right after the export (the
Trainer's ``run_fn``, ``components.trainer_run.export_model``), so the files travel inside
the model artifact through Evaluator, InfraValidator and Pusher (and ML
Metadata) unchanged. TF Serving ignores ``assets.extra/``:

    assets.extra/edge_saved_model/   the edge module as a SavedModel (conversion source)
    assets.extra/edge_saved_model_tflite/  the same, traced with TFLite's string ops (TFLite source)
    assets.extra/model.tflite        TFLite, builtin ops only unless unavoidable
    assets.extra/tfjs/model.json     TF.js graph model (+ weight shards)
    assets.extra/edge_signature.json inputs in order, output, conversion facts (``edge.signature``)

CLI, to convert again (e.g. a new converter version) a model already pushed:
``python -m edge.convert --saved_model runs/serving/taxi/<version>``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Tuple

import tensorflow as tf

from common.serving_contract import (
    EDGE_SAVED_MODEL,
    EDGE_SAVED_MODEL_TFLITE,
    EDGE_SIGNATURE_FILE,
    SERVING_SIGNATURE,
    TFJS_DIR,
    TFLITE_FILE,
    edge_dir,
)
from edge.signature import edge_signature, read_signature_if_any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeExport:
    """Where the edge files are and what the conversion needed."""
    directory: str
    tflite_path: str
    tfjs_model_json: str
    signature_path: str
    tflite_select_tf_ops: bool
    seconds: float


def _has_saved_model(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "saved_model.pb"))


def _no_edge_saved_model(source_dir: str) -> str:
    return (f"{source_dir}: no edge SavedModel; models exported before edge support have none "
            "(re-run the Trainer to produce one)")


def convert(model_dir: str, input_order: Sequence[str], source: Mapping[str, Any],
            lowercase_inputs: Sequence[str] = ()) -> EdgeExport:
    """TFLite + TF.js + signature file from ``assets.extra/edge_saved_model``.

    The new files are written to a staging directory and moved into place, so
    a reader never sees a half-written TF.js model.
    """
    start = time.perf_counter()
    out = edge_dir(model_dir)
    source_dir = os.path.join(out, EDGE_SAVED_MODEL)
    if not _has_saved_model(source_dir):
        raise FileNotFoundError(_no_edge_saved_model(source_dir))
    staging = tempfile.mkdtemp(prefix=".edge-staging-", dir=out)
    try:
        tflite_source = os.path.join(out, EDGE_SAVED_MODEL_TFLITE)
        if not _has_saved_model(tflite_source):
            tflite_source = source_dir  # exported before the TFLite variant existed
        tflite_bytes, select_ops = to_tflite(tflite_source)
        with open(os.path.join(staging, TFLITE_FILE), "wb") as f:
            f.write(tflite_bytes)
        to_tfjs(source_dir, os.path.join(staging, TFJS_DIR))
        signature = edge_signature(source_dir, select_ops, input_order, source, lowercase_inputs)
        with open(os.path.join(staging, EDGE_SIGNATURE_FILE), "w") as f:
            json.dump(signature, f, indent=2, sort_keys=True)
        for name in (TFLITE_FILE, TFJS_DIR, EDGE_SIGNATURE_FILE):
            target = os.path.join(out, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.replace(os.path.join(staging, name), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - start
    logger.info("edge exports written to %s in %.1f s", out, seconds)
    return EdgeExport(out, os.path.join(out, TFLITE_FILE), os.path.join(out, TFJS_DIR, "model.json"),
                      os.path.join(out, EDGE_SIGNATURE_FILE), select_ops, seconds)


def to_tflite(saved_model_dir: str) -> Tuple[bytes, bool]:
    """TFLite flatbuffer with builtin ops; SELECT_TF_OPS only when builtins cannot express
    the graph (e.g. several OOV hash buckets need a string hash), returned as the flag."""
    def run(ops) -> bytes:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SERVING_SIGNATURE])
        converter.target_spec.supported_ops = ops
        return converter.convert()

    try:
        return run([tf.lite.OpsSet.TFLITE_BUILTINS]), False
    except Exception as err:  # the converter raises ConverterError with the op list
        if "ERROR_NEEDS_FLEX_OPS" not in str(err) and "TF Select ops" not in str(err):
            raise
        logger.warning("TFLite: builtin ops do not cover the edge graph, using SELECT_TF_OPS: %s",
                       str(err).splitlines()[-1])
        return run([tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]), True


def to_tfjs(saved_model_dir: str, output_dir: str) -> None:
    """TF.js graph model (model.json + weight shards) of a SavedModel's serving signature."""
    from tensorflowjs.converters import tf_saved_model_conversion_v2  # slow import, only here

    tf_saved_model_conversion_v2.convert_tf_saved_model(
        saved_model_dir, output_dir, signature_def=SERVING_SIGNATURE, saved_model_tags="serve")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.convert",
        description="Convert a model's edge SavedModel (assets.extra/edge_saved_model) to TFLite and "
                    "TF.js again, e.g. after a converter upgrade.",
        epilog="example: python -m edge.convert --saved_model runs/serving/taxi/1700000000")
    parser.add_argument("--saved_model", required=True, help="model directory (a pushed version or a "
                        "Trainer output), the one holding saved_model.pb")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    model_dir = args.saved_model.rstrip("/")
    if not _has_saved_model(model_dir):
        print(f"error: {model_dir}: not a SavedModel directory (no saved_model.pb)", file=sys.stderr)
        return 2
    source_dir = os.path.join(edge_dir(model_dir), EDGE_SAVED_MODEL)
    if not _has_saved_model(source_dir):
        print(f"error: {_no_edge_saved_model(source_dir)}", file=sys.stderr)
        return 1
    previous = read_signature_if_any(model_dir) or {}
    # input order and provenance as the Trainer recorded them; the version is the directory name
    order = [i["name"] for i in previous.get("inputs", [])] or sorted(
        tf.saved_model.load(source_dir).signatures[SERVING_SIGNATURE].structured_input_signature[1])
    version = os.path.basename(model_dir)
    source = {k: previous.get("source", {}).get(k) for k in ("dataset", "model_name")}
    lowercase = [i["name"] for i in previous.get("inputs", []) if i.get("ascii_lowercase")]
    export = convert(model_dir, order, dict(source, model_version=version if version.isdigit() else None),
                     lowercase_inputs=lowercase)
    print(f"TFLite: {export.tflite_path} (SELECT_TF_OPS: {export.tflite_select_tf_ops})")
    print(f"TF.js:  {export.tfjs_model_json}")
    print(f"signature: {export.signature_path} ({export.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
