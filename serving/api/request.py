"""What a handler is given and gives back, and the request checks every handler shares.

The handlers (``model``, ``admin``, ``ops``) are plain functions of a
``Request`` and the URL match; they return a ``Response`` or raise. Parsing of
URL parts and JSON bodies lives here once so that every endpoint answers a bad
model name, version, label, method or body with the same TF Serving wording.
"""
import dataclasses
import json
import re
import urllib.parse
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from serving.errors import BadRequest, MethodNotAllowed, NotFound

JSON = "application/json"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_ID_HEADER = "X-Request-Id"
VERSION_HEADER = "X-Model-Version"

# A caller's X-Request-Id is kept when it matches; otherwise the gateway makes one.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[0-9]{1,18}$")


@dataclasses.dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON
    headers: Dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Request:
    """One request as the dispatcher hands it to a handler.

    ``observed`` is filled by the model API (``model``, ``version``, ``verb``)
    so the dispatcher can label the request metrics, also for failed requests.
    """
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    request_id: str
    observed: Dict[str, str] = dataclasses.field(default_factory=dict)


Handler = Callable[[Request, "re.Match[str]"], Response]


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A URL pattern and its handler; the dispatcher tries endpoints in order."""
    pattern: "re.Pattern[str]"
    handler: Handler


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


def require_method(request: Request, allowed: str) -> None:
    """405 unless the request uses ``allowed`` (each URL takes one method)."""
    if request.method != allowed:
        raise MethodNotAllowed(f"{request.method} is not allowed here; use {allowed}")


def model_name(raw: str, served: Iterable[str]) -> str:
    """The URL's model name, checked: 400 when malformed, 404 when not served."""
    name = urllib.parse.unquote(raw)
    if not _MODEL_NAME.match(name):
        raise BadRequest(f"Malformed request: model name {name!r} must be letters, digits, "
                         "'_' or '-'")
    if name not in served:
        raise NotFound(f"Servable not found for request: Latest({name})")
    return name


def version(raw: Optional[str]) -> Optional[int]:
    """The URL's ``/versions/<v>`` as a positive integer (None when absent)."""
    if raw is None:
        return None
    text = urllib.parse.unquote(raw)
    if not _VERSION.match(text) or int(text) < 1:
        raise BadRequest(f"Malformed request: version {text!r} in the URL must be a positive "
                         "integer")
    return int(text)


def label(raw: Optional[str]) -> Optional[str]:
    """The URL's ``/labels/<l>``, checked (None when absent)."""
    if raw is None:
        return None
    text = urllib.parse.unquote(raw)
    if not _LABEL.match(text):
        raise BadRequest(f"Malformed request: label {text!r} in the URL must start with a "
                         "letter and hold letters, digits, '_' or '-'")
    return text
