"""Which version answers a request: labels, canary split, shadow.

Two routers share one interface (``route(model, request_id, version, label)``):

* ``LabelRouter``: TF Serving's own behaviour. An explicit version or label,
  else the ``stable`` label, else the latest served version (so a freshly
  pushed version takes over, as with TF Serving's default policy).
* ``RolloutRouter``: once a model has a ``stable`` label in models.config,
  unlabelled traffic is split by ``serving.rollout.RolloutController``
  (canary percentage by request id, a shadow version answering silently).
  Before that it defers to ``LabelRouter``, so starting a gateway never
  rewrites models.config by itself.
"""
import dataclasses
import os
from typing import Any, Callable, Dict, List, Optional, Protocol

from serving import models_config
from serving.errors import BadRequest, Unavailable


@dataclasses.dataclass(frozen=True)
class Route:
    """Where one request goes (the one type both routers and the rollout controller return).

    ``primary`` answers the client; ``shadow`` (when not None) answers too, and
    its answer is only logged. ``reason`` says why (``version``, ``label:<l>``,
    ``canary``, ``stable``, ``latest``), for logs and metrics.
    """
    primary: int
    shadow: Optional[int] = None
    reason: str = ""


class VersionSource(Protocol):
    def versions(self, name: str) -> List[int]: ...
    def available_versions(self, name: str) -> List[int]: ...
    def labels(self, name: str) -> Dict[str, int]: ...
    def reload(self) -> None: ...


def resolve_label(backend: VersionSource, model: str, label: str) -> int:
    """A label's version, with TF Serving's error for an unknown label."""
    labels = backend.labels(model)
    if label not in labels:
        raise BadRequest(f"Unrecognized servable version label: {label} (model {model} has "
                         f"labels {sorted(labels)})")
    return labels[label]


class LabelRouter:
    """Explicit version or label, else stable, else the latest served version."""

    def __init__(self, backend: VersionSource) -> None:
        self._backend = backend

    def route(self, model: str, request_id: str, version: Optional[int],
              label: Optional[str]) -> Route:
        del request_id
        if version is not None:
            return Route(version, reason="version")
        if label is not None:
            return Route(resolve_label(self._backend, model, label), reason=f"label:{label}")
        labels = self._backend.labels(model)
        if models_config.STABLE in labels:
            return Route(labels[models_config.STABLE], reason="stable")
        versions = self._backend.versions(model)
        if not versions:
            raise Unavailable(f"Servable not found for request: Latest({model}): no version loaded")
        return Route(max(versions), reason="latest")


def state_path_for(models_config_path: str, model: str) -> str:
    """The rollout state file beside models.config (one per model)."""
    return os.path.join(os.path.dirname(os.path.abspath(models_config_path)), f"{model}.rollout.json")


class RolloutRouter:
    """Routes through the model's RolloutController once it has a stable label.

    The controller's ``RolloutError``s pass through unchanged: the gateway
    turns them into TF Serving's answers in one place (``serving.api.errors``).
    """

    def __init__(self, backend: VersionSource, controller_for: Callable[[str], Any]) -> None:
        self._backend = backend
        self._labels = LabelRouter(backend)
        self._controller_for = controller_for

    def route(self, model: str, request_id: str, version: Optional[int],
              label: Optional[str]) -> Route:
        if models_config.STABLE not in self._backend.labels(model):
            return self._labels.route(model, request_id, version, label)
        route = self._controller_for(model).route(request_id, version, label)
        needed = {route.primary} | ({route.shadow} if route.shadow is not None else set())
        if not needed <= set(self._backend.versions(model)):
            # models.config was changed by another process and not polled yet:
            # load now rather than fail the request.
            self._backend.reload()
        return route
