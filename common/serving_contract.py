"""The serving contract: what a pushed model directory holds and how it is called.

One place for the names the trainer exports, the gateway, TF Serving, TFMA,
the edge runtimes and the browser extension rely on, so they cannot drift apart.
"""
from __future__ import annotations

import os

# SavedModel signatures (trainer.export writes them).
SERVING_SIGNATURE = "serving_default"        # raw features by name, one value per row (REST, TFLite, TF.js)
TF_EXAMPLE_SIGNATURE = "serving_tf_example"  # serialized tf.Example (classify API, TFMA, error analysis)
TRANSFORM_SIGNATURE = "transform_features"   # serialized tf.Example -> transformed features incl. the label
OUTPUT_KEY = "outputs"                       # the one output of the prediction signatures
# The inference verbs of the REST API (/v1/models/<m>:<verb>); monitoring's health figures
# and alerting rules count only these requests.
INFERENCE_VERBS = ("predict", "classify", "regress")

# Beside the SavedModel, ignored by TF Serving and copied with the model by the Pusher.
EDGE_DIR = "assets.extra"
EDGE_SAVED_MODEL = "edge_saved_model"         # the edge module as a SavedModel (conversion source)
# The TFLite conversion source: the same module traced with TFLite's string ops
# (word n-grams by StringJoin: TFLite has no StringNGrams, TF.js no StringJoin).
EDGE_SAVED_MODEL_TFLITE = "edge_saved_model_tflite"
TFLITE_FILE = "model.tflite"
TFJS_DIR = "tfjs"
EDGE_SIGNATURE_FILE = "edge_signature.json"   # inputs in order, output, conversion facts
# The claim-neighbour index (LIAR's ClaimIndex artifact: index.npz, params.json), copied into
# the version by the Pusher: the gateway makes a request's record from it (serving.claim_records).
CLAIM_INDEX_DIR = "claim_index"


def edge_dir(model_dir: str) -> str:
    """``<model_dir>/assets.extra``: where a model's edge files live."""
    return os.path.join(model_dir, EDGE_DIR)


def edge_path(model_dir: str, name: str) -> str:
    """A file or directory of the edge layout inside a model directory."""
    return os.path.join(model_dir, EDGE_DIR, name)
