"""Plain training: config + Transform output in, fitted Keras model out.

No TFX types here, so the whole loop is testable on a small materialised
dataset; ``components.trainer_run.run_fn`` is only the adapter from TFX's ``FnArgs``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Dict, Iterable, Optional

import tensorflow as tf
import tensorflow_transform as tft

from common.config import PipelineConfig
from trainer import data, feature_dropout, features
from trainer.ensemble import merge_members
from trainer.model import HyperParameters, build_model

_EPOCHS = 10  # train_steps are split into this many epochs so early stopping can act


class _EpochLogger(tf.keras.callbacks.Callback):
    """Epoch metrics to the log (the run's log file), not the terminal."""

    def on_epoch_end(self, epoch, logs=None):
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        logging.info("epoch %d: %s", epoch + 1, metrics)


def vocabulary_sizes(cfg: PipelineConfig, tf_transform_output: tft.TFTransformOutput) -> Dict[str, int]:
    """Vocabulary size per categorical feature, as Transform computed it."""
    return {f.name: tf_transform_output.vocabulary_size_by_name(features.vocabulary_name(f.name))
            for f in cfg.features if features.uses_vocabulary(f)}


def model_inputs_for(cfg: PipelineConfig, tf_transform_output: tft.TFTransformOutput) -> list:
    """The model's inputs (transformed keys, sizes) for this config and Transform output."""
    return features.model_inputs(cfg, vocabulary_sizes(cfg, tf_transform_output))


def build_for(cfg: PipelineConfig, tf_transform_output: tft.TFTransformOutput,
              hparams: HyperParameters) -> tf.keras.Model:
    """The model for this dataset's transformed features."""
    return build_model(model_inputs_for(cfg, tf_transform_output), hparams, cfg.num_classes,
                       cfg.label.positive_class_ids, cfg.trainer.fold_loss_weight)


def datasets(cfg: PipelineConfig, tf_transform_output: tft.TFTransformOutput,
             train_patterns: Iterable[str], eval_patterns: Iterable[str]):
    """(train, eval) datasets of transformed features and labels; training rows
    get feature dropout when the config asks for it (trainer.feature_dropout)."""
    spec = tf_transform_output.transformed_feature_spec()
    label = features.transformed_label_name(cfg)
    seed, batch = cfg.trainer.seed, cfg.trainer.batch_size
    train_ds = data.make_dataset(train_patterns, spec, label, batch, seed)
    if cfg.trainer.feature_dropout_share:
        train_ds = feature_dropout.apply_dropout(
            train_ds, feature_dropout.dropped_keys(cfg, model_inputs_for(cfg, tf_transform_output)),
            feature_dropout.missing_row(cfg, tf_transform_output), cfg.trainer.feature_dropout_share, seed)
    return train_ds, data.make_dataset(eval_patterns, spec, label, batch, seed, shuffle=False)


def train(cfg: PipelineConfig, tf_transform_output: tft.TFTransformOutput,
          train_patterns: Iterable[str], eval_patterns: Iterable[str],
          hparams: Optional[HyperParameters] = None, train_steps: Optional[int] = None,
          log_dir: Optional[str] = None) -> tf.keras.Model:
    """Fits the model; with ``trainer.ensemble_size`` > 1, that many members (seeds
    seed, seed + 1, ...) fused into one model of the same graph (``trainer.ensemble``)."""
    size = cfg.trainer.ensemble_size
    if size == 1:
        return fit_one(cfg, tf_transform_output, train_patterns, eval_patterns, hparams, train_steps, log_dir)
    members = []
    for k in range(size):
        member_cfg = replace(cfg, trainer=replace(cfg.trainer, seed=cfg.trainer.seed + k))
        member_log = os.path.join(log_dir, f"member_{k}") if log_dir else None
        logging.info("ensemble member %d of %d (seed %d)", k + 1, size, member_cfg.trainer.seed)
        members.append(fit_one(member_cfg, tf_transform_output, train_patterns, eval_patterns,
                               hparams, train_steps, member_log))
    hparams = hparams or HyperParameters.from_trainer_config(cfg.trainer)
    return merge_members(members, model_inputs_for(cfg, tf_transform_output), hparams, cfg.num_classes)


def fit_one(cfg: PipelineConfig, tf_transform_output: tft.TFTransformOutput,
            train_patterns: Iterable[str], eval_patterns: Iterable[str],
            hparams: Optional[HyperParameters] = None, train_steps: Optional[int] = None,
            log_dir: Optional[str] = None) -> tf.keras.Model:
    """Fits one model with a fixed seed and, unless ``early_stopping_patience`` is 0,
    early stopping on the eval loss (the best epoch's weights are kept)."""
    tf.keras.utils.set_random_seed(cfg.trainer.seed)
    hparams = hparams or HyperParameters.from_trainer_config(cfg.trainer)
    steps = train_steps or cfg.trainer.train_steps
    train_ds, eval_ds = datasets(cfg, tf_transform_output, train_patterns, eval_patterns)
    model = build_for(cfg, tf_transform_output, hparams)
    callbacks = [_EpochLogger()]
    if cfg.trainer.early_stopping_patience:
        callbacks.append(tf.keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=cfg.trainer.early_stopping_patience, restore_best_weights=True))
    if log_dir:
        callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
    epochs = min(_EPOCHS, steps)
    model.fit(train_ds, steps_per_epoch=max(1, steps // epochs), epochs=epochs,
              validation_data=eval_ds, validation_steps=cfg.trainer.eval_steps,
              callbacks=callbacks, verbose=0)
    return model
