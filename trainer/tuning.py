"""TFX Tuner entry point (``tuner_fn='trainer.tuning.tuner_fn'``): KerasTuner search.

The search space and budget come from the config's ``tuner`` section; the
best hyperparameters flow to the Trainer (and to later ``--no-tune`` runs).
Every trial's model starts from the config's seed, as the Trainer's does: the
same data and config pick the same hyperparameters in every run.
"""
from __future__ import annotations

import keras_tuner
import tensorflow as tf
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


class DeclaredSpaceRandomSearch(keras_tuner.RandomSearch):
    """RandomSearch over a space declared up front (``search_space``).

    KerasTuner's default builds one model before the first trial, only to
    discover hyperparameters the build function declares (conditional ones
    included). Ours declares none: the whole space is passed in, and ``build``
    only reads ``hp.values``. That discovery build cost about 0.5 s of every
    Tuner run, for a model nobody trains. ``_populate_initial_space`` is the
    subroutine KerasTuner keeps for subclasses to override (AutoKeras does).
    """

    def _populate_initial_space(self) -> None:
        pass


def tuner_fn(fn_args) -> TunerFnResult:
    """A seeded RandomSearch over ``search_space`` with a small step budget per trial."""
    cfg = executor_config.config_from_slice(fn_args.custom_config, source="Tuner custom_config")
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    defaults = HyperParameters.from_trainer_config(cfg.trainer)

    def build(hp: keras_tuner.HyperParameters):
        # Seeded per trial, as trainer.train.fit_one seeds the Trainer: without it a trial's
        # initial weights (and dropout) follow whatever ran before in the process, the trials'
        # scores moved by ~0.005 between runs and the best trial could swap.
        tf.keras.utils.set_random_seed(cfg.trainer.seed)
        return build_for(cfg, tf_transform_output, defaults.updated(hp.values))

    tuner = DeclaredSpaceRandomSearch(
        build, max_trials=cfg.tuner.max_trials, hyperparameters=search_space(cfg),
        objective=keras_tuner.Objective("val_accuracy", "max"), seed=cfg.trainer.seed,
        directory=fn_args.working_dir, project_name="search", overwrite=True)
    # The datasets' shuffle seeds combine with the global seed as it stands when they are made.
    tf.keras.utils.set_random_seed(cfg.trainer.seed)
    train_ds, eval_ds = datasets(cfg, tf_transform_output, fn_args.train_files, fn_args.eval_files)
    return TunerFnResult(tuner=tuner, fit_kwargs={
        "x": train_ds, "validation_data": eval_ds, "epochs": 1,
        "steps_per_epoch": cfg.tuner.trial_steps, "validation_steps": cfg.trainer.eval_steps,
        "verbose": 0})
