"""The gateway's request handling: URL routing, limits, validation, rollout
routing, metrics and the request log (no sockets; ``serving.server`` adapts
it to HTTP).

URLs (TF Serving's REST API plus operations endpoints):

* ``GET  /v1/models/<m>[/versions/<v>|/labels/<l>]``             status
* ``GET  /v1/models/<m>[/versions/<v>|/labels/<l>]/metadata``    signatures
* ``POST /v1/models/<m>[/versions/<v>|/labels/<l>]:predict|classify|regress``
* ``GET  /healthz``, ``GET /metrics`` (Prometheus), ``GET /openapi.json``
* ``GET  /v1/admin/models/<m>/rollout`` and ``POST .../rollout:<action>``
  (canary, shadow, promote, rollback, clear) with ``Authorization: Bearer``.

A request without a version or label is routed by the ``Router``: to the
stable label (or the latest version), or, during a rollout, split between
stable and canary by request id, with a shadow version answering too (logged,
never returned).
"""
import concurrent.futures
import dataclasses
import hmac
import json
import logging
import re
import threading
import time
import urllib.parse
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Tuple

from serving.errors import (BadRequest, MethodNotAllowed, NotFound, PayloadTooLarge,
                            ServingError, Unauthorized, Unavailable)
from serving.metrics import Metrics
from serving.routing import LabelRouter, Route, resolve_label
from serving.validation import SchemaValidator

logger = logging.getLogger(__name__)

JSON = "application/json"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_ID_HEADER = "X-Request-Id"
VERSION_HEADER = "X-Model-Version"
ROLLOUT_ACTIONS = ("canary", "shadow", "promote", "rollback", "clear")
MAX_PENDING_SHADOWS = 256

_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<metadata>/metadata)?"
    r"(?::(?P<verb>[^/:]*))?$")
_ADMIN_PATH = re.compile(r"^/v1/admin/models/(?P<name>[^/:]+)/rollout(?::(?P<action>[^/:]*))?$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[0-9]{1,18}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclasses.dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON
    headers: Dict[str, str] = dataclasses.field(default_factory=dict)


class Router(Protocol):
    def route(self, model: str, request_id: str, version: Optional[int],
              label: Optional[str]) -> Route: ...


class Backend(Protocol):
    demand: Any

    def model_names(self) -> List[str]: ...
    def versions(self, name: str) -> List[int]: ...
    def available_versions(self, name: str) -> List[int]: ...
    def labels(self, name: str) -> Dict[str, int]: ...
    def reload(self) -> None: ...
    def status(self, name: str, version: Optional[int]) -> Dict[str, Any]: ...
    def metadata(self, name: str, version: int) -> Dict[str, Any]: ...
    def infer(self, name: str, version: int, verb: str, body: Mapping[str, Any],
              kinds: Mapping[str, str]) -> Dict[str, Any]: ...


class RequestLogger(Protocol):
    def log(self, **record: Any) -> None: ...


@dataclasses.dataclass(frozen=True)
class Limits:
    max_request_bytes: int = 1_048_576
    max_batch_rows: int = 1024


def json_response(status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response(status, json.dumps(payload).encode("utf-8"), JSON, dict(headers or {}))


def parse_json(body: bytes) -> Dict[str, Any]:
    """The body as a JSON object, or TF Serving-style 400s."""
    if not body:
        raise BadRequest("JSON Parse error: the request body is empty; expected a JSON object")
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise BadRequest(f"JSON Parse error: {err}") from None
    if not isinstance(parsed, dict):
        raise BadRequest(f"JSON Parse error: the request body must be a JSON object, "
                         f"got {type(parsed).__name__}")
    return parsed


def _rows_of(verb: str, body: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The request's raw feature rows (for the request log), best effort."""
    if verb == "predict":
        instances = body.get("instances")
        if isinstance(instances, list):
            return [row if isinstance(row, dict) else {"input": row} for row in instances]
        inputs = body.get("inputs")
        if isinstance(inputs, dict):
            columns = {k: v if isinstance(v, list) else [v] for k, v in inputs.items()}
            n = max((len(v) for v in columns.values()), default=0)
            return [{k: v[i] for k, v in columns.items() if i < len(v)} for i in range(n)]
        return []
    context = body.get("context") if isinstance(body.get("context"), dict) else {}
    return [{**context, **e} for e in body.get("examples", []) if isinstance(e, dict)]


def _outputs_of(answer: Mapping[str, Any]) -> List[Any]:
    for key in ("predictions", "results"):
        if isinstance(answer.get(key), list):
            return answer[key]
    outputs = answer.get("outputs")
    return outputs if isinstance(outputs, list) else [outputs]


def render_log_stats(stats: Mapping[str, int]) -> str:
    """The request log's counters as Prometheus series (dropped rows are an alert)."""
    lines = ["# HELP gateway_request_log_rows_total Rows given to the request log, by outcome.",
             "# TYPE gateway_request_log_rows_total counter"]
    for key in ("logged_rows", "written_rows", "dropped_rows", "failed_rows"):
        if key in stats:
            lines.append(f'gateway_request_log_rows_total{{outcome="{key[:-5]}"}} {stats[key]}')
    if "queued_rows" in stats:
        lines += ["# HELP gateway_request_log_queued_rows Rows waiting to be written.",
                  "# TYPE gateway_request_log_queued_rows gauge",
                  f"gateway_request_log_queued_rows {stats['queued_rows']}"]
    return "\n".join(lines) + "\n"


class Gateway:
    """Answers one HTTP request at a time (thread-safe)."""

    def __init__(self, backend: Backend, validator: Optional[SchemaValidator] = None,
                 limits: Limits = Limits(), metrics: Optional[Metrics] = None,
                 admin_token: Optional[str] = None, admin_token_env: str = "SERVING_ADMIN_TOKEN",
                 router: Optional[Router] = None, rollouts: Optional[Callable[[str], Any]] = None,
                 request_log: Optional[RequestLogger] = None,
                 openapi: Optional[Callable[[], Dict[str, Any]]] = None) -> None:
        self.backend = backend
        self.validator = validator
        self.limits = limits
        self.metrics = metrics or Metrics()
        self._admin_token = admin_token or None
        self._admin_token_env = admin_token_env
        self.router = router or LabelRouter(backend)
        self._rollouts = rollouts
        self.request_log = request_log
        self._openapi = openapi
        self._shadow_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="shadow")
        # Shadow work never blocks or piles up behind primary traffic: beyond
        # this many pending shadow calls, a shadow answer is skipped (and logged).
        self._shadow_slots = threading.BoundedSemaphore(MAX_PENDING_SHADOWS)
        self._kinds_cache = validator.kinds if validator else {}

    def close(self) -> None:
        self._shadow_pool.shutdown(wait=True)

    # ------------------------------------------------------------ entry point

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Routes one request; never raises."""
        started = time.perf_counter()
        path = raw_path.split("?", 1)[0]
        request_id = headers.get(REQUEST_ID_HEADER) or ""
        if not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex
        extra = {REQUEST_ID_HEADER: request_id}
        observed: Dict[str, str] = {}
        try:
            response = self._dispatch(method, path, headers, body, request_id, observed)
        except ServingError as err:
            response = json_response(err.status, {"error": err.message})
        except Exception as err:  # pylint: disable=broad-except
            logger.exception("Internal error on %s %s", method, path)
            response = json_response(500, {"error": f"Internal error: {err}"})
        response.headers.update(extra)
        if "verb" in observed:
            model, version = observed.get("model", ""), observed.get("version", "")
            if response.status >= 400 and version and not self._is_loaded(model, version):
                version = ""  # keep the series bounded: no label per made-up version
            self.metrics.observe(model, version, observed["verb"], response.status,
                                 time.perf_counter() - started)
        return response

    def _is_loaded(self, model: str, version: str) -> bool:
        try:
            return int(version) in self.backend.versions(model)
        except Exception:  # pylint: disable=broad-except
            return False

    def check_content_length(self, length: int) -> None:
        """413 before the body is read (the HTTP layer calls this)."""
        if length > self.limits.max_request_bytes:
            raise PayloadTooLarge(f"request body of {length} bytes is over the limit of "
                                  f"{self.limits.max_request_bytes} bytes (serving.max_request_bytes)")

    # ------------------------------------------------------------ routing

    def _dispatch(self, method: str, path: str, headers: Mapping[str, str], body: bytes,
                  request_id: str, observed: Dict[str, str]) -> Response:
        if path == "/healthz":
            self._only(method, "GET")
            return self._health()
        if path == "/metrics":
            self._only(method, "GET")
            text = self.metrics.render()
            if self.request_log is not None and hasattr(self.request_log, "stats"):
                text += render_log_stats(self.request_log.stats())
            return Response(200, text.encode("utf-8"), PROMETHEUS)
        if path == "/openapi.json" and self._openapi is not None:
            self._only(method, "GET")
            return json_response(200, self._openapi())
        match = _MODEL_PATH.match(path)
        if match:
            return self._model_request(method, match, body, request_id, observed)
        match = _ADMIN_PATH.match(path)
        if match:
            return self._admin(method, match, headers, body)
        raise NotFound(f"Malformed request: {method} {path}")

    @staticmethod
    def _only(method: str, allowed: str) -> None:
        if method != allowed:
            raise MethodNotAllowed(f"{method} is not allowed here; use {allowed}")

    def _health(self) -> Response:
        models = {name: {"versions": self.backend.versions(name), "labels": self.backend.labels(name)}
                  for name in self.backend.model_names()}
        ready = any(m["versions"] for m in models.values())
        return json_response(200 if ready else 503, {"status": "ok" if ready else "no model loaded",
                                             "models": models})

    def _model_name(self, raw: str) -> str:
        name = urllib.parse.unquote(raw)
        if not _MODEL_NAME.match(name):
            raise BadRequest(f"Malformed request: model name {name!r} must be letters, digits, "
                             "'_' or '-'")
        if name not in self.backend.model_names():
            raise NotFound(f"Servable not found for request: Latest({name})")
        return name

    def _model_request(self, method: str, match: "re.Match", body: bytes, request_id: str,
                       observed: Dict[str, str]) -> Response:
        verb = match.group("verb")
        is_metadata = bool(match.group("metadata"))
        observed["verb"] = verb if verb is not None else ("metadata" if is_metadata else "status")
        if verb is not None and verb not in ("predict", "classify", "regress"):
            observed["verb"] = "unknown"
            raise NotFound(f"Malformed request: unknown verb ':{verb}'; expected predict, "
                           "classify or regress")
        if verb is not None and is_metadata:
            raise NotFound("Malformed request: metadata takes no verb")
        name = self._model_name(match.group("name"))
        observed["model"] = name
        version = self._version(match.group("version"))
        label = self._label(match.group("label"))
        if verb is None:
            self._only(method, "GET")
            if label is not None:
                version = resolve_label(self.backend, name, label)
            if is_metadata:
                version = version if version is not None else self.router.route(
                    name, request_id, None, None).primary
                observed["version"] = str(version)
                return json_response(200, self.backend.metadata(name, version))
            if version is not None:
                observed["version"] = str(version)
            return json_response(200, self.backend.status(name, version))
        self._only(method, "POST")
        parsed = parse_json(body)
        self._check_body(verb, parsed)
        route = self.router.route(name, request_id, version, label)
        observed["version"] = str(route.primary)
        with self.backend.demand:
            started = time.perf_counter()
            answer = self.backend.infer(name, route.primary, verb, parsed, self._kinds())
            latency_ms = (time.perf_counter() - started) * 1000.0
        self._log(request_id, name, route.primary, "primary", verb, parsed, answer, latency_ms)
        if route.shadow is not None and route.shadow != route.primary:
            if self._shadow_slots.acquire(blocking=False):
                self._shadow_pool.submit(self._run_shadow, request_id, name, route.shadow, verb, parsed)
            else:
                logger.warning("Shadow version %d skipped for request %s: %d shadow calls pending",
                               route.shadow, request_id, MAX_PENDING_SHADOWS)
        return json_response(200, answer, {VERSION_HEADER: str(route.primary)})

    def _kinds(self) -> Dict[str, str]:
        return self._kinds_cache

    @staticmethod
    def _version(raw: Optional[str]) -> Optional[int]:
        if raw is None:
            return None
        text = urllib.parse.unquote(raw)
        if not _VERSION.match(text) or int(text) < 1:
            raise BadRequest(f"Malformed request: version {text!r} in the URL must be a positive "
                             "integer")
        return int(text)

    @staticmethod
    def _label(raw: Optional[str]) -> Optional[str]:
        if raw is None:
            return None
        text = urllib.parse.unquote(raw)
        if not _LABEL.match(text):
            raise BadRequest(f"Malformed request: label {text!r} in the URL must start with a "
                             "letter and hold letters, digits, '_' or '-'")
        return text

    def _check_body(self, verb: str, body: Mapping[str, Any]) -> None:
        """Row limit and schema validation, before any model work."""
        limit = self.limits.max_batch_rows
        if verb == "predict":
            instances, inputs = body.get("instances"), body.get("inputs")
            if isinstance(instances, list):
                rows, field = len(instances), "instances"
            elif isinstance(inputs, dict):
                rows = max((len(v) for v in inputs.values() if isinstance(v, list)), default=1)
                field = "inputs"
            else:
                rows, field = 0, ""
        else:
            examples = body.get("examples")
            if not isinstance(examples, list) or not examples:
                raise BadRequest("'examples' must be a non-empty list of objects")
            rows, field = len(examples), "examples"
        if rows > limit:
            raise BadRequest(f"'{field}' has {rows} rows; at most {limit} are accepted per request "
                             "(serving.max_batch_rows)")
        if self.validator is None:
            return
        if verb == "predict":
            if isinstance(body.get("instances"), list):
                self.validator.check_instances(body["instances"])
            elif isinstance(body.get("inputs"), dict):
                self.validator.check_inputs(body["inputs"])
        else:
            context = body.get("context") if isinstance(body.get("context"), dict) else None
            self.validator.check_examples(body["examples"], context)

    # ------------------------------------------------------------ shadow and log

    def _run_shadow(self, request_id: str, name: str, version: int, verb: str,
                    body: Mapping[str, Any]) -> None:
        try:
            self._shadow_answer(request_id, name, version, verb, body)
        finally:
            self._shadow_slots.release()

    def _shadow_answer(self, request_id: str, name: str, version: int, verb: str,
                       body: Mapping[str, Any]) -> None:
        try:
            started = time.perf_counter()
            answer = self.backend.infer(name, version, verb, body, self._kinds())
            latency_ms = (time.perf_counter() - started) * 1000.0
            self._log(request_id, name, version, "shadow", verb, body, answer, latency_ms)
        except ServingError as err:
            logger.warning("Shadow version %d failed request %s: %s", version, request_id, err.message)
        except Exception:  # pylint: disable=broad-except
            logger.exception("Shadow version %d failed request %s", version, request_id)

    def _log(self, request_id: str, name: str, version: int, role: str, verb: str,
             body: Mapping[str, Any], answer: Mapping[str, Any], latency_ms: float) -> None:
        if self.request_log is None:
            return
        try:
            self.request_log.log(request_id=request_id, model=name, version=version, role=role,
                                 features=_rows_of(verb, body), outputs=_outputs_of(answer),
                                 latency_ms=latency_ms, timestamp=time.time())
        except Exception:  # pylint: disable=broad-except
            # The answer is already computed: a logging failure must not fail it.
            logger.exception("Request log write failed for request %s", request_id)

    # ------------------------------------------------------------ admin

    def _authorize(self, headers: Mapping[str, str]) -> None:
        if self._admin_token is None:
            raise Unauthorized(f"admin endpoints are disabled: the gateway was started without "
                               f"${self._admin_token_env}")
        header = headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing 'Authorization: Bearer <token>' header")
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._admin_token.encode("utf-8")):
            raise Unauthorized("wrong admin token")

    def _admin(self, method: str, match: "re.Match", headers: Mapping[str, str],
               body: bytes) -> Response:
        self._authorize(headers)
        name = self._model_name(match.group("name"))
        action = match.group("action")
        if self._rollouts is None:
            raise ServingError("rollouts are not available in this gateway", status=501)
        controller = self._rollouts(name)
        if action is None:
            self._only(method, "GET")
            return json_response(200, self._state(controller))
        self._only(method, "POST")
        if action not in ROLLOUT_ACTIONS:
            raise NotFound(f"unknown rollout action '{action}'; expected one of {list(ROLLOUT_ACTIONS)}")
        params = parse_json(body) if body.strip() else {}
        return json_response(200, self._rollout_action(name, controller, action, params))

    def _rollout_action(self, name: str, controller: Any, action: str,
                        params: Mapping[str, Any]) -> Dict[str, Any]:
        """Applies one rollout change, then reloads the backend so the versions
        it now routes to are loaded before the answer (no request can be
        routed to a version that is not loaded yet)."""
        from serving import rollout

        unknown = sorted(set(params) - {"version", "percent"})
        if unknown:
            raise BadRequest(f"unexpected field(s) {unknown}; expected 'version' and/or 'percent'")
        version = params.get("version")
        try:
            if action == "canary":
                if "percent" not in params:
                    raise BadRequest("canary: missing 'percent' (a number in [0, 100])")
                state = controller.canary(version, params["percent"])
            elif action == "shadow":
                state = controller.shadow(version)
            elif action == "promote":
                state = controller.promote(version)
            elif action == "rollback":
                state = controller.rollback()
            else:
                state = controller.clear()
        except rollout.NoVersionsError as err:
            raise Unavailable(str(err)) from None
        except rollout.RolloutError as err:
            raise BadRequest(str(err)) from None
        self.backend.reload()
        logger.info("Rollout of %s: %s %s -> %s", name, action, dict(params), state.to_dict())
        return state.to_dict()

    def _state(self, controller: Any) -> Dict[str, Any]:
        from serving import rollout

        try:
            return controller.state().to_dict()
        except rollout.NoVersionsError as err:
            raise Unavailable(str(err)) from None
        except rollout.RolloutError as err:
            raise BadRequest(str(err)) from None
