"""The whole production loop, short (``python -m loop --quick``): real pipeline runs, a real
gateway, real REST traffic and feedback.

Plan (``loop.plan.QUICK``): train on quarters 11-12; replay 13 (a broken candidate pushed
outside the loop is canaried meanwhile), 14 (the serving version has served two clean
quarters: retrain on the feedback spans 13, 14), 15 (the retrained candidate is canaried and
promoted), 16 (an upstream fault: alerted, a data incident, never written as training data).
"""
import os

import pytest

from common.paths import REPO_ROOT
from loop.plan import QUICK
from loop.runner import Loop
from monitoring import locations
from monitoring.canary import PROMOTE, WITHDRAW
from monitoring.canary_analysis import FAIL, PASS
from monitoring.metadata import CANARY_TYPE, DECISION_TYPE, DIFFERENTIAL_TYPE, open_store
from pipeline.feedback_spans import span_directory

pytestmark = pytest.mark.e2e

SPANS_CONFIG = os.path.join(REPO_ROOT, "configs", "taxi-spans.yaml")


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory):
    loop = Loop(SPANS_CONFIG, QUICK, str(tmp_path_factory.mktemp("loop")))
    result = loop.run()
    print(result.timeline.table())
    return loop, result


def _record(result, quarter):
    return next(r for r in result.timeline.records if r.quarter == quarter)


def test_the_broken_candidate_is_rolled_back_within_its_canary_share(loop_run):
    loop, result = loop_run
    record = _record(result, QUICK.broken_at)
    canary = record.canary
    assert canary is not None and canary.verdict.status == FAIL and canary.action == WITHDRAW, record.actions()
    assert record.stable_after == record.stable_before  # users went back to the stable version
    share = record.canary_rows() / sum(record.versions.values())
    # the canary share of requests, plus the hash split's noise on a few dozen requests
    assert 0 < share <= QUICK_CANARY_PERCENT / 100 + 0.2, record.actions()


QUICK_CANARY_PERCENT = float(next(o.split("=")[1] for o in QUICK.overrides
                                  if o.startswith("rollout_analysis.canary_percent=")))


def test_the_upstream_fault_alerts_and_is_never_trained_on(loop_run):
    loop, result = loop_run
    record = _record(result, QUICK.fault_at)
    assert record.incident and record.alerts and not record.decision.retrain
    assert any("missing_fraction" in alert for alert in record.alerts), record.alerts
    assert record.log_span not in record.decision.window
    assert not os.path.exists(span_directory(loop.cfg, QUICK.fault_at))


def test_the_loop_retrains_on_feedback_spans_and_promotes_the_candidate(loop_run):
    loop, result = loop_run
    assert result.retrainings == 1
    retrain = next(r for r in result.timeline.records if r.decision.retrain)
    assert retrain.quarter == 14 and retrain.exported == [13, 14] and retrain.pushed is not None
    assert retrain.diff is not None and not retrain.diff.report.failures
    promoted = _record(result, 15)
    assert promoted.canary.verdict.candidate.version == retrain.pushed
    assert promoted.canary.verdict.status == PASS and promoted.canary.action == PROMOTE, promoted.actions()
    assert promoted.stable_after == retrain.pushed
    assert os.path.isfile(result.report)


def test_ml_metadata_holds_every_decision_test_and_analysis(loop_run):
    loop, result = loop_run
    store = open_store(locations.metadata_path(loop.cfg))
    decisions = store.get_executions_by_type(DECISION_TYPE)
    assert len(decisions) == len(QUICK.replayed)
    assert sum(e.properties["retrain"].int_value for e in decisions) == 1
    diffs = store.get_executions_by_type(DIFFERENTIAL_TYPE)
    assert len(diffs) == 1 and diffs[0].properties["failed"].int_value == 0
    canaries = [(e.properties["status"].string_value, e.properties["action"].string_value)
                for e in store.get_executions_by_type(CANARY_TYPE)]
    assert canaries == [(FAIL, WITHDRAW), (PASS, PROMOTE)]
