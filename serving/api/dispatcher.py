"""The gateway without sockets: URL -> handler, request ids, metrics, errors.

``serving.server`` adapts ``Gateway.handle`` to HTTP. The handlers are split
by job (``ops``: /healthz, /metrics, /openapi.json; ``model``: TF Serving's
model API; ``admin``: rollouts; ``feedback``: labels) and each declares its
own URL patterns; this module only builds them from the parts it is given,
tries their patterns in order, and turns whatever they raise into an answer through
``serving.api.errors`` (the one exception handler).
"""
import time
from typing import Any, Callable, Dict, Mapping, Optional

from serving.api.admin import AdminAPI
from serving.api.deps import Backend, Limits, RequestLogger, Router
from serving.api.errors import error_response
from serving.api.feedback import FeedbackAPI
from serving.api.model import MODEL_PATH, VERBS, ModelAPI
from serving.api.ops import OpsAPI
from serving.api.request import REQUEST_ID_HEADER, REQUEST_ID_PATTERN, Request, Response
from serving.api.request_ids import RequestIds
from serving.errors import NotFound, PayloadTooLarge
from serving.metrics import Metrics
from serving.routing import LabelRouter
from serving.validation import SchemaValidator


class Gateway:
    """Answers one HTTP request at a time (thread-safe).

    The parts are injected (``serving.server.build_gateway`` makes the real
    ones): without a router, TF Serving's label routing; without
    ``rollouts`` or an admin token, the admin endpoints answer 501 / 401;
    without ``openapi``, there is no /openapi.json; without ``feedback``
    (``serving.feedback.Feedback``), the feedback endpoint answers 404 saying
    why (``feedback_unavailable``).
    """

    def __init__(self, backend: Backend, validator: Optional[SchemaValidator] = None,
                 limits: Limits = Limits(), metrics: Optional[Metrics] = None,
                 admin_token: Optional[str] = None, admin_token_env: str = "SERVING_ADMIN_TOKEN",
                 router: Optional[Router] = None, rollouts: Optional[Callable[[str], Any]] = None,
                 request_log: Optional[RequestLogger] = None,
                 openapi: Optional[Callable[[], Dict[str, Any]]] = None,
                 feedback: Optional[Any] = None, feedback_unavailable: str = "") -> None:
        self.backend = backend
        self.limits = limits
        self.metrics = metrics or Metrics()
        self.request_log = request_log
        self._request_ids = RequestIds()
        self.model = ModelAPI(backend, router or LabelRouter(backend), limits, validator, request_log)
        self.admin = AdminAPI(backend, rollouts, admin_token, admin_token_env)
        self.ops = OpsAPI(backend, self.metrics, request_log, openapi)
        self.feedback = FeedbackAPI(backend, limits, feedback, feedback_unavailable, self.metrics)
        self._endpoints = [*self.ops.endpoints(), *self.model.endpoints(), *self.admin.endpoints(),
                           *self.feedback.endpoints()]

    def close(self) -> None:
        self.model.close()

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Routes one request; never raises."""
        started = time.perf_counter()
        path = raw_path.split("?", 1)[0]
        request_id = headers.get(REQUEST_ID_HEADER) or ""
        if not REQUEST_ID_PATTERN.match(request_id):
            request_id = self._request_ids.next()
        request = Request(method, path, headers, body, request_id)
        try:
            response = self._dispatch(request)
        except Exception as err:  # pylint: disable=broad-except
            response = error_response(err, method, path)
        response.headers[REQUEST_ID_HEADER] = request_id
        self._observe(request.observed, response.status, time.perf_counter() - started)
        return response

    @staticmethod
    def is_inference(method: str, raw_path: str) -> bool:
        """A predict/classify/regress call: bounded work (``max_batch_rows``) that,
        with the in-process backend, waits on no file or network (the HTTP layer
        may run it without a thread hand-off)."""
        match = MODEL_PATH.match(raw_path.split("?", 1)[0])
        return method == "POST" and match is not None and match.group("verb") in VERBS

    def check_content_length(self, length: int) -> None:
        """413 before the body is read (the HTTP layer calls this)."""
        if length > self.limits.max_request_bytes:
            raise PayloadTooLarge(f"request body of {length} bytes is over the limit of "
                                  f"{self.limits.max_request_bytes} bytes (serving.max_request_bytes)")

    def _dispatch(self, request: Request) -> Response:
        for endpoint in self._endpoints:
            match = endpoint.pattern.match(request.path)
            if match:
                return endpoint.handler(request, match)
        raise NotFound(f"Malformed request: {request.method} {request.path}")

    def _observe(self, observed: Mapping[str, str], status: int, seconds: float) -> None:
        """Request metrics for model API calls (the handler said which model, version, verb)."""
        if "verb" not in observed:
            return
        model, version = observed.get("model", ""), observed.get("version", "")
        if status >= 400 and version and not self._is_loaded(model, version):
            version = ""  # keep the series bounded: no label per made-up version
        self.metrics.observe(model, version, observed["verb"], status, seconds)

    def _is_loaded(self, model: str, version: str) -> bool:
        try:
            return int(version) in self.backend.versions(model)
        except Exception:  # pylint: disable=broad-except
            return False
