"""The edge signature file (``assets.extra/edge_signature.json``): how to call the edge models."""
from __future__ import annotations

import datetime
import json
from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf

from common.serving_contract import EDGE_SIGNATURE_FILE, OUTPUT_KEY, SERVING_SIGNATURE, TFJS_DIR, TFLITE_FILE, edge_path


def edge_signature(saved_model_dir: str, tflite_select_tf_ops: bool, input_order: Sequence[str],
                   source: Mapping[str, Any], lowercase_inputs: Sequence[str] = ()) -> Dict[str, Any]:
    """What a client needs to call the edge models: inputs in order, output, provenance.

    ``ascii_lowercase`` on an input: the caller maps A-Z to a-z and U+2019 to "'"
    before feeding it (what Transform does in the SavedModel; TF.js has no
    StringLower op and cannot match non-ASCII patterns).

    ``source`` names the model (dataset, model name, version when known: the
    Pusher assigns versions after the Trainer has written these files).
    """
    import tensorflowjs  # slow import, only here

    fn = tf.saved_model.load(saved_model_dir).signatures[SERVING_SIGNATURE]
    _, specs = fn.structured_input_signature
    if sorted(input_order) != sorted(specs):
        raise ValueError(f"{saved_model_dir}: inputs {sorted(specs)} differ from the expected {sorted(input_order)}")
    output = fn.structured_outputs[OUTPUT_KEY]
    return {
        "inputs": [{"name": name, "dtype": specs[name].dtype.name, "shape": [-1],
                    "ascii_lowercase": name in lowercase_inputs} for name in input_order],
        "output": {"name": OUTPUT_KEY, "dtype": output.dtype.name, "shape": [-1] + output.shape.as_list()[1:]},
        "tflite": {"path": TFLITE_FILE, "signature": SERVING_SIGNATURE, "select_tf_ops": tflite_select_tf_ops},
        "tfjs": {"path": f"{TFJS_DIR}/model.json", "format": "graph-model",
                 "int64_inputs": "int32 (TF.js has no int64; values must fit in int32)"},
        "source": dict(source, saved_model_signature=SERVING_SIGNATURE,
                       exported_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       tensorflow=tf.__version__, tensorflowjs=tensorflowjs.__version__),
    }


def signature_path(model_dir: str) -> str:
    return edge_path(model_dir, EDGE_SIGNATURE_FILE)


def read_signature(model_dir: str) -> Dict[str, Any]:
    """The edge signature of a model directory (FileNotFoundError when it has none)."""
    with open(signature_path(model_dir), encoding="utf-8") as f:
        return json.load(f)


def read_signature_if_any(model_dir: str) -> Optional[Dict[str, Any]]:
    """The edge signature, or None for a model exported before it existed."""
    try:
        return read_signature(model_dir)
    except FileNotFoundError:
        return None
