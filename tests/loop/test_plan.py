"""The loop's plans load as valid configs, and a quarter is served as the gateway expects it."""
import os

import pytest

from common.loader import load_config
from common.paths import REPO_ROOT
from loop import workspace
from loop.plan import FULL, QUICK

SPANS_CONFIG = os.path.join(REPO_ROOT, "configs", "taxi-spans.yaml")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("loop"))
    base = load_config(SPANS_CONFIG, ['data.spans.pattern=""', "data.path=tfx:chicago_taxi"])
    workspace.prepare(base, QUICK, work)
    return work


@pytest.mark.parametrize("plan", [QUICK, FULL], ids=["quick", "full"])
def test_each_plan_is_a_valid_config_with_its_faults_among_the_replayed_quarters(plan, prepared):
    cfg = load_config(SPANS_CONFIG, list(plan.config_overrides(prepared)))
    assert cfg.data_path == os.path.join(prepared, "data")
    assert cfg.serving.request_log_window_seconds == plan.window_seconds
    assert {plan.fault_at, plan.broken_at} <= set(plan.replayed) and plan.fault_at != plan.broken_at
    assert max(plan.initial) < min(plan.replayed)


def test_the_workspace_holds_the_initial_quarters_and_their_history(prepared):
    assert sorted(os.listdir(os.path.join(prepared, "data"))) == [f"span-{q}" for q in QUICK.initial]
    with open(os.path.join(workspace.history_dir(prepared), "data.csv")) as f:
        history = sum(1 for _ in f) - 1
    counts = [sum(1 for _ in open(workspace.quarter_file(prepared, q))) - 1 for q in QUICK.initial]
    assert history == sum(counts)
    with pytest.raises(FileExistsError, match="holds an earlier loop"):
        workspace.prepare(load_config(SPANS_CONFIG, ['data.spans.pattern=""', "data.path=tfx:chicago_taxi"]),
                          QUICK, prepared)


def test_a_quarter_is_sampled_in_time_order_typed_with_missing_values_absent(prepared):
    cfg = load_config(SPANS_CONFIG, list(QUICK.config_overrides(prepared)))
    rows, labels = workspace.quarter_rows(cfg, prepared, 13, 50, seed=1)
    assert len(rows) == len(labels) == 50
    stamps = [r["trip_start_timestamp"] for r in rows]
    assert all(isinstance(s, int) for s in stamps) and all(isinstance(r["fare"], float) for r in rows)
    assert all(None not in r.values() for r in rows)
    assert all(isinstance(label, float) for label in labels)


def test_small_quarters_come_as_smaller_requests_so_a_canary_can_reach_its_minimum():
    # the full plan: 2015's ~1,200-row quarters at 5 rows a request, 2016's ~200 at 1
    assert FULL.request_size(1231) == 5 and FULL.request_size(207) == 1 and FULL.request_size(600) == 3
    assert FULL.request_size(0) == 1
    # without requests_per_span the request size is fixed
    assert QUICK.requests_per_span == 0 and QUICK.request_size(150) == QUICK.request_size(20) == 5
