"""The control protocol's wire format: newline-delimited JSON, one object per line, versioned.

Requests (client → instance)::

    {"v": 1, "id": 7, "op": "status", "name": "api"}

Replies carry the request's ``id``::

    {"v": 1, "id": 7, "ok": true, "result": {...}}
    {"v": 1, "id": 7, "ok": false, "error": {"code": "unknown_forward", "message": "..."}}

After ``subscribe`` the instance also sends events, without an ``id``::

    {"v": 1, "event": {"event": "forward", "forward": "api", "state": "Running", ..., "status": {}}}

Event objects are the ``run --json`` lines (``to_json()``) with the full status (forward events)
or cluster (cluster events) added, so a client can rebuild the exact records. This module is
pure (no asyncio, no sockets) and imports nothing heavy: ``status`` and ``wait`` load it.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 64 * 1024
"""A request line longer than this is refused (``too_large``) and the connection closed."""
MAX_NAME = 256
"""Names and groups are config keys; anything longer is not one of ours."""

OPS = {
    "hello": (),
    "snapshot": (),
    "status": ("name",),
    "clusters": (),
    "logs": ("name",),
    "requests": ("name",),
    "traffic": ("name",),
    "start": ("name",),
    "stop": ("name",),
    "restart": ("name",),
    "start_group": ("group",),
    "stop_group": ("group",),
    "reload": (),
    "subscribe": (),
    "shutdown": (),
}
"""Every operation and the string arguments it requires."""


class ProtocolError(ValueError):
    """A request or reply that does not follow the protocol; ``code`` goes into the error reply."""

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def encode(obj: dict[str, Any]) -> bytes:
    """One protocol line (compact JSON + newline); never raises for JSON-able ``obj``."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def request(op: str, request_id: int, **args: Any) -> dict[str, Any]:
    """A request object."""
    return {"v": PROTOCOL_VERSION, "id": request_id, "op": op, **args}


def reply(request_id: Any, result: Any) -> dict[str, Any]:
    """A successful reply."""
    return {"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result}


def error_reply(request_id: Any, code: str, message: str) -> dict[str, Any]:
    """A failed reply; ``code`` is one of bad_request, unsupported_version, unknown_op,
    unknown_forward, too_large, busy, internal."""
    return {
        "v": PROTOCOL_VERSION,
        "id": request_id,
        "ok": False,
        "error": {"code": code, "message": message},
    }


def event_message(event_json: dict[str, Any]) -> dict[str, Any]:
    """A pushed event."""
    return {"v": PROTOCOL_VERSION, "event": event_json}


def decode_request(line: bytes) -> dict[str, Any]:
    """Parse and validate one request line; ProtocolError (with the id when known) otherwise."""
    if len(line) > MAX_REQUEST_BYTES:
        raise ProtocolError("too_large", f"request over {MAX_REQUEST_BYTES} bytes")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError is a ValueError; RecursionError: "[[[[…" nested past the limit.
        raise ProtocolError("bad_request", f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_request", "a request is a JSON object")
    rid = obj.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str)):
        raise ProtocolError("bad_request", "id must be an integer or a string")
    if isinstance(rid, str) and len(rid) > MAX_NAME:
        raise ProtocolError("bad_request", "id too long")
    version = obj.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"protocol version {version!r} not supported; this instance speaks {PROTOCOL_VERSION}",
            rid,
        )
    op = obj.get("op")
    if not isinstance(op, str) or op not in OPS:
        shown = op[:40] if isinstance(op, str) else op if op is None else type(op).__name__
        raise ProtocolError("unknown_op", f"unknown op {shown!r}; one of {', '.join(OPS)}", rid)
    for arg in OPS[op]:
        value = obj.get(arg)
        if not isinstance(value, str) or not value or len(value) > MAX_NAME:
            raise ProtocolError("bad_request", f"{op} needs {arg} (a non-empty string)", rid)
    return obj


def decode_message(line: bytes) -> dict[str, Any]:
    """Parse one line from the instance (a reply or an event); ProtocolError when malformed."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise ProtocolError("bad_reply", f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(obj, dict) or obj.get("v") != PROTOCOL_VERSION:
        raise ProtocolError("bad_reply", f"not a protocol {PROTOCOL_VERSION} message")
    return obj


# -- records ------------------------------------------------------------------------------------

_SPEC_FIELDS = (
    ("name", "name"), ("target", "target"), ("target_port", "targetPort"),
    ("local_port", "localPort"), ("namespace", "namespace"), ("type", "type"),
    ("swagger_path", "swaggerPath"), ("api_path", "apiPath"), ("context", "context"),
    ("kubeconfig", "kubeconfig"), ("address", "address"), ("group", "group"),
)  # fmt: skip
_STATUS_FIELDS = (
    ("reason", "reason"), ("local_port", "localPort"), ("port_moved_reason", "portMovedReason"),
    ("pid", "pid"), ("restarts", "restarts"), ("planned_restarts", "plannedRestarts"),
    ("pod", "pod"), ("running_since", "runningSince"), ("retry_at", "retryAt"),
    ("connections", "connections"), ("last_error", "lastError"), ("rss", "rss"),
    ("cpu_percent", "cpuPercent"),
)  # fmt: skip


def status_to_json(status: Any) -> dict[str, Any]:
    """A ``ForwardStatus`` as a JSON object (camelCase keys, the spec nested under ``spec``).

    ``spec.kubeconfig`` is the path the config names, never the file's contents.
    """
    spec = status.spec
    out: dict[str, Any] = {
        "name": spec.name,
        "state": status.state.value,
        "spec": {key: getattr(spec, attr) for attr, key in _SPEC_FIELDS},
        "url": status.url,
    }
    for attr, key in _STATUS_FIELDS:
        out[key] = getattr(status, attr)
    out["history"] = [[round(t.ts, 3), t.state.value, t.reason] for t in status.history]
    out["probeLatencies"] = [round(x, 6) for x in status.probe_latencies]
    out["traffic"] = status.traffic.as_json() if status.traffic is not None else None
    return out


_TRAFFIC_FIELDS = (
    ("opened", "opened"), ("active", "active"), ("waiting", "waiting"), ("failed", "failed"),
    ("ended_with_tunnel", "endedWithTunnel"), ("bytes_in", "bytesIn"),
    ("bytes_out", "bytesOut"), ("rate_in", "rateIn"), ("rate_out", "rateOut"),
)  # fmt: skip


def traffic_from_json(obj: dict[str, Any] | None) -> Any:
    """The ``Traffic`` record ``Traffic.as_json`` made, or None."""
    from kportforward.core.models import Traffic

    if not isinstance(obj, dict):
        return None
    return Traffic(**{attr: obj.get(key, 0) for attr, key in _TRAFFIC_FIELDS})


def status_from_json(obj: dict[str, Any]) -> Any:
    """The ``ForwardStatus`` ``status_to_json`` made (imports the core models lazily)."""
    from kportforward.core.models import ForwardSpec, ForwardStatus, Transition
    from kportforward.core.states import ForwardState

    spec = ForwardSpec(**{attr: obj["spec"][key] for attr, key in _SPEC_FIELDS})
    fields: dict[str, Any] = {attr: obj.get(key) for attr, key in _STATUS_FIELDS}
    for attr in ("restarts", "planned_restarts", "connections", "local_port"):
        fields[attr] = fields[attr] or 0
    fields["reason"] = fields["reason"] or ""
    return ForwardStatus(
        spec=spec,
        state=ForwardState(obj["state"]),
        history=tuple(Transition(t, ForwardState(s), r) for t, s, r in obj.get("history", ())),
        probe_latencies=tuple(obj.get("probeLatencies", ())),
        traffic=traffic_from_json(obj.get("traffic")),
        **fields,
    )


def cluster_to_json(cluster: Any) -> dict[str, Any]:
    """A ``ClusterStatus`` as JSON."""
    return {
        "context": cluster.context,
        "server": cluster.server,
        "reachable": cluster.reachable,
        "reason": cluster.reason,
        "fix": cluster.fix,
    }


def cluster_from_json(obj: dict[str, Any]) -> Any:
    """The ``ClusterStatus`` ``cluster_to_json`` made."""
    from kportforward.core.models import ClusterStatus

    return ClusterStatus(obj["context"], obj.get("server", ""), obj.get("reachable"),
                         obj.get("reason", ""), obj.get("fix", ""))  # fmt: skip


def event_to_json(event: Any) -> dict[str, Any]:
    """A supervisor event as the ``run --json`` object plus what rebuilds it exactly."""
    out: dict[str, Any] = dict(event.to_json())
    out["ts"] = event.ts
    kind = out.get("event")
    if kind == "forward":
        out["status"] = status_to_json(event.status)
        out["previous"] = event.previous.value if event.previous is not None else None
    elif kind == "cluster":
        out["cluster"] = cluster_to_json(event.cluster)
    return out


def event_from_json(obj: dict[str, Any]) -> Any:
    """The supervisor event ``event_to_json`` made; ProtocolError for an unknown kind."""
    from kportforward.core.states import ForwardState
    from kportforward.supervisor.events import (
        ClusterEvent,
        ConfigReloaded,
        ForwardEvent,
        NoticeEvent,
        TrafficEvent,
    )

    kind = obj.get("event")
    ts = float(obj["ts"])
    if kind == "forward":
        previous = obj.get("previous")
        return ForwardEvent(
            ts,
            status_from_json(obj["status"]),
            ForwardState(previous) if previous else None,
            obj.get("reason", ""),
        )
    if kind == "cluster":
        return ClusterEvent(ts, cluster_from_json(obj["cluster"]), obj.get("reason", ""))
    if kind == "notice":
        return NoticeEvent(ts, obj.get("level", "information"), obj.get("message", ""))
    if kind == "reload":
        return ConfigReloaded(
            ts,
            tuple(obj.get("added", ())),
            tuple(obj.get("removed", ())),
            tuple(obj.get("changed", ())),
            tuple(obj.get("warnings", ())),
        )
    if kind == "traffic":
        traffic = traffic_from_json(obj.get("traffic"))
        if traffic is not None:
            return TrafficEvent(ts, str(obj.get("forward", "")), traffic)
    raise ProtocolError("bad_reply", f"unknown event kind {kind!r}")
