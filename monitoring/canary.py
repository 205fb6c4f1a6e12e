"""The automatic canary: start a candidate, watch it on live traffic, promote it or withdraw it.

``python -m monitoring canary --config ... --gateway-url URL [--shadow] [--version V]``:

1. through the gateway's admin API (``serving.api.admin``, token from
   ``serving.admin_token_env``) the candidate becomes the canary at
   ``rollout_analysis.canary_percent`` % -- or the shadow (``--shadow``): it answers
   every request too, its answers are logged and never returned;
2. every ``rollout_analysis.poll_seconds`` the outcomes since the start are
   updated, reading only what the log and the labels gained since the previous
   poll (``LogReader`` keeps each file's offset):
   requests and 5xx per version from the gateway's ``/metrics`` (deltas since
   the start: the counters are cumulative), latency and output per row from the
   request log (role ``primary`` for what users got, ``shadow`` for the shadow's
   answers), feedback labels of those rows when they arrived; and judged by
   ``monitoring.canary_analysis`` (which fails a clearly broken candidate early,
   before ``rollout_analysis.min_requests``);
3. on ``pass`` the candidate is promoted (blue-green, ``rollout:promote``); on
   ``fail`` -- or no verdict within ``rollout_analysis.timeout_seconds`` -- it is
   withdrawn (``rollout:clear``: stable answers everything again);
4. the verdict, the action and every figure go to ML Metadata
   (``CanaryAnalysis``, ``monitoring.metadata.record_canary``) and ``canary.jsonl``
   in the alerts directory, and are printed.

Shadow calls are not in ``/metrics`` (a shadow failure fails no request and is
only logged by the gateway), so in shadow mode the candidate's requests are the
distinct requests its logged answers belong to and its error rate is 0: errors
are judged in canary mode only.
"""
from __future__ import annotations

import glob
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from tensorflow.core.example import example_pb2

from common.config import PipelineConfig
from monitoring import locations
from monitoring.canary_analysis import INCONCLUSIVE, PASS, Verdict, VersionOutcomes, analyse, describe
from monitoring.health import VersionHealth, fetch_metrics, version_health
from monitoring.labelled import true_class
from monitoring.metadata import record_canary
from monitoring.predictions import predicted_class
from monitoring.served import feature_values, logged_output
from serving import request_log
from serving.client import Client
from serving.feedback.index import read_records
from serving.feedback.store import LabelRecord, label_files, read_labels_from

CANARY_FILE = "canary.jsonl"
PROMOTE, WITHDRAW = "promote", "clear"


class RolloutRefused(RuntimeError):
    """The gateway's admin API refused a rollout change (the message holds its answer)."""


@dataclass
class LoggedRows:
    """One version's logged rows of one role since the start."""
    latency_by_request: Dict[str, float] = field(default_factory=dict)
    outputs: List[Tuple[float, ...]] = field(default_factory=list)
    labelled: int = 0
    correct: int = 0


@dataclass
class CanaryRun:
    """What the runner did: the final verdict, the action taken and where it was recorded."""
    mode: str
    percent: float
    verdict: Verdict
    action: str
    execution_id: int = 0
    polls: int = 0

    def to_json(self) -> Dict[str, Any]:
        return {"mode": self.mode, "percent": self.percent, "action": self.action,
                "mlmd_execution_id": self.execution_id, **self.verdict.to_json()}


class Gateway:
    """The two things the runner needs of a gateway: its admin API and its ``/metrics``."""

    def __init__(self, url: str, model: str, token: str) -> None:
        self.url, self.model, self._token = url, model, token

    def rollout(self, action: str, body: Mapping[str, Any]) -> Dict[str, Any]:
        path = f"/v1/admin/models/{self.model}/rollout:{action}"
        with Client(self.url) as client:
            status, answer, _ = client.request("POST", path, dict(body),
                                               headers={"Authorization": f"Bearer {self._token}"})
        if status != 200:
            raise RolloutRefused(f"{self.url}{path}: answered {status}: {answer}")
        return answer

    def health(self) -> Dict[Optional[int], VersionHealth]:
        return version_health(fetch_metrics(self.url), self.model, self.url)


def _delta(now: Dict[Optional[int], VersionHealth], before: Dict[Optional[int], VersionHealth],
           version: int) -> Tuple[int, int]:
    """(requests, 5xx) of ``version`` since ``before``."""
    after, start = now.get(version), before.get(version)
    requests = (after.requests if after else 0) - (start.requests if start else 0)
    errors = (after.server_errors if after else 0) - (start.server_errors if start else 0)
    return requests, errors


class LogReader:
    """The rows logged since the start, per (role, version) in ``rows``, read incrementally.

    Each ``poll`` reads only what was appended since the previous one: the byte
    offset reached in every request-log file and feedback-label file of the spans
    since the start is kept, and a poll reads from there (a record or line still
    being written is left for the next poll). A feedback label may arrive before
    or after its row is read: rows wait for their label and labels for their row
    (a row is scored with the first label read for it)."""

    def __init__(self, cfg: PipelineConfig, log_dir: str, model: str, since_ms: int,
                 wanted: Sequence[Tuple[str, int]]) -> None:
        self.cfg, self.log_dir, self.model, self.since_ms = cfg, log_dir, model, since_ms
        self.rows: Dict[Tuple[str, int], LoggedRows] = {key: LoggedRows() for key in wanted}
        self.first_span = request_log.span_for(since_ms / 1000.0, cfg.serving.request_log_window_seconds)
        self._offsets: Dict[str, int] = {}
        # (request id, row) -> (whose row, true-class inputs, predicted class): rows awaiting a label
        self._unlabelled: Dict[Tuple[str, int], Tuple[LoggedRows, Dict[str, Any], int]] = {}
        self._labels: Dict[Tuple[str, int], LabelRecord] = {}  # labels awaiting their row
        self.bytes_read = 0

    def poll(self) -> Dict[Tuple[str, int], LoggedRows]:
        """Reads what is new in every span since the start; returns ``rows``. A file no
        larger than the offset reached in it is skipped unopened (most files, most polls)."""
        for span in (s for s in request_log.list_spans(self.log_dir) if s >= self.first_span):
            for path in sorted(glob.glob(request_log.window_glob(self.log_dir, span, role=None))):
                offset = self._offsets.get(path, 0)
                if os.path.getsize(path) <= offset:
                    continue  # not grown since the last poll: not opened
                for record, self._offsets[path] in read_records(path, offset):
                    self._add_row(example_pb2.Example.FromString(record))
                self.bytes_read += self._offsets.get(path, offset) - offset
            for path in label_files(self.log_dir, span):
                offset = self._offsets.get(path, 0)
                if os.path.getsize(path) <= offset:
                    continue
                labels, self._offsets[path] = read_labels_from(path, offset)
                self.bytes_read += self._offsets[path] - offset
                for label in labels:
                    self._add_label(label)
        return self.rows

    def _add_row(self, example: example_pb2.Example) -> None:
        features = example.features.feature
        if feature_values(features[request_log.MODEL])[0] != self.model \
                or feature_values(features[request_log.TIMESTAMP_MS])[0] < self.since_ms:
            return
        role = feature_values(features[request_log.ROLE])[0]
        rows = self.rows.get((role, int(feature_values(features[request_log.VERSION])[0])))
        if rows is None:
            return
        request_id = feature_values(features[request_log.REQUEST_ID])[0]
        rows.latency_by_request[request_id] = float(feature_values(features[request_log.LATENCY_MS])[0])
        output = logged_output(features)
        rows.outputs.append(output)
        denominator = self.cfg.label.denominator or ""
        values = feature_values(features[denominator]) if denominator in features else []
        key = (request_id, int(feature_values(features[request_log.ROW])[0]))
        waiting = (rows, {denominator: values[0] if values else None}, predicted_class(output, self.cfg.num_classes))
        label = self._labels.pop(key, None)
        if label is None:
            self._unlabelled[key] = waiting
        else:
            self._score(waiting, label)

    def _add_label(self, label: LabelRecord) -> None:
        if label.model != self.model:
            return
        waiting = self._unlabelled.pop(label.key, None)
        if waiting is not None:
            self._score(waiting, label)
        elif label.key not in self._labels:
            self._labels[label.key] = label

    def _score(self, waiting: Tuple[LoggedRows, Dict[str, Any], int], label: LabelRecord) -> None:
        rows, inputs, predicted = waiting
        rows.labelled += 1
        rows.correct += int(true_class(self.cfg.label, label.label, inputs) == predicted)


def outcomes(gateway: Gateway, reader: LogReader,
             before: Dict[Optional[int], VersionHealth]) -> Tuple[VersionOutcomes, VersionOutcomes]:
    """Both versions' outcomes since the start (module doc, step 2): the reader's two keys are
    the stable version's primary rows, then the candidate's (primary, or shadow)."""
    rows = reader.poll()
    health = gateway.health()
    out = []
    for role, version in rows:
        got = rows[(role, version)]
        requests, errors = _delta(health, before, version) if role == "primary" else (0, 0)
        out.append(VersionOutcomes(version, max(requests, len(got.latency_by_request)), errors,
                                   tuple(got.latency_by_request.values()), tuple(got.outputs),
                                   got.labelled, got.correct))
    return out[0], out[1]


def run(cfg: PipelineConfig, gateway: Gateway, candidate: Optional[int], shadow: bool = False,
        percent: Optional[float] = None, sleep: Callable[[float], None] = time.sleep,
        report: Callable[[str], None] = print) -> CanaryRun:
    """Drives one automatic rollout (module doc) and returns what it decided and did."""
    limits = cfg.rollout_analysis
    percent = limits.canary_percent if percent is None else percent
    before = gateway.health()
    since_ms = int(time.time() * 1000)
    body: Dict[str, Any] = {} if candidate is None else {"version": candidate}
    state = gateway.rollout("shadow", body) if shadow else gateway.rollout("canary", {**body, "percent": percent})
    stable, candidate = int(state["stable"]), int(state["shadow"] if shadow else state["canary"])
    mode = "shadow" if shadow else "canary"
    report(f"{mode}: candidate {candidate} against stable {stable}"
           + ("" if shadow else f" at {percent:g} %"))
    reader = LogReader(cfg, locations.request_log_dir(cfg), gateway.model, since_ms,
                       [("primary", stable), ("shadow" if shadow else "primary", candidate)])
    deadline = time.monotonic() + limits.timeout_seconds
    polls = 0
    while True:
        sleep(limits.poll_seconds)
        polls += 1
        verdict = analyse(*outcomes(gateway, reader, before), limits, cfg.num_classes)
        if verdict.status != INCONCLUSIVE or time.monotonic() > deadline:
            break
    if verdict.status == INCONCLUSIVE:
        verdict.reason = f"no verdict within rollout_analysis.timeout_seconds: {verdict.reason}"
    action = PROMOTE if verdict.status == PASS else WITHDRAW
    gateway.rollout(action, {"version": candidate} if action == PROMOTE else {})
    result = CanaryRun(mode, 100.0 if shadow else percent, verdict, action, polls=polls)
    result.execution_id = _record(cfg, gateway.model, result)
    return result


def _record(cfg: PipelineConfig, model: str, result: CanaryRun) -> int:
    verdict = result.verdict
    execution_id = record_canary(
        locations.metadata_path(cfg), model=model, stable=verdict.stable.version,
        candidate=verdict.candidate.version,
        properties={"mode": result.mode, "percent": result.percent, "status": verdict.status,
                    "action": result.action, "reason": verdict.reason,
                    "stable_requests": verdict.stable.requests, "candidate_requests": verdict.candidate.requests,
                    "measurements": json.dumps([m.to_json() for m in verdict.measurements])})
    directory = locations.alerts_dir(cfg)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, CANARY_FILE), "a", encoding="utf-8") as f:
        f.write(json.dumps({**result.to_json(), "mlmd_execution_id": execution_id,
                            "decided_ms": int(time.time() * 1000)}, sort_keys=True) + "\n")
    return execution_id


def summary(result: CanaryRun) -> str:
    """What the CLI prints: the verdict, the action, every figure, the ML Metadata record."""
    verdict = result.verdict
    done = "PROMOTED" if result.action == PROMOTE else "WITHDRAWN (stable answers everything)"
    lines = [f"{result.mode} of version {verdict.candidate.version} against stable {verdict.stable.version}: "
             f"{verdict.status.upper()} -> {done}", f"reason: {verdict.reason}",
             f"requests: stable {verdict.stable.requests}, candidate {verdict.candidate.requests}"]
    for m in verdict.measurements:
        flag = "noise " if m.measure in verdict.noise else "FAIL  " if m.alarmed else "ok    "
        lines.append(f"  {flag}{describe(m)}  [{m.detail}]")
    lines.append(f"ML Metadata: CanaryAnalysis execution {result.execution_id}")
    return "\n".join(lines)

