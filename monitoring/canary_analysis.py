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
requests (5xx included); then ``fail`` when any figure is past its threshold and,
for the three figures that are shares (error rate, accuracy, the most different
predicted-class share), the gap behind it is significant at ``confidence``
(one-sided two-proportion z-test; ``significance``), else ``pass``. A figure
past its threshold on too few rows to tell is reported as noise, not a failure:
Kayenta judges canaries the same way, and a canary that fails good candidates
on sampling noise costs a retraining each time. Early stop: from ``early_stop_requests`` requests on, a candidate
that is already clearly failing fails before ``min_requests`` -- its error-rate
increase or output distance is past the threshold even at the favourable end of
one-sided Wilson intervals at ``early_stop_confidence`` (``clear_failures``), so a
broken candidate answers fewer users while a merely noisy one waits for
``min_requests``. Latency and accuracy are not judged early (tails and labels
need the full sample). Pure: no I/O, so the runner (``monitoring.canary``) and
the tests judge the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
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
    early_stop: bool = False  # failed before min_requests (clear_failures)
    # measure -> one-sided p-value of the gap behind a figure past its threshold that is not
    # significant at rollout_analysis.confidence: reported, not a failure
    noise: Dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> List[Measurement]:
        return [m for m in alerts_of(self.measurements) if m.measure not in self.noise]

    def to_json(self) -> Dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "early_stop": self.early_stop,
                "noise": dict(self.noise),
                "stable": self.stable.to_json(),
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


def wilson_interval(successes: float, trials: int, z: float) -> Tuple[float, float]:
    """The Wilson score interval of a share (sound at 0 and 1 and for few trials, unlike p +- z se)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def clear_failures(stable: VersionOutcomes, candidate: VersionOutcomes, limits: RolloutAnalysisConfig,
                   num_classes: int) -> List[str]:
    """The figures past their threshold even at their most favourable plausible value (module doc).

    Error rate: the candidate's lower bound minus the stable version's upper bound. Output
    distance: per class, the gap between the two share intervals; the largest gap is a lower
    bound of the l-infinity distance. Empty when early stop is off or too few requests came."""
    if not limits.early_stop_requests or candidate.requests < limits.early_stop_requests:
        return []
    z = NormalDist().inv_cdf(limits.early_stop_confidence)
    confidence = f"{limits.early_stop_confidence:.0%} confidence"
    failed = []
    errors_low = wilson_interval(candidate.server_errors, candidate.requests, z)[0]
    stable_high = wilson_interval(stable.server_errors, stable.requests, z)[1] if stable.requests else 0.0
    if errors_low - stable_high > limits.max_error_rate_increase:
        failed.append(f"error_rate_increase at least {errors_low - stable_high:.4g} > "
                      f"{limits.max_error_rate_increase:g} (rollout_analysis.max_error_rate_increase, {confidence})")
    if stable.outputs and len(candidate.outputs) >= limits.early_stop_requests:
        stable_shares, candidate_shares = (all_shares(v.outputs, num_classes) for v in (stable, candidate))
        gaps = []
        for cls in range(len(stable_shares)):
            low_s, high_s = wilson_interval(stable_shares[cls] * len(stable.outputs), len(stable.outputs), z)
            low_c, high_c = wilson_interval(candidate_shares[cls] * len(candidate.outputs),
                                            len(candidate.outputs), z)
            gaps.append(max(low_c - high_s, low_s - high_c, 0.0))
        if max(gaps) > limits.max_output_distance:
            failed.append(f"output_distance at least {max(gaps):.4g} > {limits.max_output_distance:g} "
                          f"(rollout_analysis.max_output_distance, {confidence})")
    return failed


def worse_p_value(hits: float, trials: int, other_hits: float, other_trials: int) -> float:
    """One-sided p-value that the first share (``hits/trials``) exceeds the second, by the pooled
    two-proportion z-test. 1.0 when either side has no trials or the pooled share is 0 or 1 (no
    gap to test)."""
    if trials <= 0 or other_trials <= 0:
        return 1.0
    pooled = (hits + other_hits) / (trials + other_trials)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / trials + 1 / other_trials))
    if spread == 0:
        return 1.0
    return 1.0 - NormalDist().cdf((hits / trials - other_hits / other_trials) / spread)


def significance(stable: VersionOutcomes, candidate: VersionOutcomes, num_classes: int) -> Dict[str, float]:
    """The one-sided p-value of the gap behind each share figure (module doc): the candidate's
    error rate above the stable one's, its accuracy below, and its share of the predicted class
    whose shares differ most away from the stable one's (in the direction it moved)."""
    out = {"error_rate_increase": worse_p_value(candidate.server_errors, candidate.requests,
                                                stable.server_errors, stable.requests)}
    if stable.labelled and candidate.labelled:
        out["accuracy_drop"] = worse_p_value(stable.correct, stable.labelled, candidate.correct, candidate.labelled)
    if stable.outputs and candidate.outputs:
        stable_shares, candidate_shares = (all_shares(v.outputs, num_classes) for v in (stable, candidate))
        gaps = [c - s for s, c in zip(stable_shares, candidate_shares)]
        cls = int(np.argmax(np.abs(gaps)))
        rows_s, rows_c = len(stable.outputs), len(candidate.outputs)
        hits_s, hits_c = stable_shares[cls] * rows_s, candidate_shares[cls] * rows_c
        out["output_distance"] = (worse_p_value(hits_c, rows_c, hits_s, rows_s) if gaps[cls] >= 0
                                  else worse_p_value(hits_s, rows_s, hits_c, rows_c))
    return out


def analyse(stable: VersionOutcomes, candidate: VersionOutcomes, limits: RolloutAnalysisConfig,
            num_classes: int) -> Verdict:
    """Pass, fail or inconclusive, with every figure and, on failure, which ones failed."""
    verdict = Verdict(INCONCLUSIVE, stable, candidate, measurements(stable, candidate, limits, num_classes))
    if candidate.requests < limits.min_requests:
        early = clear_failures(stable, candidate, limits, num_classes)
        if early:
            verdict.status, verdict.early_stop = FAIL, True
            verdict.reason = (f"early stop after {candidate.requests} of rollout_analysis.min_requests "
                              f"{limits.min_requests} requests: " + "; ".join(early))
            return verdict
        verdict.reason = (f"candidate {candidate.version} answered {candidate.requests} requests; "
                          f"rollout_analysis.min_requests is {limits.min_requests}")
        return verdict
    p_values = significance(stable, candidate, num_classes)
    verdict.noise = {m.measure: p_values[m.measure] for m in alerts_of(verdict.measurements)
                     if m.measure in p_values and p_values[m.measure] > 1 - limits.confidence}
    failed = verdict.failures
    verdict.status = FAIL if failed else PASS
    verdict.reason = "; ".join(describe(m) for m in failed) if failed else (
        f"candidate {candidate.version} held every threshold over {candidate.requests} requests")
    if verdict.noise:
        verdict.reason += "; " + "; ".join(
            f"{measure} past its threshold but not significant (p = {p:.3g} > {1 - limits.confidence:.3g}, "
            "rollout_analysis.confidence): noise" for measure, p in sorted(verdict.noise.items()))
    return verdict


def describe(m: Measurement) -> str:
    """``p99_latency_ratio 3.2 > 1.5 (rollout_analysis.max_p99_latency_ratio)`` (failed) or
    ``... 1.1 <= 1.5 (...)`` (held)."""
    signs = ("<", ">=") if m.direction == BELOW else (">", "<=")
    sign = signs[0] if m.alarmed else signs[1]
    limit = "" if m.threshold is None else f" {sign} {m.threshold:g} ({m.threshold_source})"
    return f"{m.measure} {m.value:.4g}{limit}"
