"""Request errors with the HTTP status TF Serving would answer.

TF Serving's REST layer turns a gRPC status into ``{"error": "<message>"}``
with a fixed mapping (INVALID_ARGUMENT/FAILED_PRECONDITION -> 400, NOT_FOUND ->
404, UNAVAILABLE -> 503, UNAUTHENTICATED -> 401, ...). Every layer of the
gateway raises one of these, so the HTTP adapter has one place that renders
errors and clients written for TF Serving see the same codes and body shape.
"""


from typing import Any, Dict, Iterable, Optional, Sequence


def shorten(value: Any, limit: int = 60) -> str:
    """repr() of a request value, cut for error messages (a value may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class ServingError(Exception):
    """A request failed; carries the HTTP status sent back as {"error": ...}
    and any headers the answer needs (``Allow`` on a 405)."""

    status = 500

    def __init__(self, message: str, status: int = 0,
                 headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        if status:
            self.status = status


class BadRequest(ServingError):
    """INVALID_ARGUMENT: the body or URL does not fit the API or the schema."""
    status = 400


def reject_unexpected(given: Iterable[str], allowed: Sequence[str], where: str, kind: str,
                      expectation: str) -> None:
    """400 listing every name outside ``allowed``: one wording for request bodies,
    predict inputs and feedback items ("unexpected <kind>(s) [...]; <expectation> [...]")."""
    unexpected = sorted(set(given) - set(allowed))
    if unexpected:
        raise BadRequest(f"{where}: unexpected {kind}(s) {unexpected}; {expectation} {list(allowed)}")


class Unauthorized(ServingError):
    """UNAUTHENTICATED: an admin call without the right bearer token."""
    status = 401


class NotFound(ServingError):
    """NOT_FOUND: unknown model, version, label or URL."""
    status = 404


class MethodNotAllowed(ServingError):
    """A known URL called with the wrong HTTP method; ``Allow`` names the right one (RFC 9110)."""
    status = 405

    def __init__(self, message: str, allowed: str) -> None:
        super().__init__(message, headers={"Allow": allowed})


class Conflict(ServingError):
    """ALREADY_EXISTS/ABORTED: the request contradicts stored state (a row already labelled)."""
    status = 409


class PayloadTooLarge(ServingError):
    """The body is over ``serving.max_request_bytes``."""
    status = 413


class Unavailable(ServingError):
    """UNAVAILABLE: the batching queue is full or the backend is unreachable."""
    status = 503
