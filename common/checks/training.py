"""``trainer`` and ``tuner``: positive budgets, probabilities in range, options that fit the label."""
from __future__ import annotations

from typing import Callable

from common.config import BAG_POOLINGS, PipelineConfig


def check(cfg: PipelineConfig, fail: Callable) -> None:
    trainer = cfg.trainer
    for key in ("train_steps", "eval_steps", "batch_size", "hidden_units", "num_layers",
                "embedding_dim", "ensemble_size"):
        if getattr(trainer, key) < 1:
            fail(f"trainer.{key}", "a positive integer", getattr(trainer, key))
    if not 0 < trainer.learning_rate < 1:
        fail("trainer.learning_rate", "a number between 0 and 1", trainer.learning_rate)
    for key in ("dropout", "token_dropout", "weight_averaging"):
        if not 0 <= getattr(trainer, key) < 1:
            fail(f"trainer.{key}", "a number in [0, 1)", getattr(trainer, key))
    if trainer.wide_bag_pooling not in BAG_POOLINGS:
        fail("trainer.wide_bag_pooling", f"one of {list(BAG_POOLINGS)}", trainer.wide_bag_pooling)
    # Keras starts the average at the initial weights, without bias correction.
    if trainer.weight_averaging ** trainer.train_steps > 0.01:
        fail("trainer.weight_averaging", "a momentum whose average forgets the initial weights "
             f"within trainer.train_steps ({trainer.train_steps}): momentum^train_steps <= 0.01",
             trainer.weight_averaging)
    if trainer.fold_loss_weight < 0:
        fail("trainer.fold_loss_weight", "a weight >= 0", trainer.fold_loss_weight)
    if trainer.fold_loss_weight and (cfg.num_classes < 3 or not cfg.label.positive_classes):
        fail("trainer.fold_loss_weight", "0 unless the model trains on several classes "
             "with label.positive_classes and label.fold_to_binary: false", trainer.fold_loss_weight)
    if trainer.early_stopping_patience < 0:
        fail("trainer.early_stopping_patience", "0 (off) or a positive number of epochs",
             trainer.early_stopping_patience)
    if not 0 <= trainer.feature_dropout_share < 1:
        fail("trainer.feature_dropout_share", "a number in [0, 1)", trainer.feature_dropout_share)
    names = [f.name for f in cfg.features]
    for col in trainer.feature_dropout_keep:
        if col not in names:
            fail("trainer.feature_dropout_keep", f"feature names from {names}", col)
    if cfg.tuner.max_trials < 1 or cfg.tuner.trial_steps < 1:
        fail("tuner.max_trials/trial_steps", "positive integers",
             (cfg.tuner.max_trials, cfg.tuner.trial_steps))
