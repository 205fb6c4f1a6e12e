"""A tiny SavedModel with the taxi export's signatures, and a gateway to test.

The model has exactly the serving interface trainer/export.py gives real
models (``serving_default`` over the raw features from the config,
``serving_tf_example`` over serialized tf.Examples), but a known formula:
p = sigmoid(bias + 0.05 * fare - [payment_type == "Cash"]), so tests can
check answers exactly and tell versions apart by their bias.
"""
import math
import os
import shutil
from typing import Any, Dict

import tensorflow as tf

from common.config import PipelineConfig
from trainer import features

FLOAT_FEATURE = "fare"
STRING_FEATURE = "payment_type"
CASH = "Cash"

# A complete, in-domain taxi serving row.
INSTANCE: Dict[str, Any] = {
    "fare": 12.45, "trip_miles": 2.1, "trip_seconds": 600, "payment_type": "Credit Card",
    "company": "Taxi Affiliation Services", "trip_start_hour": 19, "trip_start_day": 6,
    "trip_start_month": 5, "trip_start_timestamp": 1400269500, "pickup_community_area": 8,
    "dropoff_community_area": 32, "pickup_latitude": 41.9, "pickup_longitude": -87.63,
    "dropoff_latitude": 41.88, "dropoff_longitude": -87.62}


def probability(bias: float, fare: float, payment_type: str) -> float:
    logit = bias + 0.05 * fare - (1.0 if payment_type == CASH else 0.0)
    return 1.0 / (1.0 + math.exp(-logit))


def bias_of(version: int) -> float:
    return 0.5 * version - 1.0


def save_tiny_model(path: str, cfg: PipelineConfig, bias: float) -> str:
    """Writes the tiny model to ``path`` (a SavedModel directory)."""
    dtypes = features.serving_feature_dtypes(cfg)
    raw_signature = {name: tf.TensorSpec([None], features.tf_dtype(dtype), name=name)
                     for name, dtype in dtypes.items()}
    parse_spec = features.raw_feature_spec(cfg, include_label=False)

    def score(fare: tf.Tensor, cash: tf.Tensor) -> Dict[str, tf.Tensor]:
        logit = bias + 0.05 * fare - tf.cast(cash, tf.float32)
        return {"outputs": tf.sigmoid(tf.expand_dims(logit, -1))}

    class Tiny(tf.Module):
        @tf.function(input_signature=[raw_signature])
        def serve(self, raw):
            return score(tf.cast(raw[FLOAT_FEATURE], tf.float32), tf.equal(raw[STRING_FEATURE], CASH))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve_examples(self, serialized):
            parsed = tf.io.parse_example(serialized, parse_spec)
            fare = tf.reduce_sum(tf.sparse.to_dense(parsed[FLOAT_FEATURE]), axis=1)
            cash = tf.reduce_any(tf.equal(tf.sparse.to_dense(parsed[STRING_FEATURE], ""), CASH), axis=1)
            return score(fare, cash)

    module = Tiny()
    tf.saved_model.save(module, path, signatures={
        "serving_default": module.serve.get_concrete_function(),
        "serving_tf_example": module.serve_examples.get_concrete_function()})
    return path


def push_version(base_path: str, version: int, source: str) -> str:
    """Copies a SavedModel in as ``base_path/<version>`` the way the Pusher does:
    into a hidden staging directory first, then one rename."""
    staging = os.path.join(base_path, f".staging-{version}")
    shutil.copytree(source, staging)
    final = os.path.join(base_path, str(version))
    os.rename(staging, final)
    return final


ADMIN_TOKEN_ENV = "SERVING_ADMIN_TOKEN"  # configs/taxi.yaml's serving.admin_token_env default
ADMIN_TOKEN = "test-admin-token"


def gateway_args(config: str, root: str, *extra: str) -> list:
    """``python -m serving start`` arguments for a gateway over ``root/serving``."""
    overrides = [f"serving.push_dir={root}/serving", f"serving.request_log_dir={root}/request_log",
                 "serving.max_batch_rows=50", "serving.max_request_bytes=20000"]
    args = ["--config", config, "--poll_seconds", "0.2"]
    for override in overrides:
        args += ["--set", override]
    return args + list(extra)


def gateway_env() -> dict:
    return dict(os.environ, **{ADMIN_TOKEN_ENV: ADMIN_TOKEN})
