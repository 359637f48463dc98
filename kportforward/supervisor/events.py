"""The event records the supervisor puts on its one queue, in the order things happen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kportforward.core.models import ClusterStatus, ForwardStatus
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
        """The ``run --json`` line: ts, forward, state, localPort, pid, restarts, reason."""
        s = self.status
        return {
            "ts": round(self.ts, 3),
            "forward": s.name,
            "state": s.state.value,
            "localPort": s.local_port or s.spec.local_port,
            "pid": s.pid,
            "restarts": s.restarts,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    """A cluster's reachability or the current context changed."""

    ts: float
    cluster: ClusterStatus
    reason: str


@dataclass(frozen=True, slots=True)
class NoticeEvent:
    """Something to show a person once: config reloaded, a port moved, a bad config on reload."""

    ts: float
    level: str
    """``information``, ``warning`` or ``error``."""
    message: str


SupervisorEvent = ForwardEvent | ClusterEvent | NoticeEvent
