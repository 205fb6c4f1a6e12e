"""TF Serving's model API: status, metadata and predict/classify/regress.

* ``GET  /v1/models/<m>[/versions/<v>|/labels/<l>]``             status
* ``GET  /v1/models/<m>[/versions/<v>|/labels/<l>]/metadata``    signatures
* ``POST /v1/models/<m>[/versions/<v>|/labels/<l>]:predict|classify|regress``

A request without a version or label is routed by the ``Router``: to the
stable label (or the latest version), or, during a rollout, split between
stable and canary by request id, with a shadow version answering too (logged,
never returned). Bodies are checked against the row limit and the schema
before any model work; every answer (primary and shadow) goes to the request
log when there is one.
"""
import base64
import concurrent.futures
import logging
import re
import threading
import time
from typing import Any, Dict, List, Mapping, Optional

from common.serving_contract import SERVING_SIGNATURE, TF_EXAMPLE_SIGNATURE
from serving import codec
from serving.api import request as req
from serving.api.deps import Backend, Limits, RequestLogger, Router
from serving.api.request import VERSION_HEADER, Endpoint, Request, Response, answer_response, json_response
from serving.errors import BadRequest, NotFound, ServingError, shorten
from serving.routing import resolve_label
from serving.validation import SchemaValidator

logger = logging.getLogger(__name__)

MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<metadata>/metadata)?"
    r"(?::(?P<verb>[^/:]*))?$")
VERBS = ("predict", "classify", "regress")
# The keys of TF Serving's REST request bodies, per verb.
BODY_KEYS = {"predict": ("signature_name", "instances", "inputs"),
             "classify": ("signature_name", "context", "examples"),
             "regress": ("signature_name", "context", "examples")}
MAX_PENDING_SHADOWS = 256


class ModelAPI:
    """Answers the model endpoints (thread-safe); ``close()`` waits for shadow calls."""

    def __init__(self, backend: Backend, router: Router, limits: Limits = Limits(),
                 validator: Optional[SchemaValidator] = None,
                 request_log: Optional[RequestLogger] = None) -> None:
        self._backend = backend
        self._router = router
        self._limits = limits
        self._validator = validator
        self._kinds: Dict[str, str] = validator.kinds if validator else {}
        self._request_log = request_log
        self._shadow_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="shadow")
        # Shadow work never blocks or piles up behind primary traffic: beyond
        # this many pending shadow calls, a shadow answer is skipped (and logged).
        self._shadow_slots = threading.BoundedSemaphore(MAX_PENDING_SHADOWS)

    def endpoints(self) -> List[Endpoint]:
        return [Endpoint(MODEL_PATH, self.model)]

    def close(self) -> None:
        self._shadow_pool.shutdown(wait=True)

    def model(self, request: Request, match: "re.Match[str]") -> Response:
        """Checks the URL, then answers status, metadata or inference."""
        observed = request.observed
        verb = match.group("verb")
        is_metadata = bool(match.group("metadata"))
        observed["verb"] = verb if verb is not None else ("metadata" if is_metadata else "status")
        if verb is not None and verb not in VERBS:
            observed["verb"] = "unknown"
            raise NotFound(f"Malformed request: unknown verb ':{verb}'; expected predict, "
                           "classify or regress")
        if verb is not None and is_metadata:
            raise NotFound("Malformed request: metadata takes no verb")
        name = req.model_name(match.group("name"), self._backend.model_names())
        observed["model"] = name
        version = req.version(match.group("version"))
        label = req.label(match.group("label"))
        if verb is None:
            req.require_method(request, "GET")
            if label is not None:
                version = resolve_label(self._backend, name, label)
            if is_metadata:
                return self._metadata(request, name, version)
            if version is not None:
                observed["version"] = str(version)
            return json_response(200, self._backend.status(name, version))
        req.require_method(request, "POST")
        return self._infer(request, name, version, label, verb)

    def _metadata(self, request: Request, name: str, version: Optional[int]) -> Response:
        """A version's signatures; without a version, those of the version a request would reach."""
        if version is None:
            version = self._router.route(name, request.request_id, None, None).primary
        request.observed["version"] = str(version)
        return json_response(200, self._backend.metadata(name, version))

    def _infer(self, request: Request, name: str, version: Optional[int], label: Optional[str],
               verb: str) -> Response:
        """Checks the body, answers from the routed version and hands the shadow its copy."""
        parsed = req.parse_json(request.body)
        complete = self.check_body(verb, parsed)
        route = self._router.route(name, request.request_id, version, label)
        request.observed["version"] = str(route.primary)
        scored = self._with_claim_records(name, route.primary, verb, parsed)
        # Rows the schema check found complete need no second walk for missing values
        # (unless claim records were added to them).
        needs_imputing = verb == "predict" and not (complete and scored is parsed)
        body = self._with_missing_values(scored) if needs_imputing else scored
        with self._backend.demand:
            started = time.perf_counter()
            answer = self._backend.infer(name, route.primary, verb, body, self._kinds)
            latency_ms = (time.perf_counter() - started) * 1000.0
        self._log(request.request_id, name, route.primary, "primary", verb, scored, answer, latency_ms)
        if route.shadow is not None and route.shadow != route.primary:
            if self._shadow_slots.acquire(blocking=False):
                self._shadow_pool.submit(self._run_shadow, request.request_id, name, route.shadow,
                                         verb, parsed)
            else:
                logger.warning("Shadow version %d skipped for request %s: %d shadow calls pending",
                               route.shadow, request.request_id, MAX_PENDING_SHADOWS)
        return answer_response(200, answer, {VERSION_HEADER: str(route.primary)})

    def _with_claim_records(self, name: str, version: int, verb: str,
                            body: Dict[str, Any]) -> Dict[str, Any]:
        """The body with LIAR's claim-neighbour record made for each row that lacks it,
        from the index pushed with that version (``serving.claim_records``), so a
        REST row is scored as the Evaluator scored the pipeline's rows. Versions
        without an index get the body as sent. The request log keeps this body:
        what the model scored."""
        records = self._backend.claim_records(name, version)
        return dict(records.complete(verb, body)) if records is not None else body

    def _with_missing_values(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """A row predict whose instances leave optional features out (or null) for
        the tf.Example signature.

        ``serving_default`` takes one dense value per feature and row, so it
        cannot be told that a value is missing; ``serving_tf_example`` parses
        tf.Examples in which a feature may be absent, and Transform imputes it
        as it did in training (trainer/preprocessing.py). The rows go there as
        serialized tf.Examples (TF Serving's ``{"b64": ...}`` strings), so this
        works with real TF Serving behind the proxy too; the answer has the
        same shape. Complete rows, and bodies the schema does not describe,
        are sent as they are.
        """
        instances = body.get("instances")
        if (self._validator is None or not isinstance(instances, list) or not instances
                or body.get("signature_name", SERVING_SIGNATURE) != SERVING_SIGNATURE
                or not all(isinstance(row, dict) for row in instances)
                or not self._validator.any_missing(instances)):
            return body
        present = [{k: v for k, v in row.items() if v is not None and v != []} for row in instances]
        serialized = codec.examples_to_protos(present, None, self._kinds)
        return {"signature_name": TF_EXAMPLE_SIGNATURE,
                "instances": [{"b64": base64.b64encode(s).decode("ascii")} for s in serialized]}

    def check_body(self, verb: str, body: Mapping[str, Any]) -> bool:
        """Keys, row limit and schema validation, before any model work.

        A key TF Serving's REST API does not define is refused rather than
        ignored: a misspelt ``signature_name`` would otherwise run the default
        signature without a word. True when the body's ``instances`` are rows
        holding every schema feature with a valid value
        (``SchemaValidator.check_instances``): none is missing.
        """
        unexpected = sorted(set(body) - set(BODY_KEYS[verb]))
        if unexpected:
            raise BadRequest(f"unexpected key(s) {[shorten(k) for k in unexpected]} in the {verb} "
                             f"body; expected {list(BODY_KEYS[verb])}")
        if "signature_name" in body and not isinstance(body["signature_name"], str):
            raise BadRequest(f"'signature_name' must be a string, got {shorten(body['signature_name'])}")
        if "context" in body and not isinstance(body["context"], dict):
            raise BadRequest(f"'context' must be an object of features, got {shorten(body['context'])}")
        limit = self._limits.max_batch_rows
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
        if self._validator is None:
            return False
        if verb == "predict":
            if isinstance(body.get("instances"), list):
                return self._validator.check_instances(body["instances"])
            if isinstance(body.get("inputs"), dict):
                self._validator.check_inputs(body["inputs"])
        else:
            context = body.get("context") if isinstance(body.get("context"), dict) else None
            self._validator.check_examples(body["examples"], context)
        return False

    # ------------------------------------------------------------ shadow and log

    def _run_shadow(self, request_id: str, name: str, version: int, verb: str,
                    parsed: Dict[str, Any]) -> None:
        try:
            self._shadow_answer(request_id, name, version, verb, parsed)
        finally:
            self._shadow_slots.release()

    def _shadow_answer(self, request_id: str, name: str, version: int, verb: str,
                       parsed: Dict[str, Any]) -> None:
        """The shadow version's answer, logged only: its failure fails no request. Its
        claim-neighbour record is its own (its index may differ from the primary's),
        made in this thread so the primary answer does not wait for it."""
        try:
            scored = self._with_claim_records(name, version, verb, parsed)
            body = self._with_missing_values(scored) if verb == "predict" else scored
            started = time.perf_counter()
            answer = self._backend.infer(name, version, verb, body, self._kinds)
            latency_ms = (time.perf_counter() - started) * 1000.0
            self._log(request_id, name, version, "shadow", verb, scored, answer, latency_ms)
        except ServingError as err:
            logger.warning("Shadow version %d failed request %s: %s", version, request_id, err.message)
        except Exception:  # pylint: disable=broad-except
            logger.exception("Shadow version %d failed request %s", version, request_id)

    def _log(self, request_id: str, name: str, version: int, role: str, verb: str,
             body: Mapping[str, Any], answer: Mapping[str, Any], latency_ms: float) -> None:
        if self._request_log is None:
            return
        try:
            self._request_log.log(request_id=request_id, model=name, version=version, role=role,
                                  features=_rows_of(verb, body), outputs=_outputs_of(answer),
                                  latency_ms=latency_ms, timestamp=time.time())
        except Exception:  # pylint: disable=broad-except
            # The answer is already computed: a logging failure must not fail it.
            logger.exception("Request log write failed for request %s", request_id)


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
