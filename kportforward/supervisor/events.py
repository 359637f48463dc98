"""The event records the supervisor puts on its one queue, in the order things happen."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kportforward.core.models import ClusterStatus, ForwardStatus, Traffic
from kportforward.core.states import ForwardState


@dataclass(frozen=True, slots=True)
class ForwardEvent:
    """One forward changed state; emitted exactly once per transition."""

    ts: float
    """Wall-clock time (``time.time()``)."""
    status: ForwardStatus
    """The forward's snapshot just after the transition."""
    previous: ForwardState | None
    reason: str

    @property
    def forward(self) -> str:
        """The forward's name."""
        return self.status.name

    def to_json(self) -> dict[str, Any]:
        """The ``run --json`` line: ts, time, forward, state, localPort, pid, restarts, reason,
        and retryAt while a countdown runs."""
        s = self.status
        out = {
            "ts": round(self.ts, 3),
            "time": iso_time(self.ts),
            "event": "forward",
            "forward": s.name,
            "state": s.state.value,
            "localPort": s.local_port or s.spec.local_port,
            "pid": s.pid,
            "restarts": s.restarts,
            "reason": self.reason,
        }
        if s.retry_at is not None:
            out["retryAt"] = iso_time(s.retry_at)
        if s.pod:
            out["pod"] = s.pod
        return out


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    """A cluster's reachability or the current context changed."""

    ts: float
    cluster: ClusterStatus
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The ``run --json`` line for a cluster change."""
        c = self.cluster
        return {
            "ts": round(self.ts, 3),
            "time": iso_time(self.ts),
            "event": "cluster",
            "context": c.context,
            "server": c.server,
            "reachable": c.reachable,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class NoticeEvent:
    """Something to show a person once: config reloaded, a port moved, a bad config on reload."""

    ts: float
    level: str
    """``information``, ``warning`` or ``error``."""
    message: str

    def to_json(self) -> dict[str, Any]:
        """The ``run --json`` line for a notice."""
        return {
            "ts": round(self.ts, 3),
            "time": iso_time(self.ts),
            "event": "notice",
            "level": self.level,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ConfigReloaded:
    """A config was applied while running: which forwards it added, removed and changed, and
    the warnings it carried (an unknown key, a shared port …)."""

    ts: float
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """``config reloaded: 1 added, 2 changed`` (or ``no forward changed``)."""
        parts = [
            f"{len(names)} {word}"
            for names, word in ((self.added, "added"), (self.removed, "removed"),
                                (self.changed, "changed"))
            if names
        ]  # fmt: skip
        return "config reloaded: " + (", ".join(parts) or "no forward changed")

    def to_json(self) -> dict[str, Any]:
        """The ``run --json`` line for a reload."""
        return {
            "ts": round(self.ts, 3),
            "time": iso_time(self.ts),
            "event": "reload",
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "warnings": list(self.warnings),
            "message": self.summary,
        }


def iso_time(ts: float) -> str:
    """``ts`` as local ISO-8601 with the UTC offset, to the millisecond."""
    local = time.localtime(ts)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    offset = time.strftime("%z", local)
    return f"{stamp}.{int(ts % 1 * 1000):03d}{offset[:3]}:{offset[3:]}"


@dataclass(frozen=True, slots=True)
class TrafficEvent:
    """A forward's front door counted traffic (at most one per forward per second)."""

    ts: float
    forward: str
    traffic: Traffic

    def to_json(self) -> dict[str, Any]:
        """The ``run --json`` line for traffic."""
        return {
            "ts": round(self.ts, 3),
            "time": iso_time(self.ts),
            "event": "traffic",
            "forward": self.forward,
            "traffic": self.traffic.as_json(),
        }


SupervisorEvent = ForwardEvent | ClusterEvent | NoticeEvent | ConfigReloaded | TrafficEvent
