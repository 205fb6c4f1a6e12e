"""Checks and alerts in ML Metadata: who checked which span of which model version, and what fired.

One sqlite store (``monitoring.metadata``, default ``<run_dir>/<name>/monitoring.db``;
the pipeline's own ``metadata.db`` works too, as the types below do not
collide with TFX's). Its own file by default so a check never contends for
the lock of a running pipeline.

Types (created on first use, each property typed):

* Execution ``MonitoringCheck``: span, previous_span, model, model_version
  (the version that answered most rows), rows, alerts (count), thresholds
  (where they came from), check_file (the check's JSON).
* Artifact ``ServingSpan``: one per (model, span), named ``<model>/span-<N>``,
  uri = the span's directory in the request log; input of every check of it.
* Artifact ``Alert``: one per alert, every field of the alert record as a
  property; output of the check that raised it.
* Context ``ModelVersion``, named ``<model>/version-<V>``: associated with the
  checks of spans the version served (or that alerted on it), attributed those
  spans and the alerts filed under the version (an alert of no version, e.g.
  the health of requests the gateway could not attribute, is in no context).

* Execution ``RetrainingDecision`` (``python -m monitoring decide``): span, model,
  retrain (0/1), reason, rules (JSON: each rule's value, threshold, fired),
  window and incidents (JSON), serving_version, eval_accuracy; inputs: the
  ``ServingSpan`` of every checked span it read up to the decided one; outputs:
  an ``Alert`` (comparator ``data_incident``) when the decided span is an incident.

* Execution ``DifferentialTest`` (``python -m monitoring diff``): span, model, stable,
  candidate, rows, flipped, flip_rate, mean_difference, max_difference, failed (0/1),
  failures (JSON: the failed figures), report_file; input: the replayed span's
  ``ServingSpan``; associated with both versions' ``ModelVersion`` contexts.

Queries this makes one call: ``get_executions_by_context`` (a version's checks),
``get_artifacts_by_context`` (its alerts and spans), ``get_events_by_execution_ids``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from monitoring.alerts import Measurement

CHECK_TYPE = "MonitoringCheck"
SPAN_TYPE = "ServingSpan"
ALERT_TYPE = "Alert"
VERSION_TYPE = "ModelVersion"
DECISION_TYPE = "RetrainingDecision"
DIFFERENTIAL_TYPE = "DifferentialTest"

_INT, _DOUBLE, _STRING = mlmd.INT, mlmd.DOUBLE, mlmd.STRING
_CHECK_PROPERTIES = {"span": _INT, "previous_span": _INT, "model": _STRING, "model_version": _INT,
                     "rows": _INT, "alerts": _INT, "thresholds": _STRING, "check_file": _STRING}
_SPAN_PROPERTIES = {"span": _INT, "model": _STRING, "rows": _INT}
_ALERT_PROPERTIES = {"comparator": _STRING, "feature": _STRING, "measure": _STRING, "value": _DOUBLE,
                     "threshold": _DOUBLE, "direction": _STRING, "threshold_source": _STRING,
                     "detail": _STRING, "span": _INT, "model": _STRING, "model_version": _INT}
_VERSION_PROPERTIES = {"model": _STRING, "version": _INT}
_DIFFERENTIAL_PROPERTIES = {"span": _INT, "model": _STRING, "stable": _INT, "candidate": _INT,
                            "rows": _INT, "flipped": _INT, "flip_rate": _DOUBLE,
                            "mean_difference": _DOUBLE, "max_difference": _DOUBLE, "failed": _INT,
                            "failures": _STRING, "report_file": _STRING}
_DECISION_PROPERTIES = {"span": _INT, "model": _STRING, "retrain": _INT, "reason": _STRING,
                        "rules": _STRING, "window": _STRING, "incidents": _STRING,
                        "serving_version": _INT, "eval_accuracy": _DOUBLE}


def open_store(path: str) -> metadata_store.MetadataStore:
    """The sqlite store at ``path`` (created with its directory if absent)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def _set(properties: Any, values: Mapping[str, Any], types: Mapping[str, int]) -> None:
    for name, value in values.items():
        if value is None:
            continue
        kind = types[name]
        if kind == _INT:
            properties[name].int_value = int(value)
        elif kind == _DOUBLE:
            properties[name].double_value = float(value)
        else:
            properties[name].string_value = str(value)


def _type_ids(store: metadata_store.MetadataStore) -> Dict[str, int]:
    return {
        CHECK_TYPE: store.put_execution_type(
            mlmd.ExecutionType(name=CHECK_TYPE, properties=_CHECK_PROPERTIES), can_add_fields=True),
        SPAN_TYPE: store.put_artifact_type(
            mlmd.ArtifactType(name=SPAN_TYPE, properties=_SPAN_PROPERTIES), can_add_fields=True),
        ALERT_TYPE: store.put_artifact_type(
            mlmd.ArtifactType(name=ALERT_TYPE, properties=_ALERT_PROPERTIES), can_add_fields=True),
        DECISION_TYPE: store.put_execution_type(
            mlmd.ExecutionType(name=DECISION_TYPE, properties=_DECISION_PROPERTIES), can_add_fields=True),
        DIFFERENTIAL_TYPE: store.put_execution_type(
            mlmd.ExecutionType(name=DIFFERENTIAL_TYPE, properties=_DIFFERENTIAL_PROPERTIES),
            can_add_fields=True),
        VERSION_TYPE: store.put_context_type(
            mlmd.ContextType(name=VERSION_TYPE, properties=_VERSION_PROPERTIES), can_add_fields=True),
    }


def version_context_name(model: str, version: int) -> str:
    return f"{model}/version-{version}"


def span_artifact_name(model: str, span: int) -> str:
    return f"{model}/span-{span}"


def _version_context(store: metadata_store.MetadataStore, type_id: int, model: str, version: int) -> int:
    name = version_context_name(model, version)
    known = store.get_context_by_type_and_name(VERSION_TYPE, name)
    if known is not None:
        return known.id
    context = mlmd.Context(type_id=type_id, name=name)
    _set(context.properties, {"model": model, "version": version}, _VERSION_PROPERTIES)
    return store.put_contexts([context])[0]


def _alert_artifacts(type_id: int, alerts: Sequence[Measurement], span: int,
                     model: str) -> List[mlmd.Artifact]:
    """One ``Alert`` artifact per alert, every field of its record a property."""
    out = []
    for alert in alerts:
        artifact = mlmd.Artifact(type_id=type_id, state=mlmd.Artifact.LIVE)
        _set(artifact.properties, {**alert.to_json(), "span": span, "model": model}, _ALERT_PROPERTIES)
        out.append(artifact)
    return out


def _span_artifact(store: metadata_store.MetadataStore, type_id: int, model: str, span: int,
                   uri: str, rows: int) -> mlmd.Artifact:
    """The ``ServingSpan`` artifact of (model, span), the known one updated or a new one."""
    artifact = store.get_artifact_by_type_and_name(SPAN_TYPE, span_artifact_name(model, span))
    if artifact is None:
        artifact = mlmd.Artifact(type_id=type_id, name=span_artifact_name(model, span), uri=uri,
                                 state=mlmd.Artifact.LIVE)
    _set(artifact.properties, {"span": span, "model": model, "rows": rows}, _SPAN_PROPERTIES)
    return artifact


def record_check(store_path: str, *, model: str, span: int, span_uri: str, rows: int,
                 previous_span: Optional[int], versions: Sequence[int], main_version: Optional[int],
                 alerts: Sequence[Measurement], thresholds: str, check_file: str) -> Dict[str, Any]:
    """Records one check, its span and its alerts; returns their ids.

    ``{"execution_id", "span_artifact_id", "alert_artifact_ids": [...],
    "version_context_ids": {version: id}}``, in the order of ``alerts``.
    """
    store = open_store(store_path)
    types = _type_ids(store)
    span_artifact = _span_artifact(store, types[SPAN_TYPE], model, span, span_uri, rows)
    alert_artifacts = _alert_artifacts(types[ALERT_TYPE], alerts, span, model)
    execution = mlmd.Execution(type_id=types[CHECK_TYPE], last_known_state=mlmd.Execution.COMPLETE)
    _set(execution.properties, {"span": span, "previous_span": previous_span, "model": model,
                                "model_version": main_version, "rows": rows, "alerts": len(alerts),
                                "thresholds": thresholds, "check_file": check_file}, _CHECK_PROPERTIES)
    events = [(span_artifact, mlmd.Event(type=mlmd.Event.INPUT))]
    events += [(a, mlmd.Event(type=mlmd.Event.OUTPUT)) for a in alert_artifacts]
    execution_id, artifact_ids, _ = store.put_execution(execution, events, contexts=[])
    span_id, alert_ids = artifact_ids[0], artifact_ids[1:]
    # A version's context holds the checks of spans it served, those spans, and its alerts
    # (a health alert may name a version that served no row of the span).
    alert_versions = {a.model_version for a in alerts if a.model_version is not None}
    contexts = {v: _version_context(store, types[VERSION_TYPE], model, v)
                for v in sorted(set(versions) | alert_versions)}
    attributions: List[mlmd.Attribution] = [mlmd.Attribution(artifact_id=span_id, context_id=contexts[v])
                                            for v in sorted(set(versions))]
    attributions += [mlmd.Attribution(artifact_id=alert_id, context_id=contexts[alert.model_version])
                     for alert, alert_id in zip(alerts, alert_ids) if alert.model_version is not None]
    associations = [mlmd.Association(execution_id=execution_id, context_id=c) for c in contexts.values()]
    store.put_attributions_and_associations(attributions, associations)
    return {"execution_id": execution_id, "span_artifact_id": span_id,
            "alert_artifact_ids": list(alert_ids), "version_context_ids": contexts}


def record_decision(store_path: str, *, model: str, span: int, spans: Sequence[int],
                    properties: Mapping[str, Any], alerts: Sequence[Measurement]) -> Dict[str, Any]:
    """Records one retraining decision, linked to the ``ServingSpan`` artifacts of ``spans``
    (those a check recorded) and to the version context of the serving version.

    ``properties``: the ``RetrainingDecision`` properties (module doc). Returns
    ``{"execution_id", "alert_artifact_ids": [...], "span_artifact_ids": [...]}``.
    """
    store = open_store(store_path)
    types = _type_ids(store)
    known = [store.get_artifact_by_type_and_name(SPAN_TYPE, span_artifact_name(model, s)) for s in spans]
    span_artifacts = [a for a in known if a is not None]
    alert_artifacts = _alert_artifacts(types[ALERT_TYPE], alerts, span, model)
    execution = mlmd.Execution(type_id=types[DECISION_TYPE], last_known_state=mlmd.Execution.COMPLETE)
    _set(execution.properties, {**properties, "span": span, "model": model}, _DECISION_PROPERTIES)
    events = [(a, mlmd.Event(type=mlmd.Event.INPUT)) for a in span_artifacts]
    events += [(a, mlmd.Event(type=mlmd.Event.OUTPUT)) for a in alert_artifacts]
    version = properties.get("serving_version")
    contexts = [] if version is None else [
        store.get_contexts_by_id([_version_context(store, types[VERSION_TYPE], model, version)])[0]]
    execution_id, artifact_ids, _ = store.put_execution(execution, events, contexts=contexts)
    return {"execution_id": execution_id, "span_artifact_ids": artifact_ids[:len(span_artifacts)],
            "alert_artifact_ids": artifact_ids[len(span_artifacts):]}


def record_differential(store_path: str, *, model: str, span: int, span_uri: str, rows: int,
                        stable: int, candidate: int, properties: Mapping[str, Any]) -> int:
    """Records one differential test (module doc) and returns its execution id."""
    store = open_store(store_path)
    types = _type_ids(store)
    span_artifact = _span_artifact(store, types[SPAN_TYPE], model, span, span_uri, rows)
    execution = mlmd.Execution(type_id=types[DIFFERENTIAL_TYPE], last_known_state=mlmd.Execution.COMPLETE)
    _set(execution.properties, {**properties, "span": span, "model": model, "stable": stable,
                                "candidate": candidate, "rows": rows}, _DIFFERENTIAL_PROPERTIES)
    contexts = store.get_contexts_by_id([_version_context(store, types[VERSION_TYPE], model, v)
                                         for v in (stable, candidate)])
    execution_id, _, _ = store.put_execution(execution, [(span_artifact, mlmd.Event(type=mlmd.Event.INPUT))],
                                             contexts=contexts)
    return execution_id


CANARY_TYPE = "CanaryAnalysis"
_CANARY_PROPERTIES = {"model": _STRING, "stable": _INT, "candidate": _INT, "mode": _STRING,
                      "percent": _DOUBLE, "status": _STRING, "action": _STRING, "reason": _STRING,
                      "stable_requests": _INT, "candidate_requests": _INT, "measurements": _STRING}


def record_canary(store_path: str, *, model: str, stable: int, candidate: int,
                  properties: Mapping[str, Any]) -> int:
    """Records one automatic rollout's verdict (Execution ``CanaryAnalysis``: mode, status,
    the action taken -- promote or withdraw -- its reason and every figure as JSON),
    associated with both versions' ``ModelVersion`` contexts; returns its execution id."""
    store = open_store(store_path)
    types = _type_ids(store)
    type_id = store.put_execution_type(mlmd.ExecutionType(name=CANARY_TYPE, properties=_CANARY_PROPERTIES),
                                       can_add_fields=True)
    execution = mlmd.Execution(type_id=type_id, last_known_state=mlmd.Execution.COMPLETE)
    _set(execution.properties, {**properties, "model": model, "stable": stable, "candidate": candidate},
         _CANARY_PROPERTIES)
    contexts = store.get_contexts_by_id([_version_context(store, types[VERSION_TYPE], model, v)
                                         for v in (stable, candidate)])
    execution_id, _, _ = store.put_execution(execution, [], contexts=contexts)
    return execution_id
