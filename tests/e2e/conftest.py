"""A few hundred taxi rows and a config that trains in a few steps, for real DAG runs."""
import csv
import os

import pytest

from pipeline.config import load_config, taxi_data_dir
from tests.conftest import TAXI_CONFIG

SAMPLE_ROWS = 400


def write_sample(directory: str, corrupt_column: str = None) -> str:
    """The first SAMPLE_ROWS rows of the taxi CSV (optionally one column made text)."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(taxi_data_dir(), "data.csv"), newline="") as f:
        rows = [row for _, row in zip(range(SAMPLE_ROWS + 1), csv.reader(f))]
    if corrupt_column:
        col = rows[0].index(corrupt_column)
        for row in rows[1:]:
            row[col] = "corrupted"
    with open(os.path.join(directory, "data.csv"), "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return directory


def small_overrides(root: str, data_dir: str):
    return [f"data.path={data_dir}", f"run_dir={root}/runs", f"serving.push_dir={root}/serving",
            "trainer.train_steps=100", "trainer.eval_steps=5", "trainer.batch_size=64",
            "tuner.max_trials=1", "tuner.trial_steps=10",
            "evaluation.min_auc=0.6", "evaluation.min_accuracy=0.6", "serving.canary_requests=5",
            # The e2e tests check the DAG, not latency: a loaded 2-core machine must not fail them.
            "serving.latency_budget_ms=10000"]


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("e2e"))
    return root, write_sample(os.path.join(root, "data"))


def config_for(root, data_dir, *extra):
    return load_config(TAXI_CONFIG, small_overrides(root, data_dir) + list(extra))
