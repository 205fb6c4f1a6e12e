"""Checking feedback and storing new labels: the one path behind the endpoint and the CSV import.

A feedback item is ``{"request_id": "<X-Request-Id of the prediction>",
"label": <raw label>, "row": <index of the row in that request, default 0>}``.
Each item is checked in this order, every failure naming the field:

* shape: an object with ``request_id`` (a string) and ``label``, an optional
  non-negative integer ``row``, nothing else -> 400;
* ``request_id``: logged by the gateway for this model within the last
  ``serving.feedback_window_spans`` spans -> else 404; logged for two
  different requests (a reused X-Request-Id) -> 409;
* ``row``: inside the request's rows -> else 400;
* ``label``: the raw label column's type and domain (``labels.LabelSpec``) -> else 400;
* repeats: the same label again is a no-op counted as a duplicate (200); a
  different label for an already labelled row is refused with 409 -- labels
  are write-once, because a joined span version may already have trained a
  model on the first one.

``submit`` is all or nothing (the endpoint: nothing is stored unless every
item passes); ``submit_each`` keeps the good items and returns the errors (the
CSV import reports them by line).

An item with a ``statement`` is a statement verdict instead (a reader's
right/wrong on a lean scored offline by the browser extension, no request id):
``serving.feedback.verdicts`` checks it and stores it in its own stream; each
one is new (counted as accepted, never a duplicate: two readers may judge the
same statement).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Sequence, Tuple

from serving.api.request import REQUEST_ID_PATTERN
from serving.errors import BadRequest, Conflict, NotFound, ServingError, reject_unexpected
from serving.feedback.index import RequestIndex
from serving.feedback.labels import LabelSpec
from serving.feedback.store import Key, LabelRecord, LabelStore, field
from serving.feedback.verdicts import VerdictRecord, VerdictStore, is_verdict, parse_verdict

ITEM_FIELDS = ("request_id", "label", "row")


@dataclasses.dataclass
class Outcome:
    """What a submission did: labels stored, and repeats of stored labels (no-ops)."""
    accepted: int = 0
    duplicates: int = 0
    verdicts: Dict[str, int] = dataclasses.field(default_factory=dict)  # stored, by answer

    def to_dict(self) -> Dict[str, int]:
        """The answer's body: verdicts count as accepted (the wire format has no other key)."""
        return {"accepted": self.accepted, "duplicates": self.duplicates}


def parse_item(raw: Any, where: str) -> Tuple[str, int, Any]:
    """(request id, row, raw label) of one item; 400 naming the field otherwise."""
    if not isinstance(raw, Mapping):
        raise BadRequest(f"{where or 'body'}: expected an object with 'request_id' and 'label', "
                         f"got {type(raw).__name__}")
    reject_unexpected(raw, ITEM_FIELDS, where or "body", "field", "expected")
    for name in ("request_id", "label"):
        if raw.get(name) is None:
            raise BadRequest(f"{field(where, name)}: required")
    request_id = raw["request_id"]
    if not isinstance(request_id, str) or not REQUEST_ID_PATTERN.match(request_id):
        raise BadRequest(f"{field(where, 'request_id')}: expected the X-Request-Id of a prediction "
                         f"(1-128 letters, digits, '.', '_' or '-'), got {request_id!r}")
    row = raw.get("row", 0)
    if isinstance(row, bool) or not isinstance(row, int) or row < 0:
        raise BadRequest(f"{field(where, 'row')}: expected a non-negative integer (the row's "
                         f"index in the request), got {row!r}")
    return request_id, row, raw["label"]


class Feedback:
    """Validates feedback items against the logged requests and stores new labels."""

    def __init__(self, spec: LabelSpec, index: RequestIndex, store: LabelStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self.index = index
        self.store = store
        self.verdicts = VerdictStore(store.directory)
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def open(cls, log_dir: str, spec: LabelSpec, window_seconds: int, window_spans: int,
             max_request_ids: int = 1_000_000, clock: Callable[[], float] = time.time) -> "Feedback":
        """Feedback over a request log directory (the index is rebuilt from its recent spans)."""
        index = RequestIndex(log_dir, window_seconds, window_spans, max_request_ids, clock)
        return cls(spec, index, LabelStore(log_dir), clock)

    def submit(self, model: str, items: Sequence[Any], where: Callable[[int], str]) -> Outcome:
        """Checks every item (``where(i)`` names item i in errors), then stores the new
        labels and statement verdicts (``verdicts``); the first bad item raises and
        nothing is stored."""
        with self._lock:
            self.store.forget_before(self.index.oldest_span())
            pending: Dict[Key, Tuple[int, LabelRecord]] = {}
            verdicts: List[VerdictRecord] = []
            outcome = Outcome()
            for number, raw in enumerate(items):
                if is_verdict(raw):
                    verdict = parse_verdict(raw, model, where(number), int(round(self._clock() * 1000)))
                    verdicts.append(verdict)
                    outcome.accepted += 1
                    outcome.verdicts[verdict.answer] = outcome.verdicts.get(verdict.answer, 0) + 1
                else:
                    self._count(outcome, self._check(model, raw, where(number), pending))
            self.store.append(list(pending.values()))
            self.verdicts.append(verdicts)
            return outcome

    def submit_each(self, model: str, items: Iterable[Tuple[Any, Any]]
                    ) -> Tuple[Outcome, List[Tuple[Any, ServingError]]]:
        """Like ``submit`` for (tag, item) pairs (a tag such as a line number), but a bad
        item is returned as (tag, error) and the good ones are stored."""
        with self._lock:
            self.store.forget_before(self.index.oldest_span())
            pending: Dict[Key, Tuple[int, LabelRecord]] = {}
            outcome, errors = Outcome(), []
            for tag, raw in items:
                try:
                    self._count(outcome, self._check(model, raw, "", pending))
                except ServingError as error:
                    errors.append((tag, error))
            self.store.append(list(pending.values()))
            return outcome, errors

    @staticmethod
    def _count(outcome: Outcome, new: bool) -> None:
        if new:
            outcome.accepted += 1
        else:
            outcome.duplicates += 1

    def _check(self, model: str, raw: Any, where: str,
               pending: Dict[Key, Tuple[int, LabelRecord]]) -> bool:
        """True for a new label (added to ``pending``), False for a repeat; raises otherwise."""
        request_id, row, raw_label = parse_item(raw, where)
        logged = self.index.find(request_id)
        if logged is None or logged.model != model:
            served = f" (it went to model {logged.model!r})" if logged is not None else ""
            raise NotFound(f"{field(where, 'request_id')}: unknown request id {request_id!r}: no "
                           f"request to model {model!r} with this id was logged in the last "
                           f"{self.index.window_spans} span(s) (serving.feedback_window_spans)"
                           f"{served}")
        if logged.ambiguous:
            raise Conflict(f"{field(where, 'request_id')}: request id {request_id!r} was logged for "
                           f"{len(logged.timestamps_ms)} different requests; feedback needs an "
                           "X-Request-Id used once")
        if row >= logged.rows:
            raise BadRequest(f"{field(where, 'row')}: request {request_id!r} has {logged.rows} "
                             f"row(s); expected 0..{logged.rows - 1}, got {row}")
        label = self.spec.parse(raw_label, field(where, "label"))
        key = (request_id, row)
        known = pending[key][1] if key in pending else self.store.label_of(logged.span, key)
        if known is not None:
            if known.label == label:
                return False
            raise Conflict(f"{field(where, 'label')}: request {request_id!r} row {row} already has "
                           f"the label {known.label!r}; {label!r} is refused (labels are write-once)")
        pending[key] = (logged.span, LabelRecord(request_id, row, label, model,
                                                 int(round(self._clock() * 1000))))
        return True
