"""The retraining rule on synthetic check records: each rule firing and not, the gate, incidents."""
import dataclasses

import pytest

from monitoring.alerts import BELOW, Measurement
from monitoring.check import CheckResult
from monitoring.retraining import decide

SCHEMA_ALERT = Measurement("schema", "company", "FEATURE_TYPE_LOW_FRACTION_PRESENT", 1.0, 0.0,
                           detail="company is missing in 100% of rows")
MISSING_ALERT = Measurement("skew", "fare", "missing_fraction", 0.9, 0.1)


def drift(feature, comparator="drift"):
    return Measurement(comparator, feature, "jensen_shannon", 0.5, 0.3)


def check(span, measurements=(), labelled=(), versions=None, main_version=1):
    """A recorded check of ``span`` with the given alerts and labelled scores (version 1)."""
    versions = {main_version: 300} if versions is None else versions
    return CheckResult(
        model="taxi", span=span, previous_span=span - 1, rows=300, versions=versions,
        main_version=main_version, checked_ms=0, thresholds="test", class_names=["no", "yes"],
        output_shares={}, previous_shares=None,
        labelled=[{"version": v, "rows": r, "correct": c, "accuracy": c / r} for v, r, c in labelled],
        health=[], health_source="", measurements=list(measurements))


def config(taxi_config, **retraining):
    return dataclasses.replace(taxi_config, retraining=dataclasses.replace(taxi_config.retraining, **retraining))


def rule(decision, name):
    return next(r for r in decision.rules if r.rule == name)


def test_accuracy_drop_fires_below_the_eval_accuracy_by_more_than_delta(taxi_config):
    cfg = config(taxi_config, max_accuracy_drop=0.05, drift_spans=0, min_new_labelled_rows=100)
    checks = [check(1, labelled=[(1, 200, 120)]), check(2, labelled=[(1, 200, 140)])]
    decision = decide(cfg, checks, eval_accuracy_of={1: 0.80}.get, eval_accuracy_source="test")
    accuracy = rule(decision, "accuracy_drop")
    assert accuracy.fired and accuracy.value == pytest.approx(0.80 - 0.70) and accuracy.threshold == 0.05
    assert decision.retrain and decision.reason == "retrain: accuracy_drop fired"
    assert decision.window == [1, 2] and decision.serving_version == 1
    # within delta: no retraining
    calm = decide(cfg, checks, eval_accuracy_of={1: 0.74}.get)
    assert not rule(calm, "accuracy_drop").fired and not calm.retrain
    assert calm.reason == "no retraining: no trigger fired"


def test_accuracy_is_not_judged_without_eval_accuracy_or_enough_labels(taxi_config):
    cfg = config(taxi_config, drift_spans=0)
    unknown = rule(decide(cfg, [check(1, labelled=[(1, 200, 10)])]), "accuracy_drop")
    assert not unknown.fired and unknown.value is None and "no eval accuracy of version 1" in unknown.detail
    few = rule(decide(cfg, [check(1, labelled=[(1, 10, 0)])], eval_accuracy_of=lambda v: 0.9),
               "accuracy_drop")
    assert not few.fired and "10 labelled rows of version 1 < monitoring.min_version_rows 50" in few.detail
    off = rule(decide(config(taxi_config, max_accuracy_drop=None), [check(1)]), "accuracy_drop")
    assert not off.fired and off.threshold is None


def test_drift_must_be_sustained_on_one_feature_for_k_consecutive_spans(taxi_config):
    cfg = config(taxi_config, drift_spans=3, min_new_labelled_rows=0)
    sustained = [check(1, [drift("fare")]), check(2, [drift("fare", "skew"), drift("company")]),
                 check(3, [drift("fare"), drift("company")])]
    fired = rule(decide(cfg, sustained), "sustained_drift")
    assert fired.fired and fired.value == 3 and "'fare'" in fired.detail
    # broken run: fare did not drift in span 2; company drifted only twice
    broken = [check(1, [drift("fare")]), check(2, [drift("company")]), check(3, [drift("fare"), drift("company")])]
    calm = rule(decide(cfg, broken), "sustained_drift")
    assert not calm.fired and calm.value == 2 and "'company'" in calm.detail
    assert decide(cfg, sustained).retrain and not decide(cfg, broken).retrain
    # as of span 2 (the --span option) fare has drifted in 2 spans only
    assert rule(decide(cfg, sustained, span=2), "sustained_drift").value == 2


def test_max_age_counts_the_clean_spans_the_serving_version_answered(taxi_config):
    cfg = config(taxi_config, max_age_spans=3, drift_spans=0, min_new_labelled_rows=0)
    checks = [check(1, main_version=1), check(2, versions={1: 100, 2: 200}, main_version=2),
              check(3, main_version=2), check(4, main_version=2)]
    assert rule(decide(cfg, checks), "max_age").fired            # version 2 served spans 2-4
    young = rule(decide(cfg, checks[:3]), "max_age")
    assert not young.fired and young.value == 2


def test_a_version_the_canary_promoted_during_the_span_is_the_one_judged(taxi_config):
    """Version 1 answered most of span 4 and is old enough to retrain, but the canary promoted
    version 2 during span 4: version 2 serves now, one span old, judged on its canary rows."""
    cfg = config(taxi_config, max_age_spans=4, max_accuracy_drop=0.05, drift_spans=0, min_new_labelled_rows=0)
    window_ms = cfg.serving.request_log_window_seconds * 1000
    checks = [check(s, labelled=[(1, 200, 170)]) for s in (1, 2, 3)] + [
        dataclasses.replace(check(4, versions={1: 240, 2: 60}, labelled=[(1, 240, 204), (2, 60, 54)]),
                            checked_ms=5 * window_ms)]
    eval_accuracy = {1: 0.95, 2: 0.90}.get
    before = decide(cfg, checks, eval_accuracy_of=eval_accuracy)
    assert before.serving_version == 1 and before.retrain
    assert rule(before, "max_age").fired and rule(before, "accuracy_drop").fired   # 0.95 - 0.85
    promoted = decide(cfg, checks, eval_accuracy_of=eval_accuracy, promotions=[(4 * window_ms + 500, 2)])
    assert promoted.serving_version == 2 and not promoted.retrain, promoted.reason
    assert rule(promoted, "max_age").value == 1
    accuracy = rule(promoted, "accuracy_drop")
    assert not accuracy.fired and accuracy.value == pytest.approx(0.90 - 0.90) and "(54/60)" in accuracy.detail
    # a promotion before the span (version 1's own, long ago) or after its check changes nothing
    for old in ([(1000, 1)], [(6 * window_ms, 2)]):
        assert decide(cfg, checks, eval_accuracy_of=eval_accuracy, promotions=old).serving_version == 1


def test_the_new_label_gate_blocks_a_trigger_and_counts_since_the_last_retrain(taxi_config):
    cfg = config(taxi_config, max_age_spans=1, drift_spans=0, min_new_labelled_rows=300)
    checks = [check(1, labelled=[(1, 200, 150)]), check(2, labelled=[(1, 150, 100)])]
    assert decide(cfg, checks).retrain                              # 350 labelled rows
    blocked = decide(cfg, checks, last_retrain_span=1)              # only span 2's 150 are new
    gate = rule(blocked, "new_labels")
    assert not gate.fired and gate.value == 150 and gate.threshold == 300
    assert not blocked.retrain
    assert blocked.reason == "no retraining: max_age fired but gate new_labels not passed"


def test_a_data_incident_is_excluded_from_the_window_and_triggers_nothing(taxi_config):
    cfg = config(taxi_config, drift_spans=2, max_accuracy_drop=0.05, min_new_labelled_rows=0)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, spans=dataclasses.replace(cfg.data.spans, train_spans=3)))
    # span 4 is broken upstream (a column gone: schema + missing alerts, its labels scored badly);
    # its fare "drift" and accuracy fall must not count.
    checks = [check(1, labelled=[(1, 100, 80)]), check(2, labelled=[(1, 100, 80)]),
              check(3, [drift("fare")], labelled=[(1, 100, 80)]),
              check(4, [SCHEMA_ALERT, MISSING_ALERT, drift("fare")], labelled=[(1, 100, 10)])]
    decision = decide(cfg, checks, eval_accuracy_of=lambda v: 0.8)
    assert decision.incidents == {4: ["schema company FEATURE_TYPE_LOW_FRACTION_PRESENT "
                                      "(company is missing in 100% of rows)", "skew fare missing_fraction"]}
    assert decision.window == [1, 2, 3]                       # the newest 3 clean spans
    assert not rule(decision, "accuracy_drop").fired          # judged on span 3, not 4
    assert "span 3" in rule(decision, "accuracy_drop").detail
    assert rule(decision, "sustained_drift").value == 1       # span 4 does not extend the run
    assert not decision.retrain
    # missing-value shifts are not an incident once left out of retraining.incident_measures
    lenient = decide(config(cfg, incident_measures=()), [check(1, [MISSING_ALERT])])
    assert lenient.incidents == {}


def test_only_incidents_leave_no_window_and_no_retraining(taxi_config):
    cfg = config(taxi_config, max_age_spans=1, min_new_labelled_rows=0)
    decision = decide(cfg, [check(1, [SCHEMA_ALERT])])
    assert decision.window == [] and not decision.retrain and decision.serving_version is None


def test_a_decision_needs_a_recorded_check_of_the_span(taxi_config):
    with pytest.raises(ValueError, match="no recorded check to decide from"):
        decide(taxi_config, [])
    with pytest.raises(ValueError, match=r"span 7: no recorded check \(checked spans: \[1\]\)"):
        decide(taxi_config, [check(1)], span=7)


def test_labelled_accuracy_alerts_count_as_neither_drift_nor_incident(taxi_config):
    low = Measurement("labelled_accuracy", "label", "accuracy", 0.2, 0.5, direction=BELOW, model_version=1)
    decision = decide(config(taxi_config, drift_spans=1), [check(1, [low])])
    assert decision.incidents == {} and not rule(decision, "sustained_drift").fired


def test_drift_before_the_last_retrain_decision_does_not_count_again(taxi_config):
    """A retraining answers the drift seen until its decision: a feature still skewed from the
    original training history must drift for k spans after it before it triggers again."""
    cfg = config(taxi_config, drift_spans=2, min_new_labelled_rows=0)
    checks = [check(span, [drift("payment_type", "skew")]) for span in (1, 2, 3, 4)]
    assert rule(decide(cfg, checks, span=3), "sustained_drift").value == 3
    after = rule(decide(cfg, checks, span=3, last_retrain_span=2), "sustained_drift")
    assert not after.fired and after.value == 1 and "after the last retrain decision (span 2)" in after.detail
    assert rule(decide(cfg, checks, span=4, last_retrain_span=2), "sustained_drift").fired
