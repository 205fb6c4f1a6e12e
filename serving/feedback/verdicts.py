"""Statement verdicts: a reader's "right" / "wrong" on a lean that was scored offline.

The browser extension (``extension/background.js``) scores statements in the
browser, so there is no logged prediction and no ``X-Request-Id`` to label;
what it can send is the statement, the model and version it ran, the lean it
showed and the reader's answer::

    {"statement": "...", "model": "liar", "model_version": "3",
     "lean": "true", "probability": 0.68, "answer": "right"}

That is a second kind of feedback item, told apart from a label item by its
``statement`` field. It is not a six-way LIAR label: the reader judged a
true/false lean, so the most it gives is a **binary** label on the lean's side
(``reader_side``: the lean when ``right``, the other side when ``wrong``;
``true`` means the positive classes, half-true or better). Records are
appended, one fsync per batch like the labels, to
``<request_log_dir>/feedback/verdicts/verdicts-<host>-<pid>-<token>.jsonl``,
never joined automatically: see docs/serving.md "Statement verdicts" for how
they could become training data.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, List, Mapping, Sequence

from serving.errors import BadRequest, reject_unexpected, shorten
from serving.feedback.store import append_durably, complete_lines, feedback_dir, field, writer_file_name

VERDICTS_DIR = "verdicts"
VERDICT_FIELDS = ("statement", "model", "model_version", "lean", "probability", "answer")
SIDES = ("true", "false")
ANSWERS = ("right", "wrong")
MAX_STATEMENT_CHARS = 2000
MAX_VERSION_CHARS = 128
MAX_VERSION_NUMBER = 2 ** 63 - 1


def is_verdict(raw: Any) -> bool:
    """A statement verdict rather than a label: the item has a ``statement``."""
    return isinstance(raw, Mapping) and "statement" in raw


@dataclasses.dataclass(frozen=True)
class VerdictRecord:
    """One stored verdict; ``reader_side`` is the side the reader says is correct."""
    statement: str
    model: str
    model_version: str
    lean: str
    probability: float
    answer: str
    reader_side: str
    received_ms: int

    def to_line(self) -> bytes:
        return (json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))
                + "\n").encode("utf-8")


def _choice(raw: Mapping[str, Any], where: str, name: str, allowed: Sequence[str]) -> str:
    value = raw[name]
    if value not in allowed or not isinstance(value, str):
        raise BadRequest(f"{field(where, name)}: expected one of {list(allowed)}, got {shorten(value)}")
    return value


def parse_verdict(raw: Mapping[str, Any], model: str, where: str, received_ms: int) -> VerdictRecord:
    """The checked record of one verdict item for ``model`` (the URL's); 400 naming the field."""
    reject_unexpected(raw, VERDICT_FIELDS, where or "body", "field", "a statement verdict has")
    for name in VERDICT_FIELDS:
        if raw.get(name) is None:
            raise BadRequest(f"{field(where, name)}: required (a statement verdict has "
                             f"{list(VERDICT_FIELDS)})")
    statement = raw["statement"]
    if not isinstance(statement, str) or not statement.strip() or len(statement) > MAX_STATEMENT_CHARS:
        raise BadRequest(f"{field(where, 'statement')}: expected a non-blank string of at most "
                         f"{MAX_STATEMENT_CHARS} characters, got {shorten(statement)}")
    if raw["model"] != model:
        raise BadRequest(f"{field(where, 'model')}: {shorten(raw['model'])} is not the model of the "
                         f"URL, {model!r}")
    version = raw["model_version"]
    if not (isinstance(version, str) and 0 < len(version) <= MAX_VERSION_CHARS or
            type(version) is int and 0 <= version <= MAX_VERSION_NUMBER):
        raise BadRequest(f"{field(where, 'model_version')}: expected a string of 1-"
                         f"{MAX_VERSION_CHARS} characters or an integer in [0, {MAX_VERSION_NUMBER}] "
                         f"(the bundled model's version), got {shorten(version)}")
    probability = raw["probability"]
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or \
            not math.isfinite(probability) or not 0.0 <= probability <= 1.0:
        raise BadRequest(f"{field(where, 'probability')}: expected a number in [0, 1] (the lean's "
                         f"probability), got {shorten(probability)}")
    lean = _choice(raw, where, "lean", SIDES)
    answer = _choice(raw, where, "answer", ANSWERS)
    reader_side = lean if answer == "right" else SIDES[1 - SIDES.index(lean)]
    return VerdictRecord(statement, model, str(version), lean, float(probability), answer,
                         reader_side, received_ms)


class VerdictStore:
    """Appends verdicts durably to this writer's own file (one fsync per batch)."""

    def __init__(self, log_dir: str) -> None:
        self.root = os.path.abspath(log_dir)
        self.path = os.path.join(feedback_dir(self.root), VERDICTS_DIR, writer_file_name("verdicts"))

    def append(self, records: Sequence[VerdictRecord]) -> None:
        if records:
            append_durably(self.path, b"".join(r.to_line() for r in records), self.root)


def read_verdicts(log_dir: str) -> List[VerdictRecord]:
    """Every complete verdict line of every writer, file by file (for export or review)."""
    directory = os.path.join(feedback_dir(log_dir), VERDICTS_DIR)
    records: List[VerdictRecord] = []
    if not os.path.isdir(directory):
        return records
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        records.extend(VerdictRecord(**json.loads(line)) for line in complete_lines(data)[0])
    return records

