"""Failures of calls to the Kubernetes API, translated into one-line KubeApiErrors with a kind.

Kinds: ``auth`` (401), ``forbidden`` (403), ``notfound`` (404), ``network`` (refused, DNS, timeouts,
broken connections, 5xx), ``config`` (kubeconfig, TLS set-up, exec credential plugins).
Messages quote the server's Status message at most, never request headers or bodies we sent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from kportforward.errors import KPortForwardError, KubeconfigError
from kportforward.logs import redact

log = logging.getLogger(__name__)

KINDS = ("ok", "auth", "network", "forbidden", "config", "notfound")


class KubeApiError(KPortForwardError):
    """A Kubernetes API call failed; ``kind`` says how (auth, network, forbidden, config …)."""

    def __init__(self, kind: str, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(redact(message), hint)
        self.kind = kind
        self.status = status


def first_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of ``text``, stripped and cut to ``limit`` characters."""
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def _status_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
            if isinstance(message, str) and message:
                return first_line(message, 300)
        except (ValueError, AttributeError):
            pass
    return " ".join(str(getattr(exc, "reason", "") or "").split())[:300]


def classify(exc: BaseException, server: str, what: str) -> KubeApiError:
    """Translate any failure of a call to ``server`` into a KubeApiError with a one-line message."""
    if isinstance(exc, KubeApiError):
        return exc
    if isinstance(exc, KubeconfigError):
        return KubeApiError("config", exc.message, exc.hint)
    status = getattr(exc, "status", None)
    is_api = any(c.__name__ == "ApiException" for c in type(exc).__mro__)
    if is_api and isinstance(status, int):
        detail = _status_message(exc)
        if status == 401:
            return KubeApiError(
                "auth",
                f"credentials rejected by {server}: You must be logged in to the server "
                f"({detail or 'Unauthorized'})",
                "log in again or fix the kubeconfig user",
                status,
            )
        if status == 403:
            return KubeApiError(
                "forbidden", f"{what} on {server}: {detail or 'Forbidden'}", "", 403
            )
        if status == 404:
            return KubeApiError("notfound", f"{what} on {server}: {detail or 'not found'}", "", 404)
        if status == 0:  # the REST layer's wrapping of TLS failures
            return KubeApiError(
                "config",
                f"TLS to {server} failed: {first_line(detail)}",
                "check certificate-authority / insecure-skip-tls-verify in the kubeconfig",
            )
        return KubeApiError("network", f"{what} on {server}: HTTP {status} {detail}", "", status)
    name = type(exc).__name__
    if name in ("ReadTimeoutError", "ConnectTimeoutError", "TimeoutError", "timeout") or isinstance(
        exc, TimeoutError
    ):
        return KubeApiError("network", f"no answer from {server} ({what})", "is the cluster up?")
    if name == "ProtocolError":
        # Its text may quote whatever the server sent instead of a status line.
        return KubeApiError("network", f"connection to {server} broken ({what})", "is it up?")
    if not isinstance(exc, OSError) and not type(exc).__module__.startswith("urllib3"):
        log.debug("unexpected error from %s (%s)", server, what, exc_info=exc)
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None and not isinstance(reason, str) else exc)
    text = text.replace("Failed to establish a new connection: ", "")
    if "object at 0x" in text and ">: " in text:  # urllib3 puts the connection's repr first
        text = text.split(">: ", 1)[1]
    return KubeApiError(
        "network", f"cannot reach {server}: {first_line(text)}", "is the cluster up?"
    )
