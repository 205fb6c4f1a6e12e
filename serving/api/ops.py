"""Operations endpoints: ``GET /healthz``, ``GET /metrics`` (Prometheus) and
``GET /openapi.json``, for probes, dashboards and API clients (not TF Serving's API)."""
import re
from typing import Any, Callable, Dict, List, Optional

from serving.api.deps import Backend
from serving.api.request import PROMETHEUS, Endpoint, Request, Response, json_response, require_method
from serving.metrics import Metrics, render_log_stats


class OpsAPI:
    """Health (503 until a version is loaded), metrics and the OpenAPI document.

    ``request_log`` is read only for its ``stats()`` counters; ``openapi``
    builds the document on each call (the served models can change), and
    without it there is no ``/openapi.json``.
    """

    def __init__(self, backend: Backend, metrics: Metrics, request_log: Optional[Any] = None,
                 openapi: Optional[Callable[[], Dict[str, Any]]] = None) -> None:
        self._backend = backend
        self._metrics = metrics
        self._request_log = request_log
        self._openapi = openapi

    def endpoints(self) -> List[Endpoint]:
        endpoints = [Endpoint(re.compile(r"^/healthz$"), self.health),
                     Endpoint(re.compile(r"^/metrics$"), self.metrics)]
        if self._openapi is not None:
            endpoints.append(Endpoint(re.compile(r"^/openapi\.json$"), self.openapi))
        return endpoints

    def health(self, request: Request, match: "re.Match[str]") -> Response:
        require_method(request, "GET")
        backend = self._backend
        models = {name: {"versions": backend.versions(name), "labels": backend.labels(name)}
                  for name in backend.model_names()}
        ready = any(m["versions"] for m in models.values())
        return json_response(200 if ready else 503,
                             {"status": "ok" if ready else "no model loaded", "models": models})

    def metrics(self, request: Request, match: "re.Match[str]") -> Response:
        require_method(request, "GET")
        text = self._metrics.render()
        if self._request_log is not None and hasattr(self._request_log, "stats"):
            text += render_log_stats(self._request_log.stats())
        return Response(200, text.encode("utf-8"), PROMETHEUS)

    def openapi(self, request: Request, match: "re.Match[str]") -> Response:
        require_method(request, "GET")
        return json_response(200, self._openapi())
