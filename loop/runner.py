"""The loop itself: one pass over the replayed quarters, each step one call of the package that owns it.

Per replayed quarter (``loop.plan`` says which and where the faults go):

1. at the start of a request-log window, users send the quarter through the gateway
   (``loop.traffic``), their labels right behind; a candidate waiting for rollout is
   canaried meanwhile in a thread (``monitoring.canary.run``);
2. once the window closed: ``monitoring.check.check_span`` + ``record_check`` (alerts),
   ``monitoring.decide.decide_from_records`` + ``record_decision``;
3. on "retrain": the decision's window, data incidents excluded, becomes data spans
   (``pipeline.feedback_spans.export_window``), the same pipeline runs
   (``pipeline.local_runner.run_local``: rolling window, time split, Evaluator on the
   newest span against the blessed baseline); a pushed candidate is replayed with the
   stable one on the newest span (``monitoring.replay``) and, when that holds, waits for
   the next quarter's canary.

The timeline (``loop.timeline``) records each quarter: alerts, decision, versions, the
accuracy of what users got, and what the loop did.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import tensorflow_data_validation as tfdv

from common.config import PipelineConfig
from common.loader import load_config
from common.paths import TAXI_DEFAULT
from loop import workspace
from loop.plan import Plan
from loop.timeline import SpanRecord, Timeline
from loop.traffic import SpanTraffic, send_quarter, wait_for_window_end, wait_for_window_start
from monitoring import locations
from monitoring.canary import CanaryRun, Gateway, RolloutRefused
from monitoring.canary import run as run_canary
from monitoring.check import check_span, record_check
from monitoring.decide import decide_from_records, record_decision
from monitoring.health import fetch_metrics
from monitoring.reference import Reference, load_reference
from monitoring.replay import replay_span, write_replay
from pipeline import progress
from pipeline.feedback_spans import export_window
from pipeline.local_runner import run_local
from pipeline.run_paths import local_paths
from serving.client import Client
from serving.server import launch
from serving.versions import complete_versions


@dataclass
class Candidate:
    """A version waiting for its canary, and where it came from."""
    version: int
    origin: str                 # "retrained" or "pushed outside the loop"


@dataclass
class LoopResult:
    timeline: Timeline
    report: str = ""
    retrainings: int = 0


class Loop:
    """One run of the loop over a plan, in ``work_dir`` (module doc)."""

    def __init__(self, config_path: str, plan: Plan, work_dir: str, overrides: Tuple[str, ...] = (),
                 say: Callable[[str], None] = print) -> None:
        self.config_path, self.plan, self.work_dir = config_path, plan, os.path.abspath(work_dir)
        self.overrides = plan.config_overrides(self.work_dir) + tuple(overrides)
        self.say = say
        self.token = secrets.token_hex(16)
        self.cfg: Optional[PipelineConfig] = None
        self.reference: Optional[Reference] = None
        self.history_cfg: Optional[PipelineConfig] = None  # the config with data.path = the history
        self.data_span_of: Dict[int, int] = {}   # request-log span -> the quarter it replayed
        self.pending: Optional[Candidate] = None
        self.result = LoopResult(Timeline())

    # -- set-up -------------------------------------------------------------------------------
    def prepare(self) -> PipelineConfig:
        base = load_config(self.config_path, list(self.overrides) + ['data.spans.pattern=""',
                                                                   f"data.path={TAXI_DEFAULT}"])
        workspace.prepare(base, self.plan, self.work_dir)
        self.cfg = load_config(self.config_path, list(self.overrides))
        history = load_config(self.config_path, list(self.overrides) + [
            'data.spans.pattern=""', f"data.path={workspace.history_dir(self.work_dir)}"])
        self.reference = load_reference(history, tfdv.load_schema_text(history.schema_path))
        self.history_cfg = history
        return self.cfg

    def train(self, why: str) -> Optional[int]:
        """Runs the pipeline; returns the version it pushed (None: not blessed, not pushed)."""
        before = set(complete_versions(self.cfg.push_dir))
        started = time.perf_counter()
        self.say(f"pipeline run ({why}) ...")
        log_file = local_paths(self.cfg).log_file
        os.makedirs(os.path.dirname(log_file), exist_ok=True)
        progress.attach(log_file)  # TFX's and TF's logs to the run's log file, component lines to stdout
        try:
            with progress.library_output_to(log_file) as terminal:
                def say(line: str) -> None:
                    with contextlib.redirect_stdout(terminal):
                        self.say(f"  {line}")
                run_local(self.cfg, tune=False, say=say)
        except Exception as err:  # pylint: disable=broad-except  # a failed component, e.g. the data gate
            self.say(f"pipeline run stopped after {time.perf_counter() - started:.0f} s: {err}; nothing pushed "
                     f"(log: {log_file})")
            return None
        new = sorted(set(complete_versions(self.cfg.push_dir)) - before)
        self.say(f"pipeline run done in {time.perf_counter() - started:.0f} s: "
                 + (f"pushed version {new[-1]}" if new else "nothing pushed (the Evaluator did not bless it)"))
        return new[-1] if new else None

    def gateway_args(self) -> List[str]:
        args = ["--config", self.config_path, "--poll_seconds", "0.2"]
        for override in self.overrides:
            args += ["--set", override]
        return args

    def stable(self, gateway: Gateway) -> Optional[int]:
        """The gateway's stable version now (its admin API)."""
        with Client(gateway.url) as client:
            status, state, _ = client.request("GET", f"/v1/admin/models/{gateway.model}/rollout",
                                              headers={"Authorization": f"Bearer {self.token}"})
        return int(state["stable"]) if status == 200 and state.get("stable") is not None else None

    def stage(self, gateway: Gateway, url: str, version: int, timeout_s: float = 120.0) -> None:
        """Makes ``version`` the canary at 0 % and waits until the gateway has loaded it, so its
        canary answers from the quarter's first request on. The gateway accepts a version once
        its directory has settled on disk: until then the rollout is refused, and retried."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                gateway.rollout("canary", {"version": version, "percent": 0})
                break
            except RolloutRefused as err:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"version {version} never became a candidate: {err}") from err
                time.sleep(0.5)
        self.wait_for_version(url, version, max(deadline - time.monotonic(), 1.0))

    def wait_for_version(self, url: str, version: int, timeout_s: float) -> None:
        """Waits until the gateway serves ``version`` (AVAILABLE in its model status)."""
        deadline = time.monotonic() + timeout_s
        with Client(url) as client:
            while True:
                status, body, _ = client.request("GET", f"/v1/models/{self.cfg.serving.model_name}")
                states = body.get("model_version_status", []) if status == 200 and isinstance(body, dict) else []
                if any(str(s.get("version")) == str(version) and s.get("state") == "AVAILABLE" for s in states):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url}: version {version} not AVAILABLE within {timeout_s:g} s: {body}")
                time.sleep(0.3)

    # -- one quarter ------------------------------------------------------------------------
    def replay(self, url: str, quarter: int, gateway: Gateway
               ) -> Tuple[SpanTraffic, Optional[CanaryRun], Optional[float]]:
        """Sends one quarter in its own request-log window, canarying the pending candidate."""
        from loop.scenarios import upstream_fault

        cfg, plan = self.cfg, self.plan
        rows, labels = workspace.quarter_rows(cfg, self.work_dir, quarter, plan.rows_per_span)
        if quarter == plan.fault_at:
            rows = upstream_fault(rows)
            self.say(f"quarter {quarter}: INJECTED upstream fault (company missing, cash only, fares x3)")
        candidate = self.pending
        if candidate is not None:
            self.stage(gateway, url, candidate.version)
        span = wait_for_window_start(plan.window_seconds)
        deadline = (span + 1) * plan.window_seconds - 0.5
        canary: Dict[str, Any] = {}
        thread = None
        if candidate is not None:
            self.say(f"quarter {quarter}: canary of version {candidate.version} ({candidate.origin})")

            def rollout() -> None:
                try:
                    canary["run"] = run_canary(cfg, gateway, candidate.version, report=self.say)
                    canary["at"] = time.time()
                except Exception as err:  # pylint: disable=broad-except
                    canary["error"] = err

            thread = threading.Thread(target=rollout, daemon=True)
            thread.start()
        traffic = send_quarter(cfg, url, quarter, rows, labels, plan.request_size(len(rows)), deadline)
        if thread is not None:
            thread.join()
            self.pending = None
            if "error" in canary:
                raise canary["error"]
        self.data_span_of[traffic.log_span] = quarter
        wait_for_window_end(traffic.log_span, plan.window_seconds, cfg.serving.request_log_flush_seconds)
        return traffic, canary.get("run"), canary.get("at")

    def step(self, url: str, quarter: int, gateway: Gateway) -> SpanRecord:
        cfg = self.cfg
        stable_before = self.stable(gateway)
        traffic, canary, canary_at = self.replay(url, quarter, gateway)
        record = SpanRecord(quarter=quarter, log_span=traffic.log_span, traffic=traffic, stable_before=stable_before)
        if canary is not None:
            record.canary, record.canary_done_at = canary, canary_at
        result = check_span(cfg, traffic.log_span, fetch_metrics(url), url, reference=self.reference)
        record_check(cfg, result)
        record.checked_at = time.time()
        record.versions = result.versions
        record.alerts = [f"{a.comparator} {a.feature} {a.measure}" for a in result.alerts]
        decision = decide_from_records(cfg, traffic.log_span)
        record_decision(cfg, decision)
        record.decision = decision
        if decision.retrain:
            self.retrain(decision, record)
        record.stable_after = self.stable(gateway)
        return record

    def retrain(self, decision: Any, record: SpanRecord) -> None:
        exported = export_window(self.cfg, decision.window, decision.incidents, self.data_span_of)
        for span in exported:
            self.say(f"  {span.describe()}")
        record.exported = [e.data_span for e in exported]
        newest = max(self.data_span_of[s] for s in decision.window)
        version = self.train(f"retrain on data spans up to {newest}, request-log window {decision.window}")
        self.result.retrainings += 1
        record.pushed = version
        if version is None:
            return
        replay = replay_span(self.cfg, decision.span, stable=record.stable_before, candidate=version)
        write_replay(self.cfg, replay)
        record.diff = replay
        self.say(f"  differential test v{replay.stable} -> v{version} on span {decision.span}: flip rate "
                 f"{replay.report.flip_rate:.3f}, mean difference {replay.report.mean_difference:.3f}: "
                 + ("FAILED " + "; ".join(m.measure for m in replay.report.failures) if replay.report.failures
                    else "held"))
        if not replay.report.failures:
            self.pending = Candidate(version, "retrained")

    # -- the whole loop -------------------------------------------------------------------
    def run(self) -> LoopResult:
        started = time.perf_counter()
        cfg = self.prepare()
        first = self.train(f"first training on quarters {list(self.plan.initial)}")
        if first is None:
            raise RuntimeError("the first pipeline run pushed no model: nothing to serve "
                               f"(see {locations.run_root(cfg)})")
        self.serve(first)
        self.result.timeline.seconds = time.perf_counter() - started
        return self.result

    def serve(self, first: int) -> None:
        """From a pushed first version on: the gateway, every replayed quarter, the report."""
        from loop.scenarios import push_broken_candidate
        from monitoring.report import write_report

        cfg = self.cfg
        env = dict(os.environ, **{cfg.serving.admin_token_env: self.token})
        with launch(self.gateway_args(), env=env) as server:
            gateway = Gateway(server.base_url, cfg.serving.model_name, self.token)
            # Pin the stable label: the gateway's bootstrap makes the newest version on disk
            # stable, and a version pushed later (the broken one) must not become it that way.
            # A routed request writes the bootstrap (the state's GET does not): the model's metadata
            # routes without a request-log row. Then promote; "already stable" means it is pinned.
            with Client(server.base_url) as client:
                client.request("GET", f"/v1/models/{cfg.serving.model_name}/metadata")
            try:
                gateway.rollout("promote", {"version": first})
            except RolloutRefused as err:
                if "already stable" not in str(err):
                    raise
            self.say(f"gateway on {server.base_url}, serving version {first}")
            for quarter in self.plan.replayed:
                if quarter == self.plan.broken_at:
                    version = push_broken_candidate(cfg)
                    self.say(f"quarter {quarter}: INJECTED broken candidate, version {version}, pushed outside "
                             "the loop (no pipeline run, no differential test)")
                    self.pending = Candidate(version, "pushed outside the loop")
                record = self.step(server.base_url, quarter, gateway)
                self.result.timeline.add(record)
                self.say(self.result.timeline.line(record))
        # the report's histograms compare with the same history the checks did
        self.result.report = write_report(self.history_cfg, locations.report_path(cfg))
