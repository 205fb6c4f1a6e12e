"""serving.feedback.verdicts: statement verdicts (a reader's right/wrong on a lean the browser
extension scored offline) are checked strictly, stored in their own fsynced stream beside the
labels, mixed with labels all or nothing, and counted on /metrics (over HTTP, with the
extension's own code: test_feedback_verdicts_gateway.py)."""
import json
import os

import pytest

from serving.feedback.labels import LabelSpec
from serving.feedback.service import Feedback
from serving.feedback.store import list_feedback_spans
from serving.feedback.verdicts import MAX_STATEMENT_CHARS, VerdictStore, parse_verdict, read_verdicts
from serving.metrics import Metrics
from testing.feedback import log_requests
from tests.serving.test_feedback import WINDOW, error_of

ITEM = {"statement": "Crime rose 20 percent in Texas.", "model": "taxi", "model_version": "7",
        "lean": "false", "probability": 0.71, "answer": "right"}


def log_dir_in(tmp_path):
    return str(tmp_path / "request_log")


@pytest.fixture
def feedback(tmp_path, taxi_config):
    log_dir = log_dir_in(tmp_path)
    log_requests(log_dir, taxi_config, ["r0"])
    return Feedback.open(log_dir, LabelSpec.from_config(taxi_config), WINDOW, 24)


def test_a_verdict_gives_a_binary_label_on_the_leans_side():
    right = parse_verdict(ITEM, "taxi", "", 5)
    assert (right.lean, right.answer, right.reader_side, right.model_version) == ("false", "right",
                                                                                 "false", "7")
    wrong = parse_verdict(dict(ITEM, lean="true", answer="wrong", model_version=12), "taxi", "", 5)
    assert (wrong.reader_side, wrong.model_version) == ("false", "12")


@pytest.mark.parametrize("change, named", [
    ({"note": 1}, "feedback[2]: unexpected field(s) ['note']"),
    ({"answer": None}, "feedback[2].answer: required"),
    ({"statement": "   "}, "feedback[2].statement: expected a non-blank string"),
    ({"statement": "x" * (MAX_STATEMENT_CHARS + 1)},
     f"feedback[2].statement: expected a non-blank string of at most {MAX_STATEMENT_CHARS}"),
    ({"statement": 3}, "feedback[2].statement:"),
    ({"model": "liar"}, "feedback[2].model: 'liar' is not the model of the URL, 'taxi'"),
    ({"model_version": True}, "feedback[2].model_version: expected a string"),
    ({"model_version": ""}, "feedback[2].model_version:"),
    ({"model_version": -1}, "feedback[2].model_version:"),
    ({"model_version": 1.5}, "feedback[2].model_version:"),
    ({"lean": "half-true"}, "feedback[2].lean: expected one of ['true', 'false'], got 'half-true'"),
    ({"lean": {"side": "true"}}, "feedback[2].lean: expected one of"),
    ({"answer": "maybe"}, "feedback[2].answer: expected one of ['right', 'wrong']"),
    ({"probability": 1.5}, "feedback[2].probability: expected a number in [0, 1]"),
    ({"probability": -0.1}, "feedback[2].probability:"),
    ({"probability": float("nan")}, "feedback[2].probability:"),
    ({"probability": True}, "feedback[2].probability:"),
    ({"probability": "0.5"}, "feedback[2].probability:"),
])
def test_a_bad_verdict_is_400_naming_the_field(change, named):
    status, message = error_of(parse_verdict, dict(ITEM, **change), "taxi", "feedback[2]", 5)
    assert status == 400 and message.startswith(named.split(":")[0]) and named in message, message


def test_verdicts_are_appended_to_their_own_stream_one_file_per_writer(tmp_path):
    log_dir = log_dir_in(tmp_path)
    first, second = VerdictStore(log_dir), VerdictStore(log_dir)
    first.append([parse_verdict(ITEM, "taxi", "", 1)])
    second.append([parse_verdict(dict(ITEM, answer="wrong"), "taxi", "", 2)])
    first.append([])
    first.append([parse_verdict(dict(ITEM, statement="Taxes doubled."), "taxi", "", 3)])
    assert first.path != second.path and os.path.dirname(first.path) == os.path.join(
        log_dir, "feedback", "verdicts")
    assert sorted((r.received_ms, r.answer) for r in read_verdicts(log_dir)) == [
        (1, "right"), (2, "wrong"), (3, "right")]
    with open(first.path, "ab") as f:
        f.write(b'{"statement": "torn')  # a torn last line is not read
    assert len(read_verdicts(log_dir)) == 3
    assert list_feedback_spans(log_dir) == []  # the label join does not see them


def test_labels_and_verdicts_in_one_batch_are_all_or_nothing(feedback, tmp_path):
    log_dir = log_dir_in(tmp_path)
    bad = [{"request_id": "r0", "label": 1.0}, dict(ITEM, probability=2)]
    status, message = error_of(feedback.submit, "taxi", bad, lambda i: f"feedback[{i}]")
    assert status == 400 and message.startswith("feedback[1].probability:")
    assert read_verdicts(log_dir) == []  # the label too: accepted below
    good = [{"request_id": "r0", "label": 1.0}, ITEM, dict(ITEM, answer="wrong"), ITEM]
    outcome = feedback.submit("taxi", good, lambda i: f"feedback[{i}]")
    assert outcome.to_dict() == {"accepted": 4, "duplicates": 0}  # the wire format of labels
    assert outcome.verdicts == {"right": 2, "wrong": 1}
    records = read_verdicts(log_dir)
    assert [r.answer for r in records] == ["right", "wrong", "right"]
    with open(feedback.verdicts.path, "rb") as f:
        assert json.loads(f.readline()) == dict(ITEM, reader_side="false",
                                                received_ms=records[0].received_ms)


def test_metrics_count_verdicts_by_model_and_answer():
    metrics = Metrics()
    metrics.count_verdicts("liar", {"right": 2})
    metrics.count_verdicts("liar", {"right": 1, "wrong": 1})
    text = metrics.render()
    assert "# TYPE gateway_feedback_verdicts_total counter" in text
    assert 'gateway_feedback_verdicts_total{model="liar",answer="right"} 3' in text
    assert 'gateway_feedback_verdicts_total{model="liar",answer="wrong"} 1' in text
