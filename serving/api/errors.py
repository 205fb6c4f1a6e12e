"""The one place where our exceptions become TF Serving's error answers.

Handlers, routers, backends and the rollout controller raise; nothing below
the dispatcher renders an error. Three kinds arrive here:

* ``serving.errors.ServingError`` (URL, body and schema validation, backends,
  batching): it already carries TF Serving's status; answered as is.
* ``serving.rollout.RolloutError``: the controller knows nothing of HTTP, so
  its types are mapped here, most specific first (a request's unknown version
  is TF Serving's 404, the same miss in an admin change is a 400).
* anything else is a bug: 500, logged with its traceback.

The body is always TF Serving's ``{"error": "<message>"}``.
"""
import logging
from typing import Optional

from serving import rollout
from serving.api.request import Response, json_response
from serving.errors import BadRequest, NotFound, ServingError, Unavailable

logger = logging.getLogger(__name__)


def as_serving_error(err: BaseException) -> Optional[ServingError]:
    """``err`` with TF Serving's status and message; None when it is not ours (a bug)."""
    if isinstance(err, ServingError):
        return err
    if isinstance(err, rollout.RouteVersionError):
        return NotFound(f"Servable not found for request: Specific({err.model}, {err.version})")
    if isinstance(err, rollout.UnknownLabelError):
        return BadRequest(f"Unrecognized servable version label: {err.label} ({err})")
    if isinstance(err, rollout.NoVersionsError):
        return Unavailable(str(err))
    if isinstance(err, rollout.RolloutError):
        return BadRequest(str(err))
    return None


def error_response(err: BaseException, method: str = "", path: str = "") -> Response:
    """The answer to a request that raised ``err`` (call from the ``except`` block:
    an unexpected error is logged with its traceback, naming the request)."""
    known = as_serving_error(err)
    if known is None:
        logger.exception("Internal error on %s %s", method, path)
        return json_response(500, {"error": f"Internal error: {err}"})
    return json_response(known.status, {"error": known.message}, known.headers)
