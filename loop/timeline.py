"""The loop's timeline: one record per replayed quarter, printed as it happens and as a table.

A record holds what users got (accuracy of the answers they received, versions that
answered), what monitoring said (alerts, data incident), the
decision and what the loop did about it (data spans written, version pushed, differential
test, canary verdict and action), and the stable version before and after.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from loop.traffic import SpanTraffic


@dataclass
class SpanRecord:
    quarter: int
    log_span: int
    traffic: SpanTraffic
    stable_before: Optional[int] = None
    stable_after: Optional[int] = None
    versions: Dict[int, int] = field(default_factory=dict)   # rows answered per version
    alerts: List[str] = field(default_factory=list)
    decision: Any = None                                      # monitoring.retraining.Decision
    exported: List[int] = field(default_factory=list)         # data spans written
    pushed: Optional[int] = None
    diff: Any = None                                          # monitoring.replay.Replay
    canary: Any = None                                        # monitoring.canary.CanaryRun
    canary_done_at: Optional[float] = None                    # time.time() of the canary's action
    checked_at: Optional[float] = None                        # time.time() of the span's check

    @property
    def incident(self) -> bool:
        return self.decision is not None and self.decision.span in self.decision.incidents

    def canary_rows(self) -> int:
        """Rows of this quarter users got from the canaried candidate."""
        return self.versions.get(self.canary.verdict.candidate.version, 0) if self.canary is not None else 0

    def broken_share(self) -> Optional[float]:
        """The candidate's share of users' requests during its canary (None: no canary)."""
        if self.canary is None:
            return None
        verdict = self.canary.verdict
        total = verdict.candidate.requests + verdict.stable.requests
        return verdict.candidate.requests / total if total else 0.0

    def actions(self) -> str:
        done = []
        if self.canary is not None:
            verdict = self.canary.verdict
            done.append(f"canary v{verdict.candidate.version}: {verdict.status} -> {self.canary.action} "
                        f"({self.canary_rows()}/{sum(self.versions.values())} rows answered by it)")
        if self.exported:
            done.append(f"data spans {self.exported} written")
        if self.decision is not None and self.decision.retrain:
            done.append(f"retrained -> v{self.pushed}" if self.pushed else "retraining pushed nothing")
        if self.diff is not None:
            failed = self.diff.report.failures
            done.append(f"diff flip {self.diff.report.flip_rate:.2f}: {'FAILED' if failed else 'held'}")
        return "; ".join(done)


def _decision(record: SpanRecord) -> str:
    if record.decision is None:
        return ""
    if record.incident:
        return "DATA INCIDENT: not trained on"
    return "RETRAIN" if record.decision.retrain else "no retraining"


@dataclass
class Timeline:
    records: List[SpanRecord] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, record: SpanRecord) -> None:
        self.records.append(record)

    @staticmethod
    def line(record: SpanRecord) -> str:
        versions = ", ".join(f"v{v}: {n}" for v, n in sorted(record.versions.items()))
        alerts = f"{len(record.alerts)} alerts" + (f" ({'; '.join(record.alerts[:3])}"
                                                    f"{', ...' if len(record.alerts) > 3 else ''})"
                                                    if record.alerts else "")
        return (f"quarter {record.quarter} (request-log span {record.log_span}): {record.traffic.rows} rows, "
                f"accuracy {record.traffic.accuracy:.3f}; {alerts}; {_decision(record)}; "
                f"served by {versions or 'nobody'}; stable v{record.stable_before} -> v{record.stable_after}"
                + (f"; {record.actions()}" if record.actions() else ""))

    def table(self) -> str:
        header = f"{'quarter':>7} {'rows':>5} {'accuracy':>8} {'alerts':>6}  {'decision':<30} {'stable':<24} actions"
        lines = [header, "-" * len(header)]
        for r in self.records:
            stable = f"v{r.stable_before}" + (f" -> v{r.stable_after}" if r.stable_after != r.stable_before else "")
            lines.append(f"{r.quarter:>7} {r.traffic.rows:>5} {r.traffic.accuracy:>8.3f} {len(r.alerts):>6}  "
                         f"{_decision(r):<30} {stable:<24} {r.actions()}")
        return "\n".join(lines)

    def to_json(self) -> List[Dict[str, Any]]:
        return [{"quarter": r.quarter, "log_span": r.log_span, "rows": r.traffic.rows,
                 "accuracy": r.traffic.accuracy, "alerts": r.alerts, "incident": r.incident,
                 "retrain": bool(r.decision is not None and r.decision.retrain),
                 "versions": {str(k): v for k, v in r.versions.items()}, "stable_before": r.stable_before,
                 "stable_after": r.stable_after, "pushed": r.pushed, "exported": r.exported,
                 "canary": None if r.canary is None else {"candidate": r.canary.verdict.candidate.version,
                                                          "status": r.canary.verdict.status,
                                                          "action": r.canary.action,
                                                          "rows": r.canary_rows(),
                                                          "request_share": r.broken_share(),
                                                          "done_at": r.canary_done_at},
                 "checked_at": r.checked_at,
                 "diff_failed": None if r.diff is None else bool(r.diff.report.failures)}
                for r in self.records]
