"""A serving-only edit keeps Transform and the Trainer cached: the real DAG on a few
hundred taxi rows, run twice in one pipeline root and metadata store, read back from
ML Metadata. (Each executor gets only its slice of the config: common.executor_config.)"""
import os

import pytest
from ml_metadata.proto import metadata_store_pb2

from pipeline.__main__ import main
from pipeline.results import latest_run_executions
from pipeline.run_paths import local_paths
from tests.conftest import TAXI_CONFIG
from tests.e2e.conftest import config_for, small_overrides, write_sample

pytestmark = pytest.mark.e2e

# Kept small: no Tuner (nor earlier tuned values), no edge exports; the same in both runs.
FAST = ["tuner.enabled=false", "tuner.reuse_last=false", "serving.edge_exports=false"]
# Read by the gateway and the request log only.
SERVING_ONLY = ["serving.rest_port=9100", "serving.max_batch_rows=64", "serving.request_log_dir=other/request_log"]
Execution = metadata_store_pb2.Execution


def _run(root, data_dir, *extra):
    args = ["run", "--config", TAXI_CONFIG]
    for override in small_overrides(root, data_dir) + FAST + list(extra):
        args += ["--set", override]
    assert main(args) == 0
    cfg = config_for(root, data_dir, *FAST, *extra)
    return latest_run_executions(local_paths(cfg).metadata, cfg.pipeline_name)


def test_a_serving_only_edit_reruns_neither_transform_nor_the_trainer(tmp_path):
    root = str(tmp_path)
    data_dir = write_sample(os.path.join(root, "data"))
    first = _run(root, data_dir)
    assert {first[node].last_known_state for node in ("Transform", "Trainer")} == {Execution.COMPLETE}

    second = _run(root, data_dir, *SERVING_ONLY)
    for node in ("Transform", "Trainer"):
        assert second[node].id != first[node].id, f"{node}: no execution of the second run"
        assert second[node].last_known_state == Execution.CACHED, (
            f"{node} re-ran after a serving-only edit: "
            f"{Execution.State.Name(second[node].last_known_state)}")
