"""serving.feedback: what a label is, which request ids are known, durable write-once labels,
and the CSV import (the endpoint is test_api_feedback.py, the join test_feedback_join.py)."""
import dataclasses
import json
import os
import time

import pytest

from common.config import LabelConfig
from common.loader import load_config
from serving import cli, request_log
from serving.errors import ServingError
from serving.feedback.index import IndexedRequestLog, RequestIndex, read_records
from serving.feedback.labels import FeedbackUnavailable, LabelSpec
from serving.feedback.service import Feedback
from serving.feedback.store import LabelStore, list_feedback_spans, read_span_labels
from serving.request_log import RequestLog
from testing.feedback import instance, log_requests
from tests.conftest import REPO, TAXI_CONFIG

WINDOW = 3600  # configs/taxi.yaml's serving.request_log_window_seconds


def error_of(call, *args):
    with pytest.raises(ServingError) as caught:
        call(*args)
    return caught.value.status, caught.value.message


@pytest.fixture
def log_dir(tmp_path):
    return str(tmp_path / "request_log")


@pytest.fixture
def feedback(log_dir, taxi_config):
    """Feedback over a log holding 'r0' (2 rows) and 'r1' (1 row) for model taxi."""
    log_requests(log_dir, taxi_config, ["r0"], rows=2)
    log_requests(log_dir, taxi_config, ["r1"])
    return Feedback.open(log_dir, LabelSpec.from_config(taxi_config), WINDOW, 24)


def single(i):
    """Error names for single items: the bare field (``label: ...``)."""
    return ""


# ------------------------------------------------------------------ what a label is

def test_taxi_label_is_the_raw_tips_amount_within_the_schemas_domain(taxi_config):
    spec = LabelSpec.from_config(taxi_config)
    assert (spec.column, spec.dtype) == ("tips", "float")
    assert spec.parse(3, "label") == 3.0 and spec.parse_text(" 2.5", "label") == 2.5
    for bad, problem in ((-1, "below the minimum"), (20000.0, "above the maximum"),
                         ("big", "not a number"), (True, "not a number"), (float("nan"), "not finite")):
        status, message = error_of(spec.parse, bad, "feedback[3].label")
        assert status == 400 and message.startswith("feedback[3].label: ")
        assert problem in message and "[0, 10000]" in message and repr(bad) in message


def test_liar_label_is_a_class_name_also_for_the_binary_fold():
    for config in ("liar.yaml", "liar-binary.yaml"):
        cfg = load_config(os.path.join(REPO, "configs", config), require_data=False)
        spec = LabelSpec.from_config(cfg)
        assert (spec.column, spec.dtype) == ("label", "string")
        assert spec.parse("half-true", "label") == "half-true"
        status, message = error_of(spec.parse, "maybe", "label")
        assert status == 400 and "'maybe'" in message and "'pants-fire'" in message
        assert "not a string" in error_of(spec.parse, 1, "label")[1]


def test_a_column_label_is_a_class_id(taxi_config):
    cfg = dataclasses.replace(taxi_config, label=LabelConfig(name="tipped", kind="column",
                                                             column="tipped"))
    spec = LabelSpec.from_config(cfg)
    assert (spec.column, spec.dtype, spec.class_ids, spec.rule) == ("tipped", "int", (0, 1), None)
    assert spec.parse(1.0, "label") == 1 and spec.parse_text("0", "label") == 0
    assert "[0, 1]" in error_of(spec.parse, 2, "label")[1]
    assert "not an integer" in error_of(spec.parse, 0.5, "label")[1]


@pytest.mark.parametrize("serving, features, why", [
    ({"sensitive_features": {"fare": "drop"}}, None, "is dropped by serving.sensitive_features"),
    ({"sensitive_features": {"fare": "hash"}}, None, "is hashed by serving.sensitive_features"),
    ({}, lambda fs: tuple(f for f in fs if f.name != "fare"), "is not a feature"),
])
def test_a_ratio_label_needs_its_denominator_logged_in_clear(taxi_config, serving, features, why):
    cfg = dataclasses.replace(taxi_config, serving=dataclasses.replace(taxi_config.serving, **serving),
                              features=features(taxi_config.features) if features else taxi_config.features)
    with pytest.raises(FeedbackUnavailable, match=f"label.denominator: 'fare' {why}"):
        LabelSpec.from_config(cfg)


# ------------------------------------------------------------------ which requests are known

def test_the_gateways_own_requests_are_known_before_they_reach_the_disk(log_dir, taxi_config):
    index = RequestIndex(log_dir, WINDOW, 24)
    log = IndexedRequestLog(RequestLog.from_config(taxi_config, log_dir), index)
    try:
        common = dict(model="taxi", version=1, outputs=[[0.1], [0.2]], latency_ms=1.0)
        log.log(request_id="own", role="primary", features=[instance(0), instance(1)], **common)
        log.log(request_id="shadowed", role="shadow", features=[instance(0), instance(1)], **common)
        found = index.find("own")
        assert (found.model, found.rows, found.ambiguous) == ("taxi", 2, False)
        assert index.find("shadowed") is None  # only the answers clients got
        assert log.stats()["logged_rows"] == 4  # everything else is the wrapped log's
    finally:
        log.close()
    assert RequestIndex(log_dir, WINDOW, 24).find("own") == found  # the same request from disk


def test_after_a_restart_the_index_is_rebuilt_from_the_recent_spans(log_dir, taxi_config):
    now = time.time()
    log_requests(log_dir, taxi_config, ["old"], timestamp=now - 3 * WINDOW)
    log_requests(log_dir, taxi_config, ["recent"], rows=3, timestamp=now - WINDOW)
    index = RequestIndex(log_dir, WINDOW, window_spans=3)
    assert len(index) == 1 and index.find("old") is None  # 3 windows ago: outside the window
    assert index.find("recent").rows == 3
    assert index.find("recent").span == request_log.span_for(now - WINDOW, WINDOW)
    assert RequestIndex(log_dir, WINDOW, window_spans=4).find("old") is not None


def test_requests_logged_by_another_process_are_found_on_a_miss(log_dir, taxi_config):
    index = RequestIndex(log_dir, WINDOW, 24)
    log_requests(log_dir, taxi_config, ["elsewhere-1"])
    assert index.find("elsewhere-1") is not None
    assert index.refresh() == 0  # only new bytes are read
    log_requests(log_dir, taxi_config, ["elsewhere-2"])
    assert index.find("elsewhere-2") is not None and len(index) == 2


def test_the_window_moves_with_the_clock(log_dir, taxi_config):
    clock = [time.time()]
    index = RequestIndex(log_dir, WINDOW, 2, clock=lambda: clock[0])
    index.add("a", "taxi", clock[0], 1)
    assert index.find("a") is not None
    clock[0] += 2 * WINDOW
    assert index.find("a") is None
    index.add("b", "taxi", clock[0] - 5 * WINDOW, 1)  # a late row of a forgotten span
    assert len(index) == 0


def test_a_reused_request_id_is_ambiguous(log_dir, taxi_config):
    now = time.time()
    log_requests(log_dir, taxi_config, ["same", "once"], timestamp=now - 10)
    log_requests(log_dir, taxi_config, ["same"], timestamp=now - 5)
    index = RequestIndex(log_dir, WINDOW, 24)
    assert index.find("same").ambiguous and not index.find("once").ambiguous


def test_at_most_max_ids_are_kept_dropping_the_oldest_span(log_dir, taxi_config):
    now = time.time()
    log_requests(log_dir, taxi_config, ["a1", "a2"], timestamp=now - WINDOW)
    log_requests(log_dir, taxi_config, ["b1", "b2"], timestamp=now)
    index = RequestIndex(log_dir, WINDOW, 24, max_ids=3)
    assert len(index) == 2 and index.find("b1") and not index.find("a1")


def test_a_record_still_being_written_is_read_once_complete(log_dir, taxi_config):
    log_requests(log_dir, taxi_config, ["whole"])
    span = request_log.list_spans(log_dir)[0]
    source = os.path.join(request_log.span_dir(log_dir, span), os.listdir(request_log.span_dir(log_dir, span))[0])
    frame = open(source, "rb").read()
    other = os.path.join(request_log.span_dir(log_dir, span), "primary-other-1-x-0001.tfrecord")
    with open(other, "wb") as f:
        f.write(frame[:len(frame) // 2])
    index = RequestIndex(log_dir, WINDOW, 24)
    assert len(index) == 1
    with open(other, "ab") as f:
        f.write(frame[len(frame) // 2:])
    assert index.refresh() == 1 and [end for _, end in read_records(other)] == [len(frame)]


# ------------------------------------------------------------------ durable, write-once labels

def test_labels_are_stored_durably_under_the_requests_span(feedback, log_dir):
    outcome = feedback.submit("taxi", [{"request_id": "r0", "label": 2.5},
                                       {"request_id": "r0", "row": 1, "label": 0.0}], single)
    assert outcome.to_dict() == {"accepted": 2, "duplicates": 0}
    span = feedback.index.find("r0").span
    assert list_feedback_spans(log_dir) == [span]
    lines = [json.loads(line) for name in os.listdir(os.path.join(log_dir, "feedback", f"span-{span}"))
             for line in open(os.path.join(log_dir, "feedback", f"span-{span}", name))]
    assert [(x["request_id"], x["row"], x["label"], x["model"]) for x in lines] == \
        [("r0", 0, 2.5, "taxi"), ("r0", 1, 0.0, "taxi")]


def test_a_repeated_label_is_a_noop_and_a_different_one_is_refused_also_after_a_restart(
        feedback, log_dir, taxi_config):
    feedback.submit("taxi", [{"request_id": "r1", "label": 2.5}], single)
    assert feedback.submit("taxi", [{"request_id": "r1", "label": 2.5, "row": 0}], single).duplicates == 1
    restarted = Feedback.open(log_dir, LabelSpec.from_config(taxi_config), WINDOW, 24)
    for instance_ in (feedback, restarted):
        assert instance_.submit("taxi", [{"request_id": "r1", "label": 2.5}], single).duplicates == 1
        status, message = error_of(instance_.submit, "taxi", [{"request_id": "r1", "label": 9.0}], single)
        assert status == 409 and "'r1' row 0 already has the label 2.5; 9.0 is refused" in message
    span = feedback.index.find("r1").span
    assert len(read_span_labels(log_dir, span)) == 1 and not read_span_labels(log_dir, span).conflicts


def test_labels_written_by_another_process_count_as_stored(feedback, log_dir, taxi_config):
    other = Feedback.open(log_dir, LabelSpec.from_config(taxi_config), WINDOW, 24)
    other.submit("taxi", [{"request_id": "r0", "label": 1.0}], single)
    assert feedback.submit("taxi", [{"request_id": "r0", "label": 1.0}], single).duplicates == 1
    assert error_of(feedback.submit, "taxi", [{"request_id": "r0", "label": 3.0}], single)[0] == 409


def test_a_batch_is_all_or_nothing_and_names_the_bad_item(feedback, log_dir):
    items = [{"request_id": "r0", "label": 1.0}, {"request_id": "r1", "label": -3}]
    status, message = error_of(feedback.submit, "taxi", items, lambda i: f"feedback[{i}]")
    assert status == 400 and message.startswith("feedback[1].label: ")
    assert list_feedback_spans(log_dir) == []
    twice = [{"request_id": "r0", "label": 1.0}, {"request_id": "r0", "label": 1.0, "row": 0}]
    assert feedback.submit("taxi", twice, single).to_dict() == {"accepted": 1, "duplicates": 1}
    clash = [{"request_id": "r1", "label": 1.0}, {"request_id": "r1", "label": 0.5}]
    assert error_of(feedback.submit, "taxi", clash, lambda i: f"feedback[{i}]")[0] == 409


@pytest.mark.parametrize("item, status, text", [
    ({"request_id": "nope", "label": 1.0}, 404, "request_id: unknown request id 'nope'"),
    ({"request_id": "r1", "row": 1, "label": 1.0}, 400, "row: request 'r1' has 1 row(s); expected 0..0"),
    ({"request_id": "r1", "row": -1, "label": 1.0}, 400, "row: expected a non-negative integer"),
    ({"request_id": "r1", "row": True, "label": 1.0}, 400, "row: expected a non-negative integer"),
    ({"request_id": "r1"}, 400, "label: required"),
    ({"label": 1.0}, 400, "request_id: required"),
    ({"request_id": "a b", "label": 1.0}, 400, "request_id: expected the X-Request-Id"),
    ({"request_id": 7, "label": 1.0}, 400, "request_id: expected the X-Request-Id"),
    ({"request_id": "r1", "label": 1.0, "weight": 2}, 400, "unexpected field(s) ['weight']"),
    ("r1", 400, "expected an object with 'request_id' and 'label'"),
])
def test_each_bad_item_gets_a_4xx_naming_the_field(feedback, item, status, text):
    code, message = error_of(feedback.submit, "taxi", [item], single)
    assert code == status and text in message


def test_a_request_to_another_model_or_a_reused_id_is_refused(feedback, log_dir, taxi_config):
    log_requests(log_dir, taxi_config, ["liar-1"], model="liar")
    status, message = error_of(feedback.submit, "taxi", [{"request_id": "liar-1", "label": 1.0}], single)
    assert status == 404 and "(it went to model 'liar')" in message
    log_requests(log_dir, taxi_config, ["r1"], timestamp=time.time() + 1)  # the id once more
    restarted = Feedback.open(log_dir, LabelSpec.from_config(taxi_config), WINDOW, 24)
    status, message = error_of(restarted.submit, "taxi", [{"request_id": "r1", "label": 1.0}], single)
    assert status == 409 and "was logged for 2 different requests" in message


# ------------------------------------------------------------------ the CSV import

def run_cli(*args):
    return cli.main(list(args))


def test_csv_import_reports_each_bad_line_stores_the_good_ones_and_can_be_rerun(
        feedback, log_dir, tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label,row\nr0,2.5,\nr0,1.0,1\nnope,1.0,0\nr1,-2,0\nr1,abc,\nr1,3.0,5\n"
                    "r0,2.5,0\n")
    args = ["feedback", str(path), "--config", TAXI_CONFIG, "--set", f"serving.request_log_dir={log_dir}"]
    assert run_cli(*args) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "accepted 2, duplicates 1, errors 4"
    assert [line.split(":")[0] for line in out[1:]] == ["line 4", "line 5", "line 6", "line 7"]
    assert "unknown request id 'nope'" in out[1] and "below the minimum" in out[2]
    assert "'abc' is not a number" in out[3] and "expected 0..0" in out[4]
    path.write_text("request_id,label\nr0,2.5\nr1,0.5\n")
    assert run_cli(*args) == 0
    assert capsys.readouterr().out.splitlines() == ["accepted 1, duplicates 1, errors 0"]
    store = LabelStore(log_dir)
    assert store.label_of(feedback.index.find("r1").span, ("r1", 0)).label == 0.5


def test_csv_import_refuses_a_file_without_the_columns(feedback, log_dir, tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text("id,tips\nr0,1.0\n")
    assert run_cli("feedback", str(path), "--config", TAXI_CONFIG,
                   "--set", f"serving.request_log_dir={log_dir}") == 2
    assert "expected the columns request_id, label and optionally row" in capsys.readouterr().err
    assert list_feedback_spans(log_dir) == []
