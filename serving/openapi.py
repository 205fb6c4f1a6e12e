"""The gateway's OpenAPI 3 document (served at /openapi.json).

Written from the same facts the router enforces (path parameters, verbs,
body shapes, error body), so clients can be generated and the API can be
fuzzed (tests run schemathesis against it).
"""
from typing import Any, Dict, List, Optional

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_OBJECT = {"type": "object", "additionalProperties": True}


def _ref(name: str) -> Dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(ok: Dict[str, Any], description: str, codes: List[int]) -> Dict[str, Any]:
    responses: Dict[str, Any] = {"200": {"description": description,
                                         "content": {"application/json": {"schema": ok}}}}
    texts = {400: "invalid request (body, schema, version or label)", 401: "missing or wrong token",
             404: "unknown model, version or URL", 409: "conflicts with stored state",
             413: "body over serving.max_request_bytes",
             501: "rollouts not available", 503: "batching queue full or backend unavailable"}
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


FEEDBACK_DESCRIPTION = (
    "One item {request_id, label, row} or {feedback: [items]} (at most serving.max_batch_rows, "
    "all or nothing). row (default 0) is the row's index in the prediction's instances, inputs "
    "or examples. label is the raw label column's value as in the training data: a class name "
    "(label kind classes), a class id (column), or the numerator column, e.g. taxi's tips "
    "(ratio_threshold). A repeated identical label is a duplicate (200); a different label for "
    "a labelled row is 409. Unknown request ids (not logged for this model in the last "
    "serving.feedback_window_spans spans) are 404; errors name the field, e.g. feedback[2].label.")


def build(models: Optional[List[str]] = None, title: str = "TF Serving-compatible REST gateway",
          version: str = "1.0", feature_properties: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The OpenAPI document.

    ``models`` (the served model names, when known) become the ``model``
    parameter's enum, so generated clients and fuzzers address real models;
    ``feature_properties`` (from the schema) describes instances.
    """
    model_schema: Dict[str, Any] = {"type": "string", "pattern": _MODEL_PATTERN}
    if models:
        model_schema = {"type": "string", "enum": sorted(models)}
    MODEL = _param("model", model_schema, "model name (models.config)")  # noqa: N806
    instance = {"type": "object", "description": "raw features by name (one value per feature)",
                "additionalProperties": True}
    if feature_properties:
        instance["properties"] = feature_properties
    paths: Dict[str, Any] = {}
    variants = [("", [MODEL]), ("/versions/{version}", [MODEL, VERSION]),
                ("/labels/{label}", [MODEL, LABEL])]
    for suffix, params in variants:
        base = "/v1/models/{model}" + suffix
        paths[base] = {"get": {"summary": "model version status", "parameters": params,
                               "responses": _responses(_ref("Status"), "status", [400, 404])}}
        paths[base + "/metadata"] = {"get": {
            "summary": "signature definitions", "parameters": params,
            "responses": _responses(_ref("Metadata"), "metadata", [400, 404])}}
        for verb, request, response in (("predict", "PredictRequest", "PredictResponse"),
                                        ("classify", "ExamplesRequest", "ClassifyResponse"),
                                        ("regress", "ExamplesRequest", "RegressResponse")):
            paths[f"{base}:{verb}"] = {"post": {
                "summary": verb, "parameters": params,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref(request)}}},
                "responses": _responses(_ref(response), verb, [400, 404, 413, 503])}}
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
            "oneOf": [_ref("FeedbackItem"), _ref("FeedbackBatch")]}}}},
        "responses": _responses(_ref("FeedbackResponse"), "labels stored (or already stored)",
                                [400, 404, 409, 413])}}
    admin = "/v1/admin/models/{model}/rollout"
    paths[admin] = {"get": {"summary": "rollout state", "parameters": [MODEL],
                            "security": [{"bearer": []}],
                            "responses": _responses(_JSON_OBJECT, "state", [400, 401, 404, 501])}}
    for action in ("canary", "shadow", "promote", "rollback", "clear"):
        paths[f"{admin}:{action}"] = {"post": {
            "summary": f"rollout: {action}", "parameters": [MODEL], "security": [{"bearer": []}],
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": _ref("RolloutRequest")}}},
            "responses": _responses(_JSON_OBJECT, "new rollout state", [400, 401, 404, 501])}}
    value = {}
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version,
                 "description": "TF Serving's REST API (predict, classify, regress, status, "
                                "metadata) with schema validation, canary/shadow rollouts, "
                                "metrics and feedback labels. Errors are {\"error\": \"...\"} "
                                "like TF Serving's."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"],
                          "properties": {"error": {"type": "string"}}},
                "Status": {"type": "object", "required": ["model_version_status"], "properties": {
                    "model_version_status": {"type": "array", "items": {
                        "type": "object", "required": ["version", "state", "status"],
                        "properties": {"version": {"type": "string"}, "state": {"type": "string"},
                                       "status": {"type": "object"}}}}}},
                "Metadata": {"type": "object", "required": ["model_spec", "metadata"],
                             "properties": {"model_spec": {"type": "object"},
                                            "metadata": {"type": "object"}}},
                "Instance": instance,
                "PredictRequest": {"type": "object", "properties": {
                    "signature_name": {"type": "string"},
                    "instances": {"type": "array", "items": _ref("Instance")},
                    "inputs": {"type": "object", "additionalProperties": True}}},
                "PredictResponse": {"type": "object", "properties": {
                    "predictions": {"type": "array"}, "outputs": value}},
                "ExamplesRequest": {"type": "object", "required": ["examples"], "properties": {
                    "signature_name": {"type": "string"},
                    "context": {"type": "object", "additionalProperties": True},
                    "examples": {"type": "array", "items": _ref("Instance")}}},
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
                "FeedbackBatch": {
                    "type": "object", "required": ["feedback"], "additionalProperties": False,
                    "properties": {"feedback": {"type": "array", "minItems": 1,
                                                "items": _ref("FeedbackItem")}}},
                "FeedbackResponse": {"type": "object", "required": ["accepted", "duplicates"],
                                     "properties": {"accepted": {"type": "integer"},
                                                    "duplicates": {"type": "integer"}}},
                "RolloutRequest": {"type": "object", "properties": {
                    "version": {"type": "integer", "minimum": 1},
                    "percent": {"type": "number", "minimum": 0, "maximum": 100}}},
            },
        },
    }


def feature_properties(kinds: Dict[str, str]) -> Dict[str, Any]:
    """JSON schema of each serving feature from its schema type."""
    types = {"int": {"type": "integer"}, "float": {"type": "number"}, "bytes": {"type": "string"}}
    return {name: dict(types[kind]) for name, kind in sorted(kinds.items())}
