"""Rollout administration: ``GET /v1/admin/models/<m>/rollout`` (status) and
``POST /v1/admin/models/<m>/rollout:<action>`` (canary, shadow, promote,
rollback, clear), behind ``Authorization: Bearer <token>``.

The rollout itself is ``serving.rollout.RolloutController`` (shared with the
CLI); this module only checks the caller and the body, applies the action and
reloads the backend. Rollout errors are raised as they are and answered by
``serving.api.errors``.
"""
import hmac
import logging
import re
from typing import Any, Callable, Dict, List, Mapping, Optional

from serving.api import request as req
from serving.api.deps import Backend
from serving.api.request import Endpoint, Request, Response, json_response
from serving.errors import BadRequest, NotFound, ServingError, Unauthorized

logger = logging.getLogger(__name__)

ADMIN_PATH = re.compile(r"^/v1/admin/models/(?P<name>[^/:]+)/rollout(?::(?P<action>[^/:]*))?$")
ROLLOUT_ACTIONS = ("canary", "shadow", "promote", "rollback", "clear")


class AdminAPI:
    """Rollout status and actions for one gateway.

    ``rollouts`` gives a model's rollout controller (None: the gateway has no
    models.config, so rollouts answer 501). Without a token the endpoints are
    disabled (401), never open.
    """

    def __init__(self, backend: Backend, rollouts: Optional[Callable[[str], Any]] = None,
                 token: Optional[str] = None, token_env: str = "SERVING_ADMIN_TOKEN") -> None:
        self._backend = backend
        self._rollouts = rollouts
        self._token = token or None
        self._token_env = token_env

    def endpoints(self) -> List[Endpoint]:
        return [Endpoint(ADMIN_PATH, self.rollout)]

    def rollout(self, request: Request, match: "re.Match[str]") -> Response:
        self._authorize(request.headers)
        name = req.model_name(match.group("name"), self._backend.model_names())
        action = match.group("action")
        if self._rollouts is None:
            raise ServingError("rollouts are not available in this gateway", status=501)
        controller = self._rollouts(name)
        if action is None:
            req.require_method(request, "GET")
            return json_response(200, controller.state().to_dict())
        req.require_method(request, "POST")
        if action not in ROLLOUT_ACTIONS:
            raise NotFound(f"unknown rollout action '{action}'; expected one of {list(ROLLOUT_ACTIONS)}")
        params = req.parse_json(request.body) if request.body.strip() else {}
        return json_response(200, self._apply(name, controller, action, params))

    def _authorize(self, headers: Mapping[str, str]) -> None:
        if self._token is None:
            raise Unauthorized(f"admin endpoints are disabled: the gateway was started without "
                               f"${self._token_env}")
        header = headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing 'Authorization: Bearer <token>' header")
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._token.encode("utf-8")):
            raise Unauthorized("wrong admin token")

    def _apply(self, name: str, controller: Any, action: str,
               params: Mapping[str, Any]) -> Dict[str, Any]:
        """Applies one rollout change, then reloads the backend so the versions
        it now routes to are loaded before the answer (no request can be
        routed to a version that is not loaded yet)."""
        unknown = sorted(set(params) - {"version", "percent"})
        if unknown:
            raise BadRequest(f"unexpected field(s) {unknown}; expected 'version' and/or 'percent'")
        version = params.get("version")
        if action == "canary":
            if "percent" not in params:
                raise BadRequest("canary: missing 'percent' (a number in [0, 100])")
            state = controller.canary(version, params["percent"])
        elif action == "shadow":
            state = controller.shadow(version)
        elif action == "promote":
            state = controller.promote(version)
        elif action == "rollback":
            state = controller.rollback()
        else:
            state = controller.clear()
        self._backend.reload()
        logger.info("Rollout of %s: %s %s -> %s", name, action, dict(params), state.to_dict())
        return state.to_dict()
