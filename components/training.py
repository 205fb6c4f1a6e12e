"""Tuner and Trainer, wired by dotted module path (``trainer.tuning``, ``components.trainer_run``).

Dotted paths (not ``module_file``) keep imports between our modules working on
Kubeflow, where the project is installed in the image. The config reaches
``tuner_fn`` and ``run_fn`` through ``custom_config``: each its own slice
(``common.executor_config``), so an edit the Trainer does not read keeps it cached.
"""
from __future__ import annotations

from typing import Optional

from common import executor_config
from common.config import PipelineConfig
from components.tfx_api import tfx

TUNER_FN = "trainer.tuning.tuner_fn"
RUN_FN = "components.trainer_run.run_fn"


def _fit_args(cfg: PipelineConfig, transformed_examples, transform_graph, train_steps: int,
              custom_config: dict) -> dict:
    """What Tuner and Trainer share: data, Transform graph, step budgets and their config slice."""
    return dict(
        examples=transformed_examples,
        transform_graph=transform_graph,
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=cfg.trainer.eval_steps),
        custom_config=custom_config)


def build_tuner(cfg: PipelineConfig, transformed_examples, transform_graph) -> tfx.components.Tuner:
    return tfx.components.Tuner(
        tuner_fn=TUNER_FN,
        **_fit_args(cfg, transformed_examples, transform_graph, cfg.tuner.trial_steps,
                     executor_config.tuner(cfg)))


def build_last_hyperparameters_resolver() -> tfx.dsl.Resolver:
    """The most recent tuned hyperparameters, for runs that skip the search (--no-tune)."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        hyperparameters=tfx.dsl.Channel(type=tfx.types.standard_artifacts.HyperParameters),
    ).with_id("latest_hyperparameters_resolver")


def build_trainer(cfg: PipelineConfig, transformed_examples, transform_graph,
                  hyperparameters: Optional[tfx.dsl.Channel]) -> tfx.components.Trainer:
    return tfx.components.Trainer(
        run_fn=RUN_FN, hyperparameters=hyperparameters,
        **_fit_args(cfg, transformed_examples, transform_graph, cfg.trainer.train_steps,
                     executor_config.trainer(cfg)))
