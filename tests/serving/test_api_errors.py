"""serving.api.errors: the one mapping from our exceptions to TF Serving's error answers."""
import json

import pytest

from serving import rollout
from serving.api.errors import as_serving_error, error_response
from serving.errors import BadRequest, Conflict, Unavailable


@pytest.mark.parametrize("error, status, message", [
    (BadRequest("'fare' must be a number"), 400, "'fare' must be a number"),
    (Unavailable("batching queue is full"), 503, "batching queue is full"),
    (Conflict("label: row 0 already has the label 1.0"), 409, "label: row 0 already has the label 1.0"),
    # a request's version that is not on disk: TF Serving's NOT_FOUND wording
    (rollout.RouteVersionError("taxi", 9, "model 'taxi' has no version 9 on disk"), 404,
     "Servable not found for request: Specific(taxi, 9)"),
    (rollout.UnknownLabelError("blue", "model 'taxi' has no version label 'blue'"), 400,
     "Unrecognized servable version label: blue (label: model 'taxi' has no version label 'blue')"),
    (rollout.NoVersionsError("version", "model 'taxi' has no version on disk yet"), 503,
     "version: model 'taxi' has no version on disk yet"),
    # the same miss in an admin change is a bad argument
    (rollout.UnknownVersionError("version", "model 'taxi' has no version 42 on disk"), 400,
     "version: model 'taxi' has no version 42 on disk"),
    (rollout.RolloutError("percent", "expected a number in [0, 100], got 150"), 400,
     "percent: expected a number in [0, 100], got 150"),
])
def test_each_error_type_gets_tf_servings_status_and_body(error, status, message):
    response = error_response(error)
    assert (response.status, json.loads(response.body)) == (status, {"error": message})
    assert response.content_type == "application/json"


def test_anything_else_is_a_500_naming_the_error():
    try:
        raise KeyError("fare")
    except KeyError as error:
        assert as_serving_error(error) is None
        response = error_response(error, "POST", "/v1/models/taxi:predict")
    assert (response.status, json.loads(response.body)) == (500, {"error": "Internal error: 'fare'"})
