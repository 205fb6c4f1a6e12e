"""Inference answers written by orjson: the same JSON values as before, TF Serving's
NaN/Infinity kept, and float32 outputs rendered by their shortest repr."""
import json
import math

import numpy as np
import pytest

from serving import codec
from serving.api import request as req


@pytest.mark.parametrize("payload", [
    {"predictions": [[0.5], [1e-05], [3.4e+38], [-0.0]]},
    {"predictions": [{"outputs": [0.25], "label": "é"}, {"outputs": [1.0], "label": "b"}]},
    {"outputs": {"a": [[1, 2]], "b": ["x"]}},
    {"results": [[["0", 0.25], ["1", 0.75]]]},
])
def test_answer_holds_the_same_json_values(payload):
    response = req.answer_response(200, payload, {"X-Model-Version": "3"})
    assert (response.status, response.content_type, response.headers) == (
        200, req.JSON, {"X-Model-Version": "3"})
    assert json.loads(response.body) == payload


@pytest.mark.parametrize("payload", [
    {"predictions": [[float("nan")], [float("inf")], [float("-inf")]]},
    {"predictions": [2 ** 70]},                      # beyond orjson's integers
    {"predictions": [None]},
])
def test_answers_orjson_cannot_write_alike_are_written_by_json(payload):
    assert req.answer_response(200, payload).body == req.json_response(200, payload).body


def test_nan_keeps_tf_servings_wire_format():
    body = req.answer_response(200, {"predictions": [[float("nan")], [float("inf")]]}).body
    assert body == b'{"predictions": [[NaN], [Infinity]]}'


@pytest.mark.parametrize("shape", [(64, 1), (1, 1), (7,), (3, 2, 2), (0, 1)])
def test_float32_outputs_render_by_their_shortest_repr(shape):
    rng = np.random.default_rng(sum(shape))
    array = (rng.standard_normal(shape) * 10.0 ** rng.integers(-40, 38, size=shape)).astype(np.float32)
    expected = np.array([float(str(v)) for v in array.ravel()]).reshape(shape).tolist()
    assert codec.to_json_value(array) == expected


def test_float32_scalars_slices_and_non_finite_values():
    assert codec.to_json_value(np.float32(0.1)) == 0.1
    assert codec.to_json_value(np.arange(20, dtype=np.float32).reshape(4, 5)[:, 1:3]) == [
        [1.0, 2.0], [6.0, 7.0], [11.0, 12.0], [16.0, 17.0]]
    values = codec.to_json_value(np.array([np.nan, np.inf, 0.1], dtype=np.float32))
    assert math.isnan(values[0]) and values[1:] == [math.inf, 0.1]
