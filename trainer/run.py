"""TFX Trainer entry point (``run_fn='trainer.run.run_fn'``): a thin adapter.

Turns TFX's ``FnArgs`` into plain arguments for ``train()`` and
``export_serving_model()``; all logic lives in those testable functions.
"""
from __future__ import annotations

import tensorflow_transform as tft

from common import executor_config
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
    export_serving_model(model, tf_transform_output, cfg, fn_args.serving_model_dir)
