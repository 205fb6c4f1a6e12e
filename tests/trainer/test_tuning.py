"""trainer.tuning: the KerasTuner search the Tuner runs, on a real Transform output of a few rows."""
import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from common import executor_config
from tests.trainer.conftest import write_transformed
from trainer import tuning


@pytest.fixture(scope="module")
def transformed_file(transform_output, tmp_path_factory):
    tft_output, rows = transform_output
    path = str(tmp_path_factory.mktemp("tuning") / "rows.gz")
    write_transformed(rows * 4, tft_output.transformed_feature_spec(), path)
    return path


def _tuner(cfg, transform_output, path, working_dir):
    transform_dir = os.path.dirname(transform_output[0].transform_savedmodel_dir)
    fn_args = FnArgs(train_files=[path], eval_files=[path], working_dir=str(working_dir),
                     transform_graph_path=transform_dir, custom_config=executor_config.tuner(cfg))
    return tuning.tuner_fn(fn_args)


def _small(cfg):
    return dataclasses.replace(
        cfg, trainer=dataclasses.replace(cfg.trainer, batch_size=4, eval_steps=1),
        tuner=dataclasses.replace(cfg.tuner, max_trials=2, trial_steps=3))


def _trial_losses(result):
    trials = result.tuner.oracle.trials.values()
    return {tuple(sorted(t.hyperparameters.values.items())): t.metrics.get_best_value("val_loss")
            for t in trials}


def test_a_search_is_the_same_whatever_ran_before(taxi_config, transform_output, transformed_file, tmp_path):
    """Each trial starts from the config's seed: another search in the same process, after
    the global random state has moved on, gives every trial the same validation loss."""
    cfg = _small(taxi_config)
    first = _tuner(cfg, transform_output, transformed_file, tmp_path / "first")
    first.tuner.search(**first.fit_kwargs)
    tf.random.uniform([1000])  # what ran before (Transform, another trial) moves the global state
    np.random.rand(1000)
    second = _tuner(cfg, transform_output, transformed_file, tmp_path / "second")
    second.tuner.search(**second.fit_kwargs)
    losses = _trial_losses(first)
    assert len(losses) == 2
    assert losses == _trial_losses(second)


def test_models_are_built_only_for_trials(taxi_config, transform_output, transformed_file, tmp_path,
                                          monkeypatch):
    """The space is declared up front, so no model is built before the first trial."""
    builds = []
    real_build_for = tuning.build_for
    monkeypatch.setattr(tuning, "build_for", lambda *a, **k: builds.append(1) or real_build_for(*a, **k))
    result = _tuner(_small(taxi_config), transform_output, transformed_file, tmp_path)
    assert builds == []
    result.tuner.search(**result.fit_kwargs)
    assert len(builds) == 2
    assert len(result.tuner.oracle.trials) == 2
