"""TFX Trainer entry point (``run_fn='components.trainer_run.run_fn'``): a thin adapter.

Turns TFX's ``FnArgs`` into plain arguments for ``trainer.train.train()`` and
``export_model()``; all logic lives in those testable functions.

Why here and not in ``trainer/``: the model artifact carries its TFLite and
TF.js files, and the conversion (``edge``) sits above the trainer, which only
writes what needs the Transform analysis (the SavedModel and the edge
SavedModels). This module runs both, in that order, inside the Trainer.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from common import executor_config
from common.config import PipelineConfig
from edge import convert
from trainer import edge_graph, features
from trainer.export import export_serving_model
from trainer.model import HyperParameters
from trainer.train import train


def run_fn(fn_args) -> None:
    """Trains with tuned hyperparameters when the Tuner (or its last run) provides them."""
    cfg = executor_config.config_from_slice(fn_args.custom_config, source="Trainer custom_config")
    hparams = HyperParameters.from_trainer_config(cfg.trainer)
    if fn_args.hyperparameters:
        hparams = hparams.updated(fn_args.hyperparameters.get("values", {}))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    model = train(cfg, tf_transform_output, fn_args.train_files, fn_args.eval_files,
                  hparams=hparams, train_steps=fn_args.train_steps, log_dir=fn_args.model_run_dir)
    export_model(model, tf_transform_output, cfg, fn_args.serving_model_dir)


def export_model(model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput, cfg: PipelineConfig,
                 serving_dir: str) -> None:
    """The SavedModel with its signatures and, unless ``serving.edge_exports`` is off, its edge
    files under ``assets.extra/``: the edge SavedModels, then their TFLite and TF.js conversions.

    A failed conversion stops the Trainer like a failed edge graph, naming the
    config switch that turns the edge exports off.
    """
    export_serving_model(model, tf_transform_output, cfg, serving_dir)
    if not cfg.serving.edge_exports:
        return
    with edge_graph.edge_export_failure(cfg):
        source = {"dataset": cfg.name, "model_name": cfg.serving.model_name, "model_version": None}
        convert.convert(serving_dir, list(features.serving_feature_dtypes(cfg)), source,
                        lowercase_inputs=edge_graph.ascii_lowercase_inputs(cfg))
