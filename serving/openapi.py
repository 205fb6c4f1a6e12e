"""The gateway's OpenAPI 3 document (served at /openapi.json).

Written from the same facts the gateway enforces, so that what the document
allows is accepted and what it forbids is refused: path parameters (served
models, defined labels), verbs, the error body, and each body's features from
the schema validator's own rules (``serving.validation.FeatureRule``: type,
required or optional, value count, range, string domain) and the row limit.
Clients can be generated from it and the gateway is fuzzed against it
(tests/serving/test_contract.py runs every schemathesis check).
"""
import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence

from common.serving_contract import SERVING_SIGNATURE, TF_EXAMPLE_SIGNATURE
from serving.api.request import VERSION_HEADER
from serving.feedback.verdicts import (
    ANSWERS,
    MAX_STATEMENT_CHARS,
    MAX_VERSION_CHARS,
    MAX_VERSION_NUMBER,
    SIDES,
    VERDICT_FIELDS,
)
from serving.validation import FeatureRule

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_OBJECT = {"type": "object", "additionalProperties": True}


def _ref(name: str) -> Dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(ok: Dict[str, Any], description: str, codes: List[int],
               headers: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    success: Dict[str, Any] = {"description": description,
                               "content": {"application/json": {"schema": ok}}}
    if headers:
        success["headers"] = headers
    responses: Dict[str, Any] = {"200": success}
    texts = {400: "invalid request (body, schema, version or label)", 401: "missing or wrong token",
             404: "unknown model, version or URL", 408: "the body did not arrive in time",
             409: "conflicts with stored state",
             411: "chunked body (send Content-Length)", 413: "body over serving.max_request_bytes",
             501: "rollouts not available",
             503: "batching queue full, backend unavailable or connection limit reached"}
    for code in codes:
        responses[str(code)] = {"description": texts[code],
                                "content": {"application/json": {"schema": _ERROR}}}
    return responses


def _param(name: str, schema: Dict[str, Any], description: str) -> Dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}


_MODEL_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
VERSION = _param("version", {"type": "integer", "minimum": 1, "maximum": 999999999999999999},
                 "model version (a directory under the model base path)")
LABEL = _param("label", {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$"},
               "version label from models.config, e.g. stable or canary")


@dataclasses.dataclass(frozen=True)
class Contract:
    """What the document says of request bodies, from the facts the gateway enforces.

    ``rules``: the schema validator's serving features (None: no schema, the
    bodies are described loosely); ``max_rows``: ``serving.max_batch_rows``;
    ``labels``: the version labels defined now (the ``label`` parameter's enum).
    """
    rules: Optional[Mapping[str, FeatureRule]] = None
    max_rows: Optional[int] = None
    labels: Sequence[str] = ()


_RESPONSE_SCHEMAS: Dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Status": {"type": "object", "required": ["model_version_status"], "properties": {
        "model_version_status": {"type": "array", "items": {
            "type": "object", "required": ["version", "state", "status"],
            "properties": {"version": {"type": "string"}, "state": {"type": "string"},
                           "status": {"type": "object"}}}}}},
    "Metadata": {"type": "object", "required": ["model_spec", "metadata"],
                 "properties": {"model_spec": {"type": "object"}, "metadata": {"type": "object"}}},
    "PredictResponse": {"type": "object", "properties": {
        "predictions": {"type": "array"}, "outputs": {}}},
    "ClassifyResponse": {"type": "object", "required": ["results"], "properties": {
        "results": {"type": "array", "items": {"type": "array", "items": {
            "type": "array", "minItems": 2, "maxItems": 2}}}}},
    "RegressResponse": {"type": "object", "required": ["results"], "properties": {
        "results": {"type": "array", "items": {"type": "number"}}}},
    "FeedbackItem": {
        "type": "object", "required": ["request_id", "label"],
        "additionalProperties": False, "properties": {
            "request_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$",
                           "description": "the prediction's X-Request-Id"},
            "row": {"type": "integer", "minimum": 0, "default": 0,
                    "description": "the row's index in the prediction request"},
            "label": {"oneOf": [{"type": "string"}, {"type": "number"}],
                      "description": "the raw label column's value"}}},
    "StatementVerdict": {
        "type": "object", "required": list(VERDICT_FIELDS), "additionalProperties": False,
        "description": "a reader's right/wrong on a lean scored offline (the browser extension)",
        "properties": {
            "statement": {"type": "string", "minLength": 1, "maxLength": MAX_STATEMENT_CHARS,
                          "pattern": "\\S"},
            "model": {"type": "string", "description": "the URL's model"},
            "model_version": {"oneOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_VERSION_CHARS},
                {"type": "integer", "minimum": 0, "maximum": MAX_VERSION_NUMBER}]},
            "lean": {"type": "string", "enum": list(SIDES)},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
            "answer": {"type": "string", "enum": list(ANSWERS)}}},
    "FeedbackBatch": {
        "type": "object", "required": ["feedback"], "additionalProperties": False,
        "properties": {"feedback": {"type": "array", "minItems": 1, "items": {
            "oneOf": [_ref("FeedbackItem"), _ref("StatementVerdict")]}}}},
    "FeedbackResponse": {"type": "object", "required": ["accepted", "duplicates"],
                         "properties": {"accepted": {"type": "integer"},
                                        "duplicates": {"type": "integer"}}},
}
FEEDBACK_DESCRIPTION = (
    "One item {request_id, label, row} or {feedback: [items]} (at most serving.max_batch_rows, "
    "all or nothing). row (default 0) is the row's index in the prediction's instances, inputs "
    "or examples. label is the raw label column's value as in the training data: a class name "
    "(label kind classes), a class id (column), or the numerator column, e.g. taxi's tips "
    "(ratio_threshold). A repeated identical label is a duplicate (200); a different label for "
    "a labelled row is 409. Unknown request ids (not logged for this model in the last "
    "serving.feedback_window_spans spans) are 404; errors name the field, e.g. feedback[2].label. "
    "An item with a statement is a statement verdict (a reader's right/wrong on a lean scored "
    "offline, no request id), stored apart from the labels and always accepted when valid.")
_ROLLOUT_REQUEST: Dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {
    "version": {"type": "integer", "minimum": 1},
    "percent": {"type": "number", "minimum": 0, "maximum": 100}}}


def build(models: Optional[List[str]] = None, title: str = "TF Serving-compatible REST gateway",
          version: str = "1.0", contract: Contract = Contract()) -> Dict[str, Any]:
    """The OpenAPI document.

    ``models`` (the served model names, when known) become the ``model``
    parameter's enum, so generated clients and fuzzers address real models;
    ``contract`` describes the bodies (see ``Contract``).
    """
    model_schema: Dict[str, Any] = {"type": "string", "pattern": _MODEL_PATTERN}
    if models:
        model_schema = {"type": "string", "enum": sorted(models)}
    MODEL = _param("model", model_schema, "model name (models.config)")  # noqa: N806
    label = LABEL
    if contract.labels:
        label = _param("label", {"type": "string", "enum": sorted(contract.labels)}, LABEL["description"])
    paths: Dict[str, Any] = {}
    variants = [("", [MODEL]), ("/versions/{version}", [MODEL, VERSION]),
                ("/labels/{label}", [MODEL, label])]
    for suffix, params in variants:
        base = "/v1/models/{model}" + suffix
        paths[base] = {"get": {"summary": "model version status", "parameters": params,
                               "responses": _responses(_ref("Status"), "status", [400, 404])}}
        paths[base + "/metadata"] = {"get": {
            "summary": "signature definitions", "parameters": params,
            "responses": _responses(_ref("Metadata"), "metadata", [400, 404, 503])}}
        for verb, request, response in (("predict", "PredictRequest", "PredictResponse"),
                                        ("classify", "ExamplesRequest", "ClassifyResponse"),
                                        ("regress", "ExamplesRequest", "RegressResponse")):
            paths[f"{base}:{verb}"] = {"post": {
                "summary": verb, "parameters": params,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref(request)}}},
                "responses": _responses(_ref(response), verb, [400, 404, 408, 411, 413, 503],
                                        {VERSION_HEADER: {"description": "the version that answered",
                                                          "schema": {"type": "string"}}})}}
    paths["/healthz"] = {"get": {"summary": "readiness", "responses": {
        "200": {"description": "a model is loaded",
                "content": {"application/json": {"schema": _JSON_OBJECT}}},
        "503": {"description": "no model loaded",
                "content": {"application/json": {"schema": _JSON_OBJECT}}}}}}
    paths["/metrics"] = {"get": {"summary": "Prometheus metrics", "responses": {
        "200": {"description": "text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}}}}}}
    paths["/v1/models/{model}/feedback"] = {"post": {
        "summary": "labels for logged predictions (by their X-Request-Id)", "parameters": [MODEL],
        "description": FEEDBACK_DESCRIPTION,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [_ref("FeedbackItem"), _ref("StatementVerdict"), _ref("FeedbackBatch")]}}}},
        "responses": _responses(_ref("FeedbackResponse"), "labels stored (or already stored)",
                                [400, 404, 408, 409, 411, 413])}}
    admin = "/v1/admin/models/{model}/rollout"
    paths[admin] = {"get": {"summary": "rollout state (a read: writes nothing)", "parameters": [MODEL],
                            "security": [{"bearer": []}],
                            "responses": _responses(_JSON_OBJECT, "state", [400, 401, 404, 501, 503])}}
    for action in ("canary", "shadow", "promote", "rollback", "clear"):
        paths[f"{admin}:{action}"] = {"post": {
            "summary": f"rollout: {action}", "parameters": [MODEL], "security": [{"bearer": []}],
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": _ref("RolloutRequest")}}},
            "responses": _responses(_JSON_OBJECT, "new rollout state",
                                    [400, 401, 404, 408, 411, 413, 501, 503])}}
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version,
                 "description": "TF Serving's REST API (predict, classify, regress, status, "
                                "metadata) with schema validation, canary/shadow rollouts, "
                                "metrics and feedback labels. Errors are {\"error\": \"...\"} like TF Serving's. "
                                "Columnar predict bodies ({\"inputs\": {feature: [values]}}) are "
                                "accepted too but not described here: JSON Schema cannot say that "
                                "the columns must have equal lengths."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**_RESPONSE_SCHEMAS, **_request_schemas(contract)},
        },
    }


def _request_schemas(contract: Contract) -> Dict[str, Any]:
    """Request bodies: exact when the schema's rules are known, loose otherwise."""
    rows: Dict[str, Any] = {"type": "array", "minItems": 1}
    if contract.max_rows:
        rows["maxItems"] = contract.max_rows
    if contract.rules is None:
        instance = {"type": "object", "description": "raw features by name",
                    "additionalProperties": True}
        return {
            "Instance": instance,
            "PredictRequest": {"type": "object", "properties": {
                "signature_name": {"type": "string"},
                "instances": dict(rows, items=_ref("Instance")),
                "inputs": {"type": "object", "additionalProperties": True}},
                "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}]},
            "ExamplesRequest": {"type": "object", "required": ["examples"], "properties": {
                "signature_name": {"type": "string"},
                "context": {"type": "object", "additionalProperties": True},
                "examples": dict(rows, items=_ref("Instance"))}},
            "RolloutRequest": _ROLLOUT_REQUEST,
        }
    properties = {name: feature_schema(rule) for name, rule in sorted(contract.rules.items())}
    required = sorted(name for name, rule in contract.rules.items() if rule.required)
    instance: Dict[str, Any] = {
        "type": "object", "properties": properties, "additionalProperties": False,
        "description": "one row of raw features (the schema's SERVING environment); an optional "
                       "feature may be left out or null (the model treats it as missing)"}
    if required:
        instance["required"] = required
    return {
        "Instance": instance,
        "Context": {"type": "object", "additionalProperties": False,
                    "properties": {name: properties[name] for name in properties if name not in required},
                    "description": "optional features shared by every example (the gateway also "
                                   "takes required ones here, which JSON Schema cannot say: each "
                                   "example would then need them only when the context lacks them)"},
        "PredictRequest": {
            "type": "object", "required": ["instances"], "additionalProperties": False,
            "properties": {"signature_name": {"type": "string", "enum": [SERVING_SIGNATURE]},
                           "instances": dict(rows, items=_ref("Instance"))}},
        "ExamplesRequest": {
            "type": "object", "required": ["examples"], "additionalProperties": False,
            "properties": {"signature_name": {"type": "string", "enum": [TF_EXAMPLE_SIGNATURE]},
                           "context": _ref("Context"),
                           "examples": dict(rows, items=_ref("Instance"))}},
        "RolloutRequest": _ROLLOUT_REQUEST,
    }


# Exactly the base64 strings Python's strict decoder takes (whole 4-character groups).
_BASE64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def feature_schema(rule: FeatureRule) -> Dict[str, Any]:
    """JSON schema of one feature's value, from the validator's rule: a value of the
    feature's type (within its range or domain), or a list of at most
    ``value_count.max`` of them; an optional feature may also be null or []."""
    scalar: Dict[str, Any]
    if rule.kind == "bytes":
        scalar = {"type": "string"}
        if rule.allowed is not None:
            scalar["enum"] = sorted(rule.allowed)
        else:
            scalar = {"anyOf": [scalar, {"type": "object", "required": ["b64"],
                                         "additionalProperties": False,
                                         "properties": {"b64": {"type": "string",
                                                                "pattern": _BASE64}}}]}
    else:
        scalar = {"type": "integer" if rule.kind == "int" else "number"}
        if rule.minimum is not None:
            scalar["minimum"] = rule.minimum
        if rule.maximum is not None:
            scalar["maximum"] = rule.maximum
    values: Dict[str, Any] = {"type": "array", "items": scalar,
                              "minItems": max(rule.min_values, 1) if rule.required else 0}
    if rule.max_values is not None:
        values["maxItems"] = rule.max_values
    schema: Dict[str, Any] = {"anyOf": [scalar, values],
                              "description": f"{rule.expected()}" + ("" if rule.required else
                                                                      "; optional: may be null")}
    if not rule.required:
        schema["nullable"] = True
    return schema
