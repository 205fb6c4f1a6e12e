"""Pure logic of the custom components: gate messages, baselines, atomic push, progress."""
import io
import logging
import os

import numpy as np
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.anomalies_gate import describe_anomalies
from components.baselines import best_one_feature_rule, majority_accuracy, one_rule
from components.pusher import atomic_copy_model, next_version
from pipeline.progress import ProgressHandler


def test_gate_message_names_split_feature_and_anomaly():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["trip_miles"]
    info.description = "Expected data of type: FLOAT but got BYTES"
    info.reason.add(type=anomalies_pb2.AnomalyInfo.UNEXPECTED_DATA_TYPE)
    lines = describe_anomalies({"eval": anomalies, "train": anomalies_pb2.Anomalies()})
    assert lines == ["split 'eval': feature 'trip_miles': UNEXPECTED_DATA_TYPE: "
                     "Expected data of type: FLOAT but got BYTES"]


def test_majority_class_baseline():
    result = majority_accuracy(np.array([0, 0, 1]), np.array([0, 1, 1, 1]))
    assert result == {"predicts": 0, "accuracy": 0.25}


def test_one_rule_on_categories_and_quantiles():
    x_train = np.array([0, 0, 1, 1, 2])
    y_train = np.array([0, 0, 1, 1, 1])
    assert one_rule(x_train, y_train, np.array([0, 1, 2, 7]), fallback=0).tolist() == [0, 1, 1, 0]
    floats = np.linspace(0, 1, 100)
    labels = (floats > 0.5).astype(int)
    assert (one_rule(floats, labels, np.array([0.05, 0.95]), fallback=0) == [0, 1]).all()


def test_best_rule_picks_the_informative_feature():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    train = {"label": y, "noise": rng.integers(0, 5, 500), "signal": y * 3 + rng.integers(0, 2, 500)}
    best = best_one_feature_rule(train, train, "label", ["noise", "signal"])
    assert best["feature"] == "signal" and best["accuracy"] == 1.0


def test_atomic_push_keeps_versions_and_leaves_no_staging(tmp_path):
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"pb")
    base = str(tmp_path / "serving" / "taxi")
    first = atomic_copy_model(str(model), base)
    assert atomic_copy_model(str(model), base) == first  # same model again: no duplicate version
    (model / "saved_model.pb").write_bytes(b"pb2")
    second = atomic_copy_model(str(model), base)
    assert int(os.path.basename(second)) > int(os.path.basename(first))
    assert sorted(os.listdir(base)) == sorted([os.path.basename(first), os.path.basename(second)])
    assert (tmp_path / "serving" / "taxi" / os.path.basename(first) / "saved_model.pb").read_bytes() == b"pb"
    assert (tmp_path / "serving" / "taxi" / os.path.basename(second) / "saved_model.pb").read_bytes() == b"pb2"
    assert int(next_version(base)) > int(os.path.basename(second))


def test_progress_lines_from_orchestrator_log():
    out = io.StringIO()
    handler = ProgressHandler(out)
    logger = logging.getLogger("progress-test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.info("Component %s is running.", "Transform")
    logger.info("Component %s is finished.", "Transform")
    logger.info("Component %s is running.", "Trainer")
    logger.info("A cached execution %d is used.", 7)
    logger.info("Component %s is finished.", "Trainer")
    logger.info("Component %s is running.", "Evaluator")
    handler.fail()
    assert handler.states == {"Transform": "done", "Trainer": "cached", "Evaluator": "FAILED"}
    assert out.getvalue().splitlines()[1].split()[:2] == ["Trainer", "cached"]


def test_evaluator_drops_a_baseline_that_is_the_candidate():
    from tfx.types import standard_artifacts

    from components.evaluation import without_self_baseline

    def model(artifact_id):
        artifact = standard_artifacts.Model()
        artifact.id = artifact_id
        return artifact

    same = {"model": [model(7)], "baseline_model": [model(7)], "examples": []}
    assert "baseline_model" not in without_self_baseline(same)
    other = {"model": [model(8)], "baseline_model": [model(7)], "examples": []}
    assert without_self_baseline(other) is other
    first_run = {"model": [model(7)], "baseline_model": []}
    assert without_self_baseline(first_run) is first_run


def test_an_edited_curated_schema_is_a_new_import(tmp_path, taxi_config):
    """The schema importer's parameters (its cache key) follow the file's content."""
    import dataclasses

    from components.data import build_schema_importer

    path = tmp_path / "schema.pbtxt"
    path.write_text('feature { name: "fare" type: FLOAT }\n')
    cfg = dataclasses.replace(taxi_config, schema=str(path))
    first = build_schema_importer(cfg)
    assert first.id == "ImportSchemaGen" and first.exec_properties["schema_file"] == str(path)
    assert build_schema_importer(cfg).exec_properties == first.exec_properties
    path.write_text('feature { name: "fare" type: INT }\n')
    edited = build_schema_importer(cfg).exec_properties["schema_sha256"]
    assert edited != first.exec_properties["schema_sha256"]
    # compiling for another file system: the digest of the host's copy is passed in
    assert build_schema_importer(cfg, "abc").exec_properties["schema_sha256"] == "abc"
