"""What the UI and ``run`` may ask of a supervisor. The real one is ``supervisor.Supervisor``;
tests may drive the UI with a scripted implementation of the same protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from kportforward.core.models import ClusterStatus, Config, ForwardStatus
from kportforward.supervisor.events import SupervisorEvent
from kportforward.supervisor.httplog import HttpRequest


class SupervisorProtocol(Protocol):
    """Commands in, immutable snapshots and events out."""

    config: Config

    async def start(self) -> None:
        """Resolve ports and start every forward; returns once all are spawned or queued."""

    def snapshot(self) -> tuple[ForwardStatus, ...]:
        """Every forward's current status, sorted by name. Cheap; callable at any rate."""

    def status(self, name: str) -> ForwardStatus:
        """One forward's status (KeyError if unknown)."""

    def clusters(self) -> tuple[ClusterStatus, ...]:
        """Exactly the clusters the current forwards use, with their reachability."""

    def events(self) -> AsyncIterator[SupervisorEvent]:
        """The single event stream, in order. One consumer."""

    def log_lines(self, name: str) -> tuple[str, ...]:
        """The last few hundred lines kubectl printed for ``name`` (stdout and stderr)."""

    def http_requests(self, name: str) -> tuple[HttpRequest, ...]:
        """The HTTP requests seen through ``name``'s front door, oldest first."""

    def traffic_history(self, name: str, seconds: int = 60) -> list[tuple[int, int]]:
        """Bytes (in, out) per second through ``name``'s front door, oldest first."""

    async def stop(self, name: str) -> None:
        """Stop one forward (its kubectl exits); it stays Stopped until started."""

    async def start_forward(self, name: str) -> None:
        """Start a Stopped forward, or retry a Failed/Cooldown/Suspended one now."""

    async def restart(self, name: str) -> None:
        """Stop and start one forward now (a new kubectl, a new pid)."""

    async def stop_group(self, group: str) -> None:
        """Stop every forward of ``group``."""

    async def start_group(self, group: str) -> None:
        """Start every forward of ``group``."""

    async def reload(self, config: Config) -> None:
        """Apply a config: added start, removed stop, changed restart, unchanged keep their pid."""

    async def shutdown(self) -> None:
        """Stop everything; no kubectl is left. Idempotent."""

    def kill_all(self) -> int:
        """SIGKILL every kubectl now (a forced quit); how many were killed."""
