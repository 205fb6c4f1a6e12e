"""The real DAG on a few hundred taxi rows: push, serve, gate and regression."""
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from ml_metadata.proto import metadata_store_pb2

from common.paths import REPO_ROOT
from monitoring.eval_accuracy import EvalAccuracies
from pipeline.__main__ import main
from pipeline.results import collect, latest_run_executions
from pipeline.run_paths import local_paths
from serving.server import launch
from tests.conftest import TAXI_CONFIG
from tests.e2e.conftest import config_for, small_overrides, write_sample

pytestmark = pytest.mark.e2e

ALL_COMPONENTS = {"CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                  "AnomaliesGate", "Transform", "Tuner", "Trainer", "TrivialBaselines",
                  "latest_blessed_model_resolver", "Evaluator", "InfraValidator", "Pusher"}


def _cli(root, data_dir, *extra):
    args = ["run", "--config", TAXI_CONFIG]
    for override in small_overrides(root, data_dir) + list(extra):
        args += ["--set", override]
    return main(args)


def _versions(cfg):
    return sorted(d for d in os.listdir(cfg.push_dir) if d.isdigit()) if os.path.isdir(cfg.push_dir) else []


@pytest.fixture(scope="module")
def first_run(sample_root):
    root, data_dir = sample_root
    code = _cli(root, data_dir)
    return config_for(root, data_dir), code


def test_every_component_runs_and_model_is_pushed(first_run, capsys):
    cfg, code = first_run
    assert code == 0
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert ALL_COMPONENTS <= set(result.artifacts) | {"latest_blessed_model_resolver"}
    assert result.model_blessed and result.infra_blessed and result.pushed
    assert result.metrics["auc"] > 0.6
    assert " beats " in result.baseline_gate  # the baseline gate ran and passed
    assert result.baselines["majority_class"]["accuracy"] > 0.5
    versions = _versions(cfg)
    assert len(versions) == 1
    assert result.pushed_to == os.path.join(cfg.push_dir, versions[0])
    assert os.path.isfile(os.path.join(result.pushed_to, "saved_model.pb"))
    # the edge exports travel inside the model artifact, next to the SavedModel
    for edge_file in ("model.tflite", "tfjs/model.json", "edge_signature.json", "edge_saved_model/saved_model.pb"):
        assert os.path.isfile(os.path.join(result.pushed_to, "assets.extra", edge_file)), edge_file


def test_retraining_rule_reads_the_pushed_versions_eval_accuracy_from_the_runs_lineage(first_run):
    """monitoring.eval_accuracy follows the real run's ML Metadata from the pushed
    version back to the Evaluator: the figure equals the one the run summary reports."""
    cfg, _ = first_run
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    accuracies = EvalAccuracies(cfg)
    assert accuracies.path == local_paths(cfg).metadata
    version = int(_versions(cfg)[-1])
    assert accuracies(version) == pytest.approx(result.metrics["binary_accuracy"], abs=1e-9)
    assert accuracies(version + 1) is None  # never pushed


def test_pushed_model_answers_a_rest_request(first_run, sample_root):
    cfg, _ = first_run
    version = _versions(cfg)[-1]
    instance = {"fare": 12.45, "trip_miles": 2.1, "trip_seconds": 600, "payment_type": "Credit Card",
                "company": "Taxi Affiliation Services", "trip_start_hour": 19, "trip_start_day": 6,
                "trip_start_month": 5, "trip_start_timestamp": 1400269500,
                "pickup_community_area": 8, "dropoff_community_area": 32,
                "pickup_latitude": 41.9, "pickup_longitude": -87.63,
                "dropoff_latitude": 41.88, "dropoff_longitude": -87.62}
    # The gateway as `make serve` starts it: model base path, schema and limits from the config.
    overrides = [arg for o in small_overrides(*sample_root) for arg in ("--set", o)]
    with launch(["--config", TAXI_CONFIG, *overrides, "--no_request_log"]) as server:
        body = json.dumps({"instances": [instance, dict(instance, payment_type="Cash")]}).encode()
        request = urllib.request.Request(server.model_url(cfg.serving.model_name) + ":predict", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            predictions = json.load(response)["predictions"]
        assert response.headers["X-Model-Version"] == version
    assert len(predictions) == 2
    assert all(0.0 <= p[0] <= 1.0 for p in predictions)


def test_a_rerun_with_nothing_changed_answers_in_seconds_without_tf(first_run, sample_root):
    """The first run recorded its fingerprints; the same command in a new process decides
    from them, before importing TF/TFX/Beam, that nothing would execute."""
    cfg, _ = first_run
    root, data_dir = sample_root
    cmd = [sys.executable, "-X", "importtime", "-m", "pipeline", "run", "--config", TAXI_CONFIG]
    for override in small_overrides(root, data_dir):
        cmd += ["--set", override]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.time() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nothing changed since run " in proc.stdout
    assert local_paths(cfg).report in proc.stdout and "Evaluator: BLESSED" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "apache_beam", "ml_metadata")
                or m.startswith("tfx.") and m != "tfx.version"}
    assert seconds < 5.0, f"no-op rerun took {seconds:.1f}s"


def test_worse_model_is_not_pushed_and_first_version_stays(first_run, sample_root, capsys):
    cfg, _ = first_run
    root, data_dir = sample_root
    before = _versions(cfg)
    # a barely trained model, reusing the last tuned hyperparameters (as --no-tune does)
    code = _cli(root, data_dir, "trainer.train_steps=1", "trainer.learning_rate=0.000001",
                "tuner.enabled=false")
    assert code == 0
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert result.model_blessed is False and not result.pushed
    assert any("auc" in failure for failure in result.blessing_failures)
    assert _versions(cfg) == before
    out, err = capsys.readouterr()
    assert "Evaluator: NOT blessed (" in out and "Traceback" not in err
    # the changed rerun executed: the no-op check named what changed, the Trainer ran
    because = next(line for line in out.splitlines() if line.startswith("  runs because: "))
    assert all(key in because for key in ("trainer.train_steps", "trainer.learning_rate", "tuner.enabled"))
    trainer = latest_run_executions(local_paths(cfg).metadata, cfg.pipeline_name)["Trainer"]
    assert trainer.last_known_state == metadata_store_pb2.Execution.COMPLETE


def test_corrupted_column_stops_before_transform(tmp_path, capsys):
    root = str(tmp_path)
    data_dir = write_sample(os.path.join(root, "bad_data"), corrupt_column="trip_miles")
    code = _cli(root, data_dir)
    err = capsys.readouterr().err
    assert code == 1
    assert "data validation failed" in err and "'trip_miles'" in err
    assert "Traceback" not in err and "traceback in" not in err
    cfg = config_for(root, data_dir)
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert "Transform" not in result.artifacts and not result.pushed
    assert not os.path.exists(cfg.push_dir)
