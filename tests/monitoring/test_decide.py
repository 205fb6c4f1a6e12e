"""``python -m monitoring decide`` over checks recorded the real way: output, exit codes, ML Metadata,
the incident alert; and the serving version's eval accuracy read from a pipeline store's lineage."""
import json
import os

import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2 as mlmd
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from common.loader import load_config
from common.paths import REPO_ROOT
from monitoring.check import record_check
from monitoring.cli import main
from monitoring.decide import DECISIONS_FILE
from monitoring.eval_accuracy import EvalAccuracies
from monitoring.metadata import ALERT_TYPE, DECISION_TYPE, SPAN_TYPE, open_store
from tests.monitoring.test_retraining import MISSING_ALERT, SCHEMA_ALERT, check

TAXI = os.path.join(REPO_ROOT, "configs", "taxi.yaml")


def write_pipeline_store(path, evaluation_dir, version, accuracy):
    """A pipeline store holding the lineage TFX writes: Evaluator -> blessing -> Pusher -> PushedModel,
    with the evaluation's TFMA metrics (candidate and baseline accuracy, and their diff)."""
    metrics = metrics_for_slice_pb2.MetricsForSlice()
    for model, is_diff, value in (("candidate", False, accuracy), ("baseline", False, 0.1),
                                  ("candidate", True, accuracy - 0.1)):
        item = metrics.metric_keys_and_values.add()
        item.key.name, item.key.model_name, item.key.is_diff = "binary_accuracy", model, is_diff
        item.value.double_value.value = value
    sliced = metrics_for_slice_pb2.MetricsForSlice()
    sliced.slice_key.single_slice_keys.add(column="company", bytes_value=b"x")
    sliced.metric_keys_and_values.add().key.name = "binary_accuracy"
    os.makedirs(evaluation_dir)
    with tf.io.TFRecordWriter(os.path.join(evaluation_dir, "metrics-00000-of-00001.tfrecord")) as writer:
        writer.write(sliced.SerializeToString())
        writer.write(metrics.SerializeToString())
    store = open_store(path)
    types = {name: store.put_artifact_type(mlmd.ArtifactType(name=name))
             for name in ("ModelEvaluation", "ModelBlessing", "PushedModel")}
    evaluator, pusher = (store.put_execution_type(mlmd.ExecutionType(name=name)) for name in ("Evaluator", "Pusher"))
    evaluation = mlmd.Artifact(type_id=types["ModelEvaluation"], uri=evaluation_dir)
    blessing = mlmd.Artifact(type_id=types["ModelBlessing"])
    pushed = mlmd.Artifact(type_id=types["PushedModel"])
    pushed.custom_properties["pushed_version"].string_value = str(version)
    out, into = mlmd.Event(type=mlmd.Event.OUTPUT), mlmd.Event(type=mlmd.Event.INPUT)
    store.put_execution(mlmd.Execution(type_id=evaluator), [(evaluation, out), (blessing, out)], [])
    [blessing_id] = [a.id for a in store.get_artifacts_by_type("ModelBlessing")]
    blessing.id = blessing_id
    store.put_execution(mlmd.Execution(type_id=pusher), [(blessing, into), (pushed, out)], [])


def test_eval_accuracy_is_the_candidate_figure_of_the_run_that_pushed_the_version(tmp_path, taxi_config):
    write_pipeline_store(str(tmp_path / "metadata.db"), str(tmp_path / "evaluation"), 7, 0.81)
    cfg = load_config(TAXI, [f"retraining.pipeline_metadata={tmp_path}/metadata.db"])
    accuracies = EvalAccuracies(cfg)
    assert accuracies(7) == 0.81
    assert accuracies(8) is None
    assert "binary_accuracy" in accuracies.source
    assert EvalAccuracies(load_config(TAXI, [f"run_dir={tmp_path}/none"]))(7) is None


def test_decide_prints_every_rule_records_the_decision_and_alerts_on_an_incident(tmp_path, capsys):
    overrides = [f"run_dir={tmp_path}/runs", f"serving.request_log_dir={tmp_path}/log",
                 f"retraining.pipeline_metadata={tmp_path}/metadata.db",
                 "retraining.max_accuracy_drop=0.05", "retraining.drift_spans=0",
                 "retraining.min_new_labelled_rows=100"]
    write_pipeline_store(str(tmp_path / "metadata.db"), str(tmp_path / "evaluation"), 1, 0.8)
    cfg = load_config(TAXI, overrides)
    for result in (check(1, labelled=[(1, 200, 160)]), check(2, labelled=[(1, 200, 120)])):
        record_check(cfg, result)
    args = ["decide", "--config", TAXI] + [a for o in overrides for a in ("--set", o)]

    assert main(args) == 1                                  # accuracy 0.60 < 0.80 - 0.05: retrain
    out = capsys.readouterr().out
    assert "span 2 of model taxi: RETRAIN (retrain: accuracy_drop fired)" in out
    assert "trigger accuracy_drop: 0.2 (threshold 0.05) FIRED" in out
    assert "trigger sustained_drift: n/a (threshold off) not fired" in out
    assert "gate new_labels: 400 (threshold 100) passed" in out
    assert "proposed training window (request-log spans): [1, 2]" in out

    assert main(args + ["--span", "1"]) == 0               # as of span 1: 0.80 is no drop
    assert "span 1 of model taxi: no retraining" in capsys.readouterr().out

    # span 3 is broken upstream: an alert, and never in the window
    record_check(cfg, check(3, [SCHEMA_ALERT, MISSING_ALERT], labelled=[(1, 200, 20)]))
    assert main(args) == 0   # span 2's retrain decision took its labels: the gate blocks
    out = capsys.readouterr().out
    assert "EXCLUDED span 3 (data incident): schema company" in out
    assert "ALERT data_incident: span 3 is a data incident" in out
    assert "gate new_labels: 0 (threshold 100) NOT passed" in out
    assert "proposed training window (request-log spans): [1, 2]" in out

    alerts_dir = os.path.join(str(tmp_path), "runs", "taxi", "monitoring")
    with open(os.path.join(alerts_dir, "alerts.jsonl")) as f:
        incident = [json.loads(line) for line in f if '"data_incident"' in line]
    assert len(incident) == 1 and incident[0]["span"] == 3
    with open(os.path.join(alerts_dir, DECISIONS_FILE)) as f:
        decisions = [json.loads(line) for line in f]
    assert [(d["span"], d["retrain"]) for d in decisions] == [(2, True), (1, False), (3, False)]
    assert decisions[2]["incidents"] == {"3": ["schema company FEATURE_TYPE_LOW_FRACTION_PRESENT "
                                               "(company is missing in 100% of rows)",
                                               "skew fare missing_fraction"]}

    store = open_store(os.path.join(str(tmp_path), "runs", "taxi", "monitoring.db"))
    executions = store.get_executions_by_type(DECISION_TYPE)
    assert [e.properties["retrain"].int_value for e in executions] == [1, 0, 0]
    last = executions[-1]
    assert json.loads(last.properties["window"].string_value) == [1, 2]
    assert last.properties["eval_accuracy"].double_value == 0.8
    rules = json.loads(last.properties["rules"].string_value)
    assert {r["rule"] for r in rules} == {"accuracy_drop", "sustained_drift", "max_age", "new_labels"}
    events = store.get_events_by_execution_ids([last.id])
    inputs = store.get_artifacts_by_id([e.artifact_id for e in events if e.type == mlmd.Event.INPUT])
    outputs = store.get_artifacts_by_id([e.artifact_id for e in events if e.type == mlmd.Event.OUTPUT])
    span_type, alert_type = store.get_artifact_type(SPAN_TYPE).id, store.get_artifact_type(ALERT_TYPE).id
    assert sorted(a.properties["span"].int_value for a in inputs if a.type_id == span_type) == [1, 2, 3]
    assert [a.properties["comparator"].string_value for a in outputs if a.type_id == alert_type] == [
        "data_incident"]


def test_decide_without_checks_exits_2(tmp_path, capsys):
    assert main(["decide", "--config", TAXI, "--set", f"run_dir={tmp_path}"]) == 2
    assert "no recorded check to decide from" in capsys.readouterr().err


def test_promotions_are_read_from_the_canarys_record_oldest_first(tmp_path):
    """Only ``promote`` lines count; the canary appends them as ``monitoring.canary`` writes them."""
    from monitoring import locations
    from monitoring.canary import CANARY_FILE
    from monitoring.decide import read_promotions

    cfg = load_config(TAXI, [f"run_dir={tmp_path}/runs"], require_data=False)
    assert read_promotions(cfg) == []
    os.makedirs(locations.alerts_dir(cfg))
    lines = [{"action": "promote", "decided_ms": 3000, "candidate": {"version": 7}},
             {"action": "clear", "decided_ms": 2000, "candidate": {"version": 6}},
             {"action": "promote", "decided_ms": 1000, "candidate": {"version": 5}}]
    with open(os.path.join(locations.alerts_dir(cfg), CANARY_FILE), "w") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))
    assert read_promotions(cfg) == [(1000, 5), (3000, 7)]
