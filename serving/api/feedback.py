"""Labels for served predictions: ``POST /v1/models/<m>/feedback``.

Bodies (``serving.openapi`` documents them)::

    {"request_id": "<X-Request-Id of the prediction>", "label": <raw label>, "row": 0}
    {"feedback": [{"request_id": ..., "label": ..., "row": ...}, ...]}

``row`` (default 0) is the row's index in the prediction's ``instances`` /
``inputs`` / ``examples``. ``label`` is the raw label column's value
(``serving.feedback.labels``). A batch holds at most ``serving.max_batch_rows``
items and is all or nothing. The answer is ``{"accepted": n, "duplicates": m}``
(a repeated identical label is a duplicate, 200); errors are TF Serving's
``{"error": ...}`` naming the field (``feedback[2].label: ...``): 400 malformed
body or label, 404 unknown model or request id, 409 a different label for a
labelled row, 413 body over ``serving.max_request_bytes``. The checks
themselves are ``serving.feedback.service``, shared with the CSV import.

An item may instead be a statement verdict from the browser extension
(``serving.feedback.verdicts``: ``{"statement", "model", "model_version",
"lean", "probability", "answer"}``, no request id); it counts as accepted and
in ``gateway_feedback_verdicts_total`` on /metrics.
"""
import re
from typing import Any, List, Optional

from serving.api import request as req
from serving.api.deps import Backend, Limits
from serving.api.request import Endpoint, Request, Response, json_response
from serving.errors import BadRequest, NotFound
from serving.metrics import Metrics

FEEDBACK_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)/feedback$")
DISABLED = ("feedback is not enabled on this gateway: it needs the request log "
            "(start with --config and without --no_request_log)")


class FeedbackAPI:
    """The feedback endpoint over a ``serving.feedback.Feedback`` (None: answers 404 with
    ``unavailable``, the reason)."""

    def __init__(self, backend: Backend, limits: Limits, feedback: Optional[Any] = None,
                 unavailable: str = "", metrics: Optional[Metrics] = None) -> None:
        self._backend = backend
        self._metrics = metrics
        self._limits = limits
        self._feedback = feedback
        self._unavailable = unavailable or DISABLED

    def endpoints(self) -> List[Endpoint]:
        return [Endpoint(FEEDBACK_PATH, self.post)]

    def post(self, request: Request, match: "re.Match[str]") -> Response:
        req.require_method(request, "POST")
        name = req.model_name(match.group("name"), self._backend.model_names())
        request.observed.update(model=name, verb="feedback")
        if self._feedback is None:
            raise NotFound(self._unavailable)
        body = req.parse_json(request.body)
        if "feedback" in body:
            items = body["feedback"]
            extra = sorted(set(body) - {"feedback"})
            if extra:
                raise BadRequest(f"unexpected field(s) {extra} beside 'feedback'; send either one "
                                 "item or {\"feedback\": [items]}")
            if not isinstance(items, list) or not items:
                raise BadRequest("feedback: expected a non-empty list of {\"request_id\", \"label\"[, "
                                 "\"row\"]} objects")
            if len(items) > self._limits.max_batch_rows:
                raise BadRequest(f"feedback: {len(items)} items; at most "
                                 f"{self._limits.max_batch_rows} are accepted per request "
                                 "(serving.max_batch_rows)")
            outcome = self._feedback.submit(name, items, lambda i: f"feedback[{i}]")
        else:
            outcome = self._feedback.submit(name, [body], lambda i: "")
        if self._metrics is not None and outcome.verdicts:
            self._metrics.count_verdicts(name, outcome.verdicts)
        return json_response(200, outcome.to_dict())
