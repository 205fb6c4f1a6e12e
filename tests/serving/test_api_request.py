"""serving.api.request.parse_json: orjson's fast path answers exactly as the json path.

The fast path takes only bodies on which both parsers agree; everything else
(long integers, NaN, escaped surrogates, a BOM, deep nesting, invalid JSON)
is parsed by ``json`` as before, so values and error messages do not change.
"""
import json

import pytest

from serving.api import request as req
from serving.errors import BadRequest
from testing.tiny_model import INSTANCE


def _json_path(body: bytes):
    """What parse_json answered before the fast path: json's value or its 400 message."""
    try:
        parsed = json.loads(body, parse_int=req._parse_int)
    except RecursionError:
        return "JSON Parse error: the body is nested too deeply"
    except ValueError as err:
        return f"JSON Parse error: {err}"
    if not isinstance(parsed, dict):
        return ("JSON Parse error: the request body must be a JSON object, "
                f"got {type(parsed).__name__}")
    return parsed


def _parse(body: bytes):
    try:
        return req.parse_json(body)
    except BadRequest as err:
        return err.message


BODIES = [
    json.dumps({"instances": [INSTANCE] * 64}).encode(),
    json.dumps({"inputs": {k: [v] for k, v in INSTANCE.items()}}).encode(),
    b'{"a": 18446744073709551615, "b": -9223372036854775808, "c": -0, "d": 1E2, "e": 4.9e-324}',
    b'{"a": 12345678901234567890123}',            # beyond 64 bits: orjson would give a float
    b'{"a": -9223372036854775809}',
    b'{"a": 1' + b"0" * 400 + b"}",                 # beyond float range: +Infinity
    b'{"a": 0.1234567890123456789012}',
    b'{"a": NaN, "b": Infinity}', b'{"a": 1e400}',
    b'{"a": "\\u00e9\\ud83d\\ude00"}',              # an escaped surrogate pair: valid
    b'{"a":1,"a":2}', b' {"a": [true, false, null]} ',
    '{"é": "ü"}'.encode("utf-8"), b'\xef\xbb\xbf{"a": 1}', '{"a": 1}'.encode("utf-16"),
    b"[1, 2]", b'"text"', b"{'a': 1}", b'{"a": 1,}', b'{"a": 01}', b'{"a": "x\ty"}',
    b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}",
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_parse_json_answers_as_the_json_parser(body):
    assert _parse(body) == _json_path(body)


def test_lone_surrogates_are_named():
    message = _parse(b'{"instances": [{"company": "\\ud800"}]}')
    assert "instances[0].company" in message and "surrogate" in message


def test_utf8_encoded_surrogates_are_named_too():
    """json.loads decodes UTF-8-encoded surrogates (bytes ED A0-BF ..) with surrogatepass;
    TensorFlow cannot take them back to UTF-8, so they are a 400, not a 500."""
    message = _parse(b'{"instances": [{"company": "\xed\xa0\x80"}]}')
    assert "instances[0].company" in message and "surrogate" in message
