"""``python -m monitoring decide``: the retraining rule applied to the recorded checks, filed.

Reads the checks ``python -m monitoring check`` recorded (``checks/span-<N>.json``),
the eval accuracy of the serving version from the pipeline's ML Metadata
(``monitoring.eval_accuracy``) and the span of the last decision that said
retrain (``decisions.jsonl``), applies ``monitoring.retraining.decide``, and files
the decision: ML Metadata (``RetrainingDecision``, ``monitoring.metadata``), one
line of ``<alerts_dir>/decisions.jsonl``, and, when the decided span is a data
incident, an alert (``data_incident``) in ``alerts.jsonl`` and ML Metadata.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from common.config import PipelineConfig
from monitoring import locations
from monitoring.alerts import Measurement, alert_record, append_alerts
from monitoring.canary import CANARY_FILE, PROMOTE
from monitoring.check import read_checks
from monitoring.eval_accuracy import EvalAccuracies
from monitoring.metadata import record_decision as record_in_metadata
from monitoring.retraining import Decision, decide

DECISIONS_FILE = "decisions.jsonl"


def read_decisions(cfg: PipelineConfig) -> List[Dict[str, Any]]:
    """Every decision line of ``<alerts_dir>/decisions.jsonl``, oldest first (none when absent)."""
    path = os.path.join(locations.alerts_dir(cfg), DECISIONS_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def last_retrain_span(decisions: List[Dict[str, Any]], before: int) -> Optional[int]:
    """The span of the newest decision before span ``before`` that said retrain, or None."""
    spans = [d["span"] for d in decisions if d["retrain"] and d["span"] < before]
    return max(spans) if spans else None


def read_promotions(cfg: PipelineConfig) -> List[Tuple[int, int]]:
    """(decided_ms, version) of every promotion the automatic canary filed (``canary.jsonl``),
    oldest first (none when absent)."""
    path = os.path.join(locations.alerts_dir(cfg), CANARY_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return sorted((int(r["decided_ms"]), int(r["candidate"]["version"])) for r in records
                  if r.get("action") == PROMOTE)


def decide_from_records(cfg: PipelineConfig, span: Optional[int] = None) -> Decision:
    """The decision for ``span`` (default: the newest checked) from what monitoring recorded."""
    checks = read_checks(cfg)
    accuracies = EvalAccuracies(cfg)
    newest = span if span is not None else max((c.span for c in checks), default=0)
    return decide(cfg, checks, span, eval_accuracy_of=accuracies, eval_accuracy_source=accuracies.source,
                  last_retrain_span=last_retrain_span(read_decisions(cfg), newest),
                  promotions=read_promotions(cfg))


def incident_alert(decision: Decision) -> Optional[Measurement]:
    """The alert a decided span that is a data incident raises (None when it is clean)."""
    reasons = decision.incidents.get(decision.span)
    if not reasons:
        return None
    return Measurement("data_incident", "span", "incident_alerts", float(len(reasons)), 0.0,
                       threshold_source="schema alerts and retraining.incident_measures",
                       model_version=decision.serving_version,
                       detail="excluded from any training window: " + "; ".join(reasons))


def record_decision(cfg: PipelineConfig, decision: Decision) -> Dict[str, str]:
    """Files ``decision`` (module doc); sets ``decision.metadata``; returns {what: path}."""
    directory = locations.alerts_dir(cfg)
    store = locations.metadata_path(cfg)
    alert = incident_alert(decision)
    alerts = [alert] if alert is not None else []
    checked = sorted(set(decision.window) | set(decision.incidents) | {decision.span})
    raw = decision.to_json()
    decision.metadata = record_in_metadata(
        store, model=decision.model, span=decision.span, spans=checked, alerts=alerts,
        properties={"retrain": int(decision.retrain), "reason": decision.reason,
                    "rules": json.dumps(raw["rules"]), "window": json.dumps(decision.window),
                    "incidents": json.dumps(raw["incidents"]),
                    "serving_version": decision.serving_version,
                    "eval_accuracy": decision.eval_accuracy})
    paths = {"metadata": store}
    decided_ms = int(time.time() * 1000)
    ids = {"mlmd_execution_id": decision.metadata["execution_id"]}
    if alert is not None:
        paths["alerts"] = append_alerts(directory, [alert_record(
            alert, decision.span, decision.model, decided_ms,
            {**ids, "mlmd_artifact_id": decision.metadata["alert_artifact_ids"][0]})])
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, DECISIONS_FILE)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({**decision.to_json(), "decided_ms": decided_ms, **ids}, sort_keys=True) + "\n")
    paths["decisions"] = path
    return paths


def summary(decision: Decision) -> str:
    """What the CLI prints: the verdict, every rule, the window and the excluded spans."""
    lines = [f"span {decision.span} of model {decision.model}: "
             f"{'RETRAIN' if decision.retrain else 'no retraining'} ({decision.reason})",
             f"serving version: {decision.serving_version}; eval accuracy: "
             f"{'unknown' if decision.eval_accuracy is None else f'{decision.eval_accuracy:.4f}'}"]
    lines += [f"  {rule.describe()}" for rule in decision.rules]
    lines.append(f"proposed training window (request-log spans): {decision.window}")
    for span, reasons in sorted(decision.incidents.items()):
        lines.append(f"  EXCLUDED span {span} (data incident): {'; '.join(reasons)}")
    if decision.span in decision.incidents:
        lines.append(f"  ALERT data_incident: span {decision.span} is a data incident; it will not be "
                     "trained on")
    if decision.metadata:
        lines.append(f"ML Metadata: execution {decision.metadata['execution_id']}, span artifacts "
                     f"{decision.metadata['span_artifact_ids']}, alert artifacts "
                     f"{decision.metadata['alert_artifact_ids']}")
    return "\n".join(lines)
