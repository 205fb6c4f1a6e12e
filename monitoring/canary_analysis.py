"""The canary analysis: is the candidate version as good as the stable one on live traffic?

Argo Rollouts' AnalysisRun is the model: a few metrics, each with a success
condition, judged once enough measurements exist. Argo looks at metrics only;
this also looks at what the model answers. Per version, the outcomes of the
requests it answered during the rollout (``VersionOutcomes``) give four figures,
each a ``monitoring.alerts.Measurement`` (comparator ``canary``) held to a
threshold of the ``rollout_analysis`` config section:

* ``error_rate_increase``: candidate 5xx share minus stable 5xx share;
* ``p99_latency_ratio``: candidate p99 over stable p99, each at least
  ``p99_latency_floor_ms`` (sub-millisecond figures are noise, not a regression);
* ``output_distance``: l-infinity distance of the two versions' predicted-class
  shares (as ``output_drift`` measures a span against the previous one);
* ``accuracy_drop``: stable minus candidate accuracy on feedback-labelled rows,
  judged once both versions have ``min_labelled_rows`` of them (else reported only).

Verdict: ``inconclusive`` until the candidate has answered ``min_requests``
requests (5xx included); then ``fail`` when any figure is past its threshold,
else ``pass``. Pure: no I/O, so the runner (``monitoring.canary``) and the tests
judge the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from common.config import RolloutAnalysisConfig
from monitoring.alerts import BELOW, Measurement, alerts_of
from monitoring.predictions import all_shares, l_infinity

COMPARATOR = "canary"
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
QUANTILE = 99


@dataclass(frozen=True)
class VersionOutcomes:
    """What one version did during the rollout.

    ``requests`` counts every request it answered or failed; ``latencies_ms`` one
    figure per answered request; ``outputs`` one output vector per answered row;
    ``labelled``/``correct`` its rows with a feedback label and how many it got right.
    """
    version: int
    requests: int
    server_errors: int = 0
    latencies_ms: Tuple[float, ...] = ()
    outputs: Tuple[Tuple[float, ...], ...] = ()
    labelled: int = 0
    correct: int = 0

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0

    @property
    def p99_latency_ms(self) -> Optional[float]:
        return float(np.percentile(self.latencies_ms, QUANTILE)) if self.latencies_ms else None

    @property
    def accuracy(self) -> Optional[float]:
        return self.correct / self.labelled if self.labelled else None

    def to_json(self) -> Dict[str, Any]:
        return {"version": self.version, "requests": self.requests, "server_errors": self.server_errors,
                "error_rate": self.error_rate, "p99_latency_ms": self.p99_latency_ms,
                "rows": len(self.outputs), "labelled": self.labelled, "accuracy": self.accuracy}


@dataclass
class Verdict:
    """The analysis of one moment of the rollout."""
    status: str
    stable: VersionOutcomes
    candidate: VersionOutcomes
    measurements: List[Measurement] = field(default_factory=list)
    reason: str = ""

    @property
    def failures(self) -> List[Measurement]:
        return alerts_of(self.measurements)

    def to_json(self) -> Dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "stable": self.stable.to_json(),
                "candidate": self.candidate.to_json(),
                "measurements": [m.to_json() for m in self.measurements]}


def _floored_p99(outcomes: VersionOutcomes, floor_ms: float) -> Optional[float]:
    p99 = outcomes.p99_latency_ms
    return None if p99 is None else max(p99, floor_ms)


def measurements(stable: VersionOutcomes, candidate: VersionOutcomes, limits: RolloutAnalysisConfig,
                 num_classes: int) -> List[Measurement]:
    """The four figures (module doc); a figure that cannot be computed yet is NaN (never alarms)."""
    nan = float("nan")
    out = [Measurement(COMPARATOR, "requests", "error_rate_increase",
                       candidate.error_rate - stable.error_rate, limits.max_error_rate_increase,
                       threshold_source="rollout_analysis.max_error_rate_increase",
                       model_version=candidate.version,
                       detail=f"5xx: stable {stable.server_errors}/{stable.requests}, "
                              f"candidate {candidate.server_errors}/{candidate.requests}")]
    stable_p99 = _floored_p99(stable, limits.p99_latency_floor_ms)
    candidate_p99 = _floored_p99(candidate, limits.p99_latency_floor_ms)
    ratio = nan if stable_p99 is None or candidate_p99 is None else candidate_p99 / stable_p99
    out.append(Measurement(COMPARATOR, "requests", "p99_latency_ratio", ratio, limits.max_p99_latency_ratio,
                           threshold_source="rollout_analysis.max_p99_latency_ratio",
                           model_version=candidate.version,
                           detail=f"p99 ms: stable {stable.p99_latency_ms}, candidate "
                                  f"{candidate.p99_latency_ms} (floor {limits.p99_latency_floor_ms:g})"))
    distance = nan
    if stable.outputs and candidate.outputs:
        distance = l_infinity(all_shares(stable.outputs, num_classes), all_shares(candidate.outputs, num_classes))
    out.append(Measurement(COMPARATOR, "predicted_class", "output_distance", distance,
                           limits.max_output_distance, threshold_source="rollout_analysis.max_output_distance",
                           model_version=candidate.version,
                           detail=f"rows: stable {len(stable.outputs)}, candidate {len(candidate.outputs)}"))
    enough = min(stable.labelled, candidate.labelled) >= limits.min_labelled_rows
    drop = nan if stable.accuracy is None or candidate.accuracy is None else stable.accuracy - candidate.accuracy
    out.append(Measurement(
        COMPARATOR, "label", "accuracy_drop", drop, limits.max_accuracy_drop if enough else None,
        threshold_source="rollout_analysis.max_accuracy_drop" if enough else "",
        model_version=candidate.version,
        detail=f"labelled rows: stable {stable.labelled}, candidate {candidate.labelled}"
               + ("" if enough else f"; fewer than rollout_analysis.min_labelled_rows "
                                    f"{limits.min_labelled_rows}: not judged")))
    return out


def analyse(stable: VersionOutcomes, candidate: VersionOutcomes, limits: RolloutAnalysisConfig,
            num_classes: int) -> Verdict:
    """Pass, fail or inconclusive, with every figure and, on failure, which ones failed."""
    verdict = Verdict(INCONCLUSIVE, stable, candidate, measurements(stable, candidate, limits, num_classes))
    if candidate.requests < limits.min_requests:
        verdict.reason = (f"candidate {candidate.version} answered {candidate.requests} requests; "
                          f"rollout_analysis.min_requests is {limits.min_requests}")
        return verdict
    failed = verdict.failures
    verdict.status = FAIL if failed else PASS
    verdict.reason = "; ".join(describe(m) for m in failed) if failed else (
        f"candidate {candidate.version} held every threshold over {candidate.requests} requests")
    return verdict


def describe(m: Measurement) -> str:
    """``p99_latency_ratio 3.2 > 1.5 (rollout_analysis.max_p99_latency_ratio)`` (failed) or
    ``... 1.1 <= 1.5 (...)`` (held)."""
    signs = ("<", ">=") if m.direction == BELOW else (">", "<=")
    sign = signs[0] if m.alarmed else signs[1]
    limit = "" if m.threshold is None else f" {sign} {m.threshold:g} ({m.threshold_source})"
    return f"{m.measure} {m.value:.4g}{limit}"
