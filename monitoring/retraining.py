"""The retraining rule: from the checks monitoring recorded, retrain or not, and why.

Why a rule over recorded checks (``checks/span-<N>.json``, ``monitoring.check``)
rather than fresh measurements: the check already compared each span with the
training history and its predecessor, scored its labelled rows and filed its
alerts; deciding from the same records keeps the decision consistent with what
was alerted, and costs no TFDV pass.

Spans are sorted in two kinds:

* **incident**: its check raised a schema alert (an anomaly in the SERVING
  environment) or an alert of a measure in ``retraining.incident_measures``
  (default: missing-value shifts): a broken upstream, not a changed world.
  Its rows never enter a proposed training window, and its figures never
  trigger anything;
* **clean**: every other checked span.

Rules (``retraining`` config section), each reported with its measured value,
threshold and whether it fired:

* ``accuracy_drop`` (trigger): labelled accuracy of the serving version on the
  newest clean span below that version's eval accuracy by more than
  ``max_accuracy_drop`` (judged from ``monitoring.min_version_rows`` labelled rows);
* ``sustained_drift`` (trigger): one feature with a skew or drift alert in each
  of the last ``drift_spans`` clean spans after the last retrain decision;
* ``max_age`` (trigger): the serving version answered rows in ``max_age_spans``
  checked clean spans;
* ``new_labels`` (gate): at least ``min_new_labelled_rows`` labelled rows in the
  clean spans after the last retrain decision.

Retrain when a trigger fires, the gate passes and the window is not empty. The
proposed window is the newest ``data.spans.train_spans`` clean spans up to the
decided span (the rolling window of the pipeline's time split).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from common.config import PipelineConfig
from monitoring.check import CheckResult, incident_alerts

TRIGGER, GATE = "trigger", "gate"
DRIFT_COMPARATORS = ("skew", "drift")


@dataclass(frozen=True)
class RuleResult:
    """One rule of a decision: what it measured, what it is held to, and whether it fired."""
    rule: str
    kind: str                      # TRIGGER or GATE
    value: Optional[float]         # None: not measurable (the detail says why)
    threshold: Optional[float]     # None: rule off
    fired: bool                    # a trigger fired, or a gate passed
    detail: str = ""

    def describe(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.4g}"
        threshold = "off" if self.threshold is None else f"{self.threshold:.4g}"
        verdict = ("FIRED" if self.fired else "not fired") if self.kind == TRIGGER else (
            "passed" if self.fired else "NOT passed")
        return f"{self.kind} {self.rule}: {value} (threshold {threshold}) {verdict}; {self.detail}"


@dataclass
class Decision:
    """What ``python -m monitoring decide`` prints and records."""
    model: str
    span: int                       # the decided span (the newest checked one by default)
    retrain: bool
    rules: List[RuleResult]
    window: List[int]               # the spans proposed for training
    incidents: Dict[int, List[str]]  # incident span -> the alerts that made it one
    serving_version: Optional[int]
    eval_accuracy: Optional[float]
    eval_accuracy_source: str
    metadata: Dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        fired = [r.rule for r in self.rules if r.kind == TRIGGER and r.fired]
        blocked = [r.rule for r in self.rules if r.kind == GATE and not r.fired]
        if self.retrain:
            return f"retrain: {', '.join(fired)} fired"
        if not fired:
            return "no retraining: no trigger fired"
        if blocked:
            return f"no retraining: {', '.join(fired)} fired but gate {', '.join(blocked)} not passed"
        return f"no retraining: {', '.join(fired)} fired but no clean span to train on"

    def to_json(self) -> Dict[str, Any]:
        raw = asdict(self)
        raw["incidents"] = {str(k): v for k, v in self.incidents.items()}
        raw["reason"] = self.reason
        return raw


def _accuracy_rule(cfg: PipelineConfig, newest: Optional[CheckResult], version: Optional[int],
                   eval_accuracy: Optional[float], source: str) -> RuleResult:
    drop = cfg.retraining.max_accuracy_drop
    name = "accuracy_drop"
    if drop is None:
        return RuleResult(name, TRIGGER, None, None, False, "retraining.max_accuracy_drop is null")
    if newest is None or version is None:
        return RuleResult(name, TRIGGER, None, drop, False, "no clean span checked")
    if eval_accuracy is None:
        return RuleResult(name, TRIGGER, None, drop, False,
                          f"no eval accuracy of version {version} ({source})")
    score = next((s for s in newest.labelled if s["version"] == version), None)
    least = cfg.monitoring.min_version_rows
    if score is None or score["rows"] < least:
        rows = 0 if score is None else score["rows"]
        return RuleResult(name, TRIGGER, None, drop, False,
                          f"span {newest.span}: {rows} labelled rows of version {version} "
                          f"< monitoring.min_version_rows {least}")
    fall = eval_accuracy - score["accuracy"]
    return RuleResult(name, TRIGGER, fall, drop, fall > drop,
                      f"span {newest.span}: labelled accuracy {score['accuracy']:.4f} of version "
                      f"{version} ({score['correct']}/{score['rows']}) vs eval accuracy "
                      f"{eval_accuracy:.4f} ({source})")


def _drifting(check: CheckResult, incident_measures: Sequence[str]) -> Set[str]:
    """Features with a skew or drift alert in ``check`` (incident measures aside)."""
    return {a.feature for a in check.alerts
            if a.comparator in DRIFT_COMPARATORS and a.measure not in incident_measures}


def _since_retrain(clean: Sequence[CheckResult], since: Optional[int]) -> Tuple[List[CheckResult], str]:
    """The clean checks after the last retrain decision (span ``since``; None: all of them),
    and the words naming that bound for a rule's detail ("" without one)."""
    new = [c for c in clean if since is None or c.span > since]
    return new, "" if since is None else f"after the last retrain decision (span {since})"


def _drift_rule(cfg: PipelineConfig, recent: Sequence[CheckResult], after: str) -> RuleResult:
    """Counts only the ``recent`` spans, those after the last retrain decision (``after`` names
    it, ``_since_retrain``): that retraining answered the drift seen until then, and a feature
    still skewed from the original training history would otherwise call for a retraining on
    every span after it."""
    spans = cfg.retraining.drift_spans
    name = "sustained_drift"
    if spans == 0:
        return RuleResult(name, TRIGGER, None, None, False, "retraining.drift_spans is 0")
    bound = f" {after}" if after else ""
    drifting = [_drifting(c, cfg.retraining.incident_measures) for c in recent]
    longest: Dict[str, int] = {}
    for feature in sorted(drifting[-1] if drifting else ()):
        count = 0
        for features in reversed(drifting):  # newest first, until the run breaks
            if feature not in features:
                break
            count += 1
        longest[feature] = count
    if not longest:
        return RuleResult(name, TRIGGER, 0.0, float(spans), False,
                          f"no feature drifting in the newest clean span{bound}")
    feature = max(sorted(longest), key=lambda f: longest[f])
    count = longest[feature]
    return RuleResult(name, TRIGGER, float(count), float(spans), count >= spans,
                      f"feature {feature!r} alerted (skew/drift) in the last {count} clean spans{bound}")


def _age_rule(cfg: PipelineConfig, clean: Sequence[CheckResult], version: Optional[int]) -> RuleResult:
    limit = cfg.retraining.max_age_spans
    name = "max_age"
    if limit == 0:
        return RuleResult(name, TRIGGER, None, None, False, "retraining.max_age_spans is 0")
    if version is None:
        return RuleResult(name, TRIGGER, None, float(limit), False, "no clean span checked")
    age = sum(1 for c in clean if version in c.versions)
    return RuleResult(name, TRIGGER, float(age), float(limit), age >= limit,
                      f"version {version} served rows in {age} checked clean spans")


def _labels_rule(cfg: PipelineConfig, recent: Sequence[CheckResult], after: str) -> RuleResult:
    least = cfg.retraining.min_new_labelled_rows
    rows = sum(s["rows"] for c in recent for s in c.labelled)
    return RuleResult("new_labels", GATE, float(rows), float(least), rows >= least,
                      f"labelled rows in {len(recent)} clean spans {after or 'since the first check'}")


def serving_version(cfg: PipelineConfig, newest: Optional[CheckResult],
                    promotions: Sequence[Tuple[int, int]]) -> Optional[int]:
    """The version the rules judge: the last one the automatic canary promoted between the
    start of the newest clean span and that span's check (``promotions``: (decided_ms,
    version), oldest first), else the one that answered most of that span.

    Why: a canary promoted during the span serves everything from then on; judging the
    version it replaced (most of the span's rows) would count that version's age and
    accuracy against the new one, and retrain right after every promotion."""
    if newest is None:
        return None
    start_ms = newest.span * cfg.serving.request_log_window_seconds * 1000
    promoted = [version for decided_ms, version in promotions if start_ms <= decided_ms <= newest.checked_ms]
    return promoted[-1] if promoted else newest.main_version


def decide(cfg: PipelineConfig, checks: Sequence[CheckResult], span: Optional[int] = None,
           eval_accuracy_of: Callable[[int], Optional[float]] = lambda version: None,
           eval_accuracy_source: str = "", last_retrain_span: Optional[int] = None,
           promotions: Sequence[Tuple[int, int]] = ()) -> Decision:
    """The decision for ``span`` (default: the newest checked) from the recorded ``checks``.

    ``eval_accuracy_of(version)``: the blessed eval accuracy of a model version (None:
    unknown). ``last_retrain_span``: the span of the last decision that said retrain.
    ``promotions``: the automatic canary's promotions, (decided_ms, version), oldest first
    (``serving_version``).
    """
    if not checks:
        raise ValueError(f"model {cfg.serving.model_name}: no recorded check to decide from "
                         "(run `python -m monitoring check` first)")
    known = sorted(c.span for c in checks)
    span = known[-1] if span is None else span
    if span not in known:
        raise ValueError(f"span {span}: no recorded check (checked spans: {known})")
    upto = [c for c in sorted(checks, key=lambda c: c.span) if c.span <= span]
    measures = cfg.retraining.incident_measures
    incidents = {c.span: incident_alerts(c, measures) for c in upto}
    incidents = {s: a for s, a in incidents.items() if a}
    clean = [c for c in upto if c.span not in incidents]
    newest = clean[-1] if clean else None
    version = serving_version(cfg, newest, promotions)
    accuracy = eval_accuracy_of(version) if version is not None else None
    if accuracy is not None and math.isnan(accuracy):
        accuracy = None
    recent, after = _since_retrain(clean, last_retrain_span)
    rules = [_accuracy_rule(cfg, newest, version, accuracy, eval_accuracy_source),
             _drift_rule(cfg, recent, after), _age_rule(cfg, clean, version), _labels_rule(cfg, recent, after)]
    window = [c.span for c in clean][-cfg.data.spans.train_spans:]
    triggered = any(r.fired for r in rules if r.kind == TRIGGER)
    gates = all(r.fired for r in rules if r.kind == GATE)
    return Decision(model=cfg.serving.model_name, span=span, retrain=triggered and gates and bool(window),
                    rules=rules, window=window, incidents=incidents, serving_version=version,
                    eval_accuracy=accuracy, eval_accuracy_source=eval_accuracy_source)
