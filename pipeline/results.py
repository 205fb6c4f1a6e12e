"""What the latest run produced, read back from ML Metadata.

The summary a person sees after ``python -m pipeline run`` is derived from the
metadata store (not from in-process state), so it is exactly what is traceable
there: metrics, baselines, blessings and where the model was pushed.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ml_metadata import errors as mlmd_errors
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components import baseline_gate
from components.accepted_statistics import DRIFT_CHECKED, GATE_NOTES
from components.baselines import BASELINES_FILE
from components.error_analysis import ANALYSIS_FILE
from components.span_inputs import EXAMPLE_GEN_ID
from components.text_baselines import TEXT_BASELINES_FILE
from components.time_split import EVAL_SPAN, SPAN_VERSIONS, TRAIN_SPANS


@dataclass
class RunResult:
    """Outputs of the most recent pipeline run."""
    metrics: Dict[str, object] = field(default_factory=dict)  # numbers, or text as TFMA wrote it
    baselines: Dict[str, dict] = field(default_factory=dict)
    model_blessed: Optional[bool] = None
    blessing_failures: List[str] = field(default_factory=list)  # every rule that blocked the model
    baseline_gate: str = ""  # the baseline gate's comparison, passed or not
    infra_blessed: Optional[bool] = None
    infra_reason: str = ""
    pushed: bool = False
    pushed_to: str = ""
    text_baselines: Dict[str, dict] = field(default_factory=dict)  # split -> baseline -> figures
    analysis: Dict[str, object] = field(default_factory=dict)  # ErrorAnalysis's analysis.json
    evaluation_uri: str = ""
    artifacts: Dict[str, Dict[str, str]] = field(default_factory=dict)
    # Spans (data.spans): {"train": [spans], "eval": span, "versions": {span: {version, artifact_id}},
    # "ingested": the span this run's ExampleGen ingested}; empty for the hash split.
    spans: Dict[str, object] = field(default_factory=dict)
    drift_checked: Optional[bool] = None  # None: the gate did not pass (or did not run)
    gate_notes: List[str] = field(default_factory=list)


def _store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _latest_run(store: metadata_store.MetadataStore,
                pipeline_name: str) -> List[Tuple[str, metadata_store_pb2.Execution]]:
    """(node id, execution) of every execution in the newest run of ``pipeline_name``."""
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
        return []
    pipeline_executions = store.get_executions_by_context(pipeline_ctx.id)
    if not pipeline_executions:
        return []
    # The newest execution belongs to the newest run; that run's context holds all of its executions.
    newest = max(pipeline_executions, key=lambda e: e.id)
    run_type_id = store.get_context_type("pipeline_run").id
    node_type_id = store.get_context_type("node").id
    run_ctx = next(c for c in store.get_contexts_by_execution(newest.id) if c.type_id == run_type_id)
    node_prefix = pipeline_name + "."
    nodes = []
    for execution in store.get_executions_by_context(run_ctx.id):
        for ctx in store.get_contexts_by_execution(execution.id):
            if ctx.type_id == node_type_id and ctx.name.startswith(node_prefix):
                nodes.append((ctx.name[len(node_prefix):], execution))
    return nodes


def latest_run_executions(metadata_path: str, pipeline_name: str) -> Dict[str, metadata_store_pb2.Execution]:
    """node id -> its newest execution in the newest run; ``last_known_state`` tells
    whether it ran (COMPLETE) or reused an earlier execution's outputs (CACHED)."""
    executions: Dict[str, metadata_store_pb2.Execution] = {}
    for node, execution in _latest_run(_store(metadata_path), pipeline_name):
        if node not in executions or execution.id > executions[node].id:
            executions[node] = execution
    return executions


def latest_run_outputs(metadata_path: str, pipeline_name: str) -> Dict[str, Dict[str, metadata_store_pb2.Artifact]]:
    """node id -> output key -> artifact, for the newest run of ``pipeline_name``."""
    store = _store(metadata_path)
    node_of = {execution.id: node for node, execution in _latest_run(store, pipeline_name)}
    if not node_of:
        return {}
    events = [ev for ev in store.get_events_by_execution_ids(list(node_of))
              if ev.type == metadata_store_pb2.Event.OUTPUT]
    artifacts = {a.id: a for a in store.get_artifacts_by_id({ev.artifact_id for ev in events})}
    outputs: Dict[str, Dict[str, metadata_store_pb2.Artifact]] = {}
    for ev in events:
        key = ev.path.steps[0].key if ev.path.steps else "output"
        outputs.setdefault(node_of[ev.execution_id], {})[key] = artifacts[ev.artifact_id]
    return outputs


def has_live_artifact(metadata_path: str, pipeline_name: str, type_name: str) -> bool:
    """Whether any run of ``pipeline_name`` produced a live artifact of ``type_name``:
    what a resolver over that type (no producer named) finds in this store."""
    if not os.path.isfile(metadata_path):
        return False
    store = _store(metadata_path)
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
        return False
    try:
        type_id = store.get_artifact_type(type_name).id
    except mlmd_errors.NotFoundError:
        return False
    return any(a.type_id == type_id and a.state == metadata_store_pb2.Artifact.LIVE
               for a in store.get_artifacts_by_context(pipeline_ctx.id))


def _int_prop(artifact: metadata_store_pb2.Artifact, name: str) -> Optional[int]:
    value = artifact.custom_properties.get(name)
    return None if value is None else value.int_value


def _str_prop(artifact: metadata_store_pb2.Artifact, name: str) -> str:
    value = artifact.custom_properties.get(name)
    return "" if value is None else value.string_value


def collect(metadata_path: str, pipeline_name: str) -> RunResult:
    """Reads metrics, baselines, blessings and the push of the newest run."""
    from components.evaluation import overall_metrics  # TFMA: loaded only to read a run

    outputs = latest_run_outputs(metadata_path, pipeline_name)
    result = RunResult(artifacts={node: {k: a.uri for k, a in outs.items()} for node, outs in outputs.items()})
    evaluator = outputs.get("Evaluator", {})
    if "evaluation" in evaluator:
        result.evaluation_uri = evaluator["evaluation"].uri
        result.metrics = overall_metrics(evaluator["evaluation"].uri)
        result.blessing_failures = validation_failures(evaluator["evaluation"].uri)
    if "blessing" in evaluator:
        result.model_blessed = _int_prop(evaluator["blessing"], "blessed") == 1
        result.baseline_gate = _str_prop(evaluator["blessing"], baseline_gate.REASON_PROPERTY)
        if _int_prop(evaluator["blessing"], baseline_gate.PASSED_PROPERTY) == 0 and result.baseline_gate:
            result.blessing_failures.append(result.baseline_gate)
    baselines = outputs.get("TrivialBaselines", {}).get("baselines")
    if baselines is not None and os.path.exists(os.path.join(baselines.uri, BASELINES_FILE)):
        with open(os.path.join(baselines.uri, BASELINES_FILE)) as f:
            result.baselines = json.load(f)
    result.text_baselines = _json_output(outputs, "TextBaselines", "baselines", TEXT_BASELINES_FILE)
    result.analysis = _json_output(outputs, "ErrorAnalysis", "analysis", ANALYSIS_FILE)
    infra_blessing = outputs.get("InfraValidator", {}).get("blessing")
    if infra_blessing is not None:
        result.infra_blessed = _int_prop(infra_blessing, "blessed") == 1
        result.infra_reason = _str_prop(infra_blessing, "reason")
    result.spans = _spans(outputs)
    accepted = outputs.get("AnomaliesGate", {}).get("accepted_statistics")
    if accepted is not None:
        result.drift_checked = _int_prop(accepted, DRIFT_CHECKED) == 1
        result.gate_notes = [line for line in _str_prop(accepted, GATE_NOTES).split("\n") if line]
    pushed_model = outputs.get("Pusher", {}).get("pushed_model")
    if pushed_model is not None:
        result.pushed = _int_prop(pushed_model, "pushed") == 1
        result.pushed_to = _str_prop(pushed_model, "pushed_destination")
    return result


def _spans(outputs) -> Dict[str, object]:
    """The time split's spans and versions (TimeSplit's record), and the span ExampleGen ingested."""
    split = outputs.get("TimeSplit", {}).get("examples")
    if split is None:
        return {}
    train = _str_prop(split, TRAIN_SPANS)
    result = {"train": [int(s) for s in train.split(",") if s], "eval": _int_prop(split, EVAL_SPAN),
              "versions": json.loads(_str_prop(split, SPAN_VERSIONS) or "{}")}
    ingested = outputs.get(EXAMPLE_GEN_ID, {}).get("examples")
    if ingested is not None:
        result["ingested"] = _int_prop(ingested, "span")
    return result


def _json_output(outputs, node: str, key: str, filename: str) -> dict:
    artifact = outputs.get(node, {}).get(key)
    path = os.path.join(artifact.uri, filename) if artifact is not None else ""
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def validation_failures(evaluation_uri: str) -> List[str]:
    """Why TFMA did not bless: each failed threshold with the metric's value."""
    import tensorflow_model_analysis as tfma

    try:
        validation = tfma.load_validation_result(evaluation_uri)
    except Exception:  # no validation file: no thresholds were evaluated
        return []
    failures = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures.append(describe_failure(failure))
    return failures


def describe_failure(failure) -> str:
    """'auc = 0.8834 is below the floor 0.9' / '... regressed by more than 0.01 vs the baseline'."""
    key = failure.metric_key
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    what = f"{key.name} {'change vs blessed baseline' if key.is_diff else ''}".strip()
    if threshold.HasField("value_threshold"):
        bound = threshold.value_threshold.lower_bound.value
        return f"{what} = {value:.4f}, below the floor {bound:g}"
    if threshold.HasField("change_threshold"):
        bound = threshold.change_threshold.absolute.value
        return f"{what} = {value:+.4f}, worse than the allowed {bound:+g}"
    return f"{what} = {value:.4f}: {failure.message}"
