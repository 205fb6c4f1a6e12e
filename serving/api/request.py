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
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Tuple

import orjson

from serving.errors import BadRequest, MethodNotAllowed, NotFound, shorten

JSON = "application/json"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_ID_HEADER = "X-Request-Id"
VERSION_HEADER = "X-Model-Version"

# A caller's X-Request-Id is kept when it matches; otherwise the gateway makes one.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[0-9]{1,18}$")


class Headers(Mapping[str, str]):
    """HTTP headers as a case-insensitive mapping (repeated names joined by ", "):
    header names are case-insensitive, and HTTP servers send them in any case."""

    def __init__(self, pairs: Iterable[Tuple[str, str]] = ()) -> None:
        self._values: Dict[str, str] = {}
        self._names: Dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._values[key] = f"{self._values[key]}, {value}" if key in self._values else value
            self._names.setdefault(key, name)

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


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


def answer_response(status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> Response:
    """``json_response`` for inference answers (numbers, strings, lists and objects of
    them), serialized by orjson: ~10x faster than ``json.dumps`` on a 64-row answer.

    The same JSON values (compact, UTF-8 instead of ``\\u`` escapes), except that
    orjson writes NaN and infinities as ``null`` where ``json`` writes TF Serving's
    ``NaN``/``Infinity``: an answer holding ``null`` (or anything orjson refuses:
    an integer beyond 64 bits, a lone surrogate) is written by ``json_response``.
    """
    try:
        body = orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return json_response(status, payload, headers)
    if b"null" in body:
        return json_response(status, payload, headers)
    return Response(status, body, JSON, dict(headers or {}))


def parse_json(body: bytes) -> Dict[str, Any]:
    """The body as a JSON object, or TF Serving-style 400s.

    Everything Python's parser accepts must be safe for the layers below:
    integers too long for any number type read as +/-Infinity (as
    JavaScript's JSON.parse reads them; the schema check then names the
    field), and a string holding a lone UTF-16 surrogate (``"\\ud800"``),
    which cannot become UTF-8 bytes for TensorFlow, is a 400 naming where it is.
    """
    if not body:
        raise BadRequest("JSON Parse error: the request body is empty; expected a JSON object")
    parsed = _fast_parse(body)
    if parsed is not None:
        return parsed
    try:
        parsed = json.loads(body, parse_int=_parse_int)
    except RecursionError:
        raise BadRequest("JSON Parse error: the body is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise BadRequest(f"JSON Parse error: {err}") from None
    if not isinstance(parsed, dict):
        raise BadRequest(f"JSON Parse error: the request body must be a JSON object, "
                         f"got {type(parsed).__name__}")
    if _SURROGATE_ESCAPE.search(body):
        _check_unicode(parsed, "")
    return parsed


# Integers longer than this are beyond float64's range (~1.8e308, 309 digits);
# Python would parse them exactly (or refuse those over 4,300 digits with a ValueError).
_MAX_INT_DIGITS = 330
# A lone surrogate arrives as a \uD800-\uDFFF escape or UTF-8-encoded (bytes ED A0-BF ..,
# which json.loads decodes with "surrogatepass"): bodies with neither need no walk.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


# A run of 19+ digits may be an integer orjson would turn into a float (beyond 64 bits).
# Found by mapping every digit to "0" and anything else to "x", then a substring
# search: both C loops, ~20x faster on a 64-row body than the regex [0-9]{19}.
_DIGITS_TO_ZERO = bytes(ord("0") if ord("0") <= i <= ord("9") else ord("x") for i in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def _fast_parse(body: bytes) -> Optional[Dict[str, Any]]:
    """The body parsed by orjson (C, several times faster than ``json`` with a
    ``parse_int`` hook), or None to take ``json``'s path.

    Only bodies on which both parsers agree are taken here: orjson refuses what
    ``json`` would treat specially (NaN, infinities, lone surrogates, a BOM,
    UTF-16, deep nesting, invalid JSON), so those go to ``json``, which keeps
    its answers and error messages (orjson 3.13 rejects every lone surrogate,
    escaped or raw UTF-8, so ``json``'s path does the surrogate check); bodies
    with a long digit run (an integer orjson would read as a float) go there too.
    """
    if _LONG_DIGIT_RUN in body.translate(_DIGITS_TO_ZERO):
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _parse_int(text: str) -> Any:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


def _check_unicode(value: Any, where: str) -> None:
    """400 naming the first key or string (by its JSON path) that is not valid Unicode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"JSON Parse error: {where or 'the body'}: the string "
                             f"{shorten(value)} holds a lone UTF-16 surrogate; expected valid "
                             "Unicode text") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            _check_unicode(key, f"{where or 'the body'}: key")
            _check_unicode(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_unicode(item, f"{where}[{index}]")


def require_method(request: Request, allowed: str) -> None:
    """405 unless the request uses ``allowed`` (each URL takes one method)."""
    if request.method != allowed:
        raise MethodNotAllowed(f"{request.method} is not allowed here; use {allowed}", allowed)


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
