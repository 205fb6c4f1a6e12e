"""What the handlers are given: the parts of a gateway they depend on.

``serving.server.build_gateway`` builds the real parts (a backend, a router,
rollout controllers, a request log); the dispatcher passes each handler only
those it uses. The protocols say what a handler calls, so any backend (in
process or a TF Serving proxy) and any router fit.
"""
import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Protocol

from serving.routing import Route


@dataclasses.dataclass(frozen=True)
class Limits:
    """Request size limits (``serving.max_request_bytes`` / ``serving.max_batch_rows``)."""
    max_request_bytes: int = 1_048_576
    max_batch_rows: int = 1024


class Router(Protocol):
    def route(self, model: str, request_id: str, version: Optional[int],
              label: Optional[str]) -> Route: ...


class Backend(Protocol):
    demand: Any

    def model_names(self) -> List[str]: ...
    def versions(self, name: str) -> List[int]: ...
    def available_versions(self, name: str) -> List[int]: ...
    def labels(self, name: str) -> Dict[str, int]: ...
    def reload(self) -> None: ...
    def status(self, name: str, version: Optional[int]) -> Dict[str, Any]: ...
    def metadata(self, name: str, version: int) -> Dict[str, Any]: ...
    def claim_records(self, name: str, version: int) -> Any: ...  # serving.claim_records, or None
    def infer(self, name: str, version: int, verb: str, body: Mapping[str, Any],
              kinds: Mapping[str, str]) -> Dict[str, Any]: ...


class RequestLogger(Protocol):
    def log(self, **record: Any) -> None: ...
