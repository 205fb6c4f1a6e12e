"""TFX Tuner entry point (``tuner_fn='trainer.tuning.tuner_fn'``): KerasTuner search.

The search space and budget come from the config's ``tuner`` section; the
best hyperparameters flow to the Trainer (and to later ``--no-tune`` runs).
"""
from __future__ import annotations

import keras_tuner
import tensorflow_transform as tft
from tfx.components.tuner.component import TunerFnResult

from common import executor_config
from common.config import PipelineConfig
from trainer.model import HyperParameters
from trainer.train import build_for, datasets


def search_space(cfg: PipelineConfig) -> keras_tuner.HyperParameters:
    """The hyperparameters KerasTuner samples, from the config."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("learning_rate", list(cfg.tuner.learning_rates))
    hp.Choice("hidden_units", list(cfg.tuner.hidden_units))
    hp.Choice("num_layers", list(cfg.tuner.num_layers))
    return hp


def tuner_fn(fn_args) -> TunerFnResult:
    """A seeded RandomSearch over ``search_space`` with a small step budget per trial."""
    cfg = executor_config.config_from_slice(fn_args.custom_config, source="Tuner custom_config")
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    defaults = HyperParameters.from_trainer_config(cfg.trainer)

    def build(hp: keras_tuner.HyperParameters):
        return build_for(cfg, tf_transform_output, defaults.updated(hp.values))

    tuner = keras_tuner.RandomSearch(
        build, max_trials=cfg.tuner.max_trials, hyperparameters=search_space(cfg),
        objective=keras_tuner.Objective("val_accuracy", "max"), seed=cfg.trainer.seed,
        directory=fn_args.working_dir, project_name="search", overwrite=True)
    train_ds, eval_ds = datasets(cfg, tf_transform_output, fn_args.train_files, fn_args.eval_files)
    return TunerFnResult(tuner=tuner, fit_kwargs={
        "x": train_ds, "validation_data": eval_ds, "epochs": 1,
        "steps_per_epoch": cfg.tuner.trial_steps, "validation_steps": cfg.trainer.eval_steps,
        "verbose": 0})
