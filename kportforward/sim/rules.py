"""Fault rules: answer matching requests with 401/403/404/… and the Status kubectl would get."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kportforward.sim import objects as o
from kportforward.sim.api import portforward_target, qualified, route
from kportforward.sim.http import REASONS, Request

_REASON = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
USER = "dev"


@dataclass(frozen=True)
class Rule:
    """Requests whose method (None: any) and path with query (re.search) match get ``status``."""

    id: int
    status: int
    method: str | None
    path_regex: re.Pattern[str]
    message: str | None = None

    def matches(self, req: Request) -> bool:
        """Whether this rule answers ``req``."""
        if self.method is not None and self.method.upper() != req.method:
            return False
        return self.path_regex.search(req.target) is not None


def denial(status: int, req: Request, message: str | None = None) -> dict[str, Any]:
    """The Status body for ``status`` on ``req``, worded like the real API server's."""
    reason = _REASON.get(status, REASONS.get(status, "Unknown").replace(" ", ""))
    if message is None:
        message = _message(status, req)
    return o.status_json(status, reason, message)


def _message(status: int, req: Request) -> str:
    if status == 401:
        return "Unauthorized"
    pf = portforward_target(req.path)
    target = route(req.path)
    if pf is not None:
        namespace, name = pf
        resource, group, desc, verb = "pods/portforward", "", f'pods "{name}"', "create"
    elif target is not None:
        resource, namespace, name = target  # type: ignore[assignment]
        group = "apps" if "." in qualified(resource) else ""
        desc = f'{qualified(resource)} "{name}"' if name else qualified(resource)
        verb = "get" if name else ("watch" if req.query.get("watch") == "true" else "list")
    else:
        if status == 403:
            return f'forbidden: User "{USER}" cannot get path "{req.path}"'
        if status == 404:
            return "the server could not find the requested resource"
        return REASONS.get(status, "error")
    if status == 403:
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        return (
            f'{desc} is forbidden: User "{USER}" cannot {verb} resource "{resource}" '
            f'in API group "{group}" {scope}'
        )
    if status == 404:
        return f"{desc} not found" if name else "the server could not find the requested resource"
    return REASONS.get(status, "error")
