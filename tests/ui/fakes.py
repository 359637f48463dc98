"""A scripted SupervisorProtocol implementation for fast UI tests, snapshots and benchmarks.

It starts no process: commands change statuses the way the real supervisor would (restart gives a
new pid, stop goes Stopped, start goes Running) and emit one ForwardEvent per transition.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace

from kportforward.core.models import (
    ClusterStatus,
    Config,
    ForwardSpec,
    ForwardStatus,
    Settings,
    Traffic,
    Transition,
)
from kportforward.core.states import ForwardState
from kportforward.supervisor.events import (
    ClusterEvent,
    ConfigReloaded,
    ForwardEvent,
    NoticeEvent,
    SupervisorEvent,
)

_BROKEN = object()

FROZEN_NOW = 1_790_000_000.0
"""A fixed wall-clock time (2026-09-21 14:13:20 UTC) for snapshots."""


class ScriptedSupervisor:
    """In-memory supervisor: statuses set by the test, commands recorded and applied."""

    def __init__(
        self,
        config: Config,
        statuses: Iterable[ForwardStatus] = (),
        clusters: Iterable[ClusterStatus] = (),
        *,
        clock=lambda: FROZEN_NOW,
        start_delay: float = 0.0,
        shutdown_delay: float = 0.0,
    ) -> None:
        self.config = config
        self._clock = clock
        self._statuses: dict[str, ForwardStatus] = {s.name: s for s in statuses}
        for spec in config.forwards:
            self._statuses.setdefault(
                spec.name, ForwardStatus(spec=spec, state=ForwardState.STARTING, reason="queued")
            )
        self._clusters = {c.context: c for c in clusters}
        self._queue: asyncio.Queue[SupervisorEvent | None] | None = None
        self._pids = itertools.count(4000)
        self.calls: list[tuple[str, str]] = []
        self.logs: dict[str, list[str]] = {}
        self.requests: dict[str, list] = {}
        self.history: dict[str, list[tuple[int, int]]] = {}
        self.started = False
        self.shutdown_calls = 0
        self.start_delay = start_delay
        self.shutdown_delay = shutdown_delay
        self.fail_on: set[str] = set()
        """Command verbs that raise, to test error notifications."""

    @property
    def queue(self) -> asyncio.Queue[SupervisorEvent | None]:
        """The event queue (created lazily on the running loop)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        return self._queue

    # --- protocol ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Mark started (after ``start_delay``)."""
        if self.start_delay:
            await asyncio.sleep(self.start_delay)
        self.started = True
        self.calls.append(("start", ""))

    def snapshot(self) -> tuple[ForwardStatus, ...]:
        """Every status, by name."""
        return tuple(self._statuses[n] for n in sorted(self._statuses))

    def status(self, name: str) -> ForwardStatus:
        """One status."""
        return self._statuses[name]

    def clusters(self) -> tuple[ClusterStatus, ...]:
        """Every cluster."""
        return tuple(self._clusters.values())

    async def stop_group(self, group: str) -> None:
        """Stop each forward of ``group``."""
        for status in self.snapshot():
            if status.spec.group == group:
                await self.stop(status.name)

    async def start_group(self, group: str) -> None:
        """Start each forward of ``group``."""
        for status in self.snapshot():
            if status.spec.group == group:
                await self.start_forward(status.name)

    def http_requests(self, name: str) -> tuple:
        """What the test put in ``requests``."""
        return tuple(self.requests.get(name, ()))

    def traffic_history(self, name: str, seconds: int = 60) -> list[tuple[int, int]]:
        """What the test put in ``history``."""
        return list(self.history.get(name, ()))[-seconds:]

    def kill_all(self) -> int:
        """Nothing to kill here."""
        self.calls.append(("kill_all", ""))
        return 0

    async def events(self) -> AsyncIterator[SupervisorEvent]:
        """Events as the test emits them, until shutdown."""
        while True:
            event = await self.queue.get()
            if event is None:
                return
            if event is _BROKEN:
                raise RuntimeError("event stream broke (scripted)")
            yield event

    def log_lines(self, name: str) -> tuple[str, ...]:
        """What the test put in ``logs``."""
        if name not in self._statuses:
            raise KeyError(name)
        return tuple(self.logs.get(name, ()))

    async def stop(self, name: str) -> None:
        """Go Stopped."""
        self._command("stop", name)
        self.set_state(name, ForwardState.STOPPED, "stopped by user", pid=None, running_since=None)

    async def start_forward(self, name: str) -> None:
        """Go Running with a new pid."""
        self._command("start_forward", name)
        self.set_state(
            name,
            ForwardState.RUNNING,
            "started by user",
            pid=next(self._pids),
            running_since=self._clock(),
        )

    async def restart(self, name: str) -> None:
        """Reconnecting, then Running with a new pid."""
        self._command("restart", name)
        old = self._statuses[name]
        self.set_state(name, ForwardState.RECONNECTING, "restart requested", pid=None)
        self.set_state(
            name,
            ForwardState.RUNNING,
            "ready",
            pid=next(self._pids),
            running_since=self._clock(),
            planned_restarts=old.planned_restarts + 1,  # as the real one: R is not a failure
        )

    async def reload(self, config: Config) -> None:
        """Take the new config; forwards not in it disappear."""
        self.calls.append(("reload", ""))
        self.config = config
        names = {s.name for s in config.forwards}
        self._statuses = {n: s for n, s in self._statuses.items() if n in names}
        for spec in config.forwards:
            self._statuses.setdefault(
                spec.name, ForwardStatus(spec=spec, state=ForwardState.STARTING)
            )
        self.queue.put_nowait(
            ConfigReloaded(self._clock(), warnings=tuple(str(w) for w in config.warnings))
        )

    async def shutdown(self) -> None:
        """End the event stream (after ``shutdown_delay``)."""
        self.shutdown_calls += 1
        if self.shutdown_delay:
            await asyncio.sleep(self.shutdown_delay)
        self.queue.put_nowait(None)

    # --- scripting -----------------------------------------------------------------------------

    def _command(self, verb: str, name: str) -> None:
        self.calls.append((verb, name))
        if verb in self.fail_on:
            raise RuntimeError(f"scripted failure of {verb}")
        if name not in self._statuses:
            raise KeyError(name)

    def set_state(self, name: str, state: ForwardState, reason: str, **changes) -> ForwardStatus:
        """Move ``name`` to ``state`` and emit the event (as the real supervisor does)."""
        old = self._statuses[name]
        ts = self._clock()
        new = replace(
            old,
            state=state,
            reason=reason,
            history=(*old.history, Transition(ts, state, reason))[-50:],
            **changes,
        )
        self._statuses[name] = new
        self.queue.put_nowait(ForwardEvent(ts, new, old.state, reason))
        return new

    def put_status(self, status: ForwardStatus) -> None:
        """Emit an arbitrary status (for floods in benchmarks)."""
        previous = self._statuses.get(status.name)
        self._statuses[status.name] = status
        self.queue.put_nowait(
            ForwardEvent(self._clock(), status, previous.state if previous else None, status.reason)
        )

    def set_cluster(self, cluster: ClusterStatus, reason: str = "") -> None:
        """Change a cluster's reachability."""
        self._clusters[cluster.context] = cluster
        self.queue.put_nowait(ClusterEvent(self._clock(), cluster, reason))

    def break_stream(self) -> None:
        """Make the event stream raise (the UI must fall back to snapshots)."""
        self.queue.put_nowait(_BROKEN)  # type: ignore[arg-type]

    def set_quietly(self, name: str, **changes) -> None:
        """Change a status without an event (as a broken stream would hide it)."""
        self._statuses[name] = replace(self._statuses[name], **changes)

    def notice(self, message: str, level: str = "information") -> None:
        """Emit a notice."""
        self.queue.put_nowait(NoticeEvent(self._clock(), level, message))


def spec(name: str, port: int, **kw) -> ForwardSpec:
    """A ForwardSpec with sensible defaults."""
    kw.setdefault("target", f"service/{name}")
    kw.setdefault("target_port", 80)
    kw.setdefault("namespace", "default")
    kw.setdefault("type", "rest")
    return ForwardSpec(name=name, local_port=port, **kw)


def config_of(specs: Iterable[ForwardSpec], **settings) -> Config:
    """A Config with these forwards (sorted by name) and settings."""
    return Config(
        forwards=tuple(sorted(specs, key=lambda s: s.name)),
        settings=Settings(**settings),
        sources=("<test>",),
    )


def every_state_world(
    now: float = FROZEN_NOW,
) -> tuple[Config, list[ForwardStatus], list[ClusterStatus]]:
    """One forward in every state, with moved ports, an exposed forward, history and latencies."""
    S = ForwardState
    h = lambda *pairs: tuple(Transition(now - ago, st, why) for ago, st, why in pairs)  # noqa: E731
    rows = [
        (
            spec("api", 8080, group="core"),
            dict(
                state=S.RUNNING,
                reason="ready",
                local_port=8080,
                pid=4101,
                restarts=0,
                running_since=now - 3725,
                connections=42,
                traffic=Traffic(
                    opened=42,
                    active=2,
                    bytes_in=18_432,
                    bytes_out=5_400_000,
                    rate_in=1_200.0,
                    rate_out=48_300.0,
                ),
                rss=31_457_280,
                cpu_percent=0.4,
                probe_latencies=(0.004, 0.006, 0.005, 0.012, 0.007, 0.004, 0.009, 0.005, 0.006),
                history=h(
                    (3730, S.STARTING, "queued"),
                    (3728, S.CONNECTING, "kubectl spawned"),
                    (3725, S.RUNNING, "ready"),
                ),
            ),
        ),
        (
            spec("web", 3000, type="web", namespace="frontend", group="core"),
            dict(
                state=S.RUNNING,
                reason="ready",
                local_port=3001,
                pid=4102,
                restarts=2,
                running_since=now - 95,
                port_moved_reason="8080 held by pid 999 (python3)",
                traffic=Traffic(opened=3, bytes_in=1_100, bytes_out=96_000),
                history=h(
                    (400, S.RUNNING, "ready"),
                    (100, S.RECONNECTING, "pod web-1 deleted"),
                    (95, S.RUNNING, "ready"),
                ),
            ),
        ),
        (
            spec("grpc", 9090, type="rpc", target="deployment/grpc"),
            dict(
                state=S.CONNECTING,
                reason="kubectl spawned",
                local_port=9090,
                pid=4103,
            ),
        ),
        (
            spec("cache", 6379, type="other", namespace="data"),
            dict(
                state=S.DEGRADED,
                reason="probe failed: connection reset",
                local_port=6379,
                pid=4104,
                running_since=now - 610,
                restarts=1,
            ),
        ),
        (
            spec("search", 9200, namespace="data"),
            dict(
                state=S.RECONNECTING,
                reason="pod search-0 not ready",
                local_port=9200,
                restarts=3,
            ),
        ),
        (
            spec("billing", 8500, namespace="payments", group="payments"),
            dict(
                state=S.COOLDOWN,
                reason="exited 1: lost connection to pod",
                local_port=8500,
                restarts=6,
                retry_at=now + 12,
                last_error="lost connection to pod",
            ),
        ),
        (
            spec("ghost", 8600, target="service/ghost"),
            dict(
                state=S.FAILED,
                reason='services "ghost" not found',
                local_port=8600,
                last_error='error: services "ghost" not found',
                retry_at=now + 60,
            ),
        ),
        (
            spec("staging-db", 5432, type="other", context="staging"),
            dict(
                state=S.SUSPENDED,
                reason="cluster unreachable: connection refused",
                local_port=5432,
            ),
        ),
        (
            spec("metrics", 9100, type="web", group="payments"),
            dict(
                state=S.STOPPED,
                reason="stopped by user",
                local_port=9100,
                restarts=1,
            ),
        ),
        (
            spec("admin", 8081, type="web", address="0.0.0.0"),
            dict(
                state=S.RUNNING,
                reason="ready",
                local_port=8081,
                pid=4105,
                running_since=now - 86500,
            ),
        ),
        (
            spec("queue", 5672, type="other"),
            dict(
                state=S.STARTING,
                reason="resolving port",
                local_port=5672,
            ),
        ),
    ]
    specs = [s for s, _ in rows]
    statuses = [ForwardStatus(spec=s, **kw) for s, kw in rows]
    clusters = [
        ClusterStatus("kind-dev", "http://127.0.0.1:6443", True, "ok"),
        ClusterStatus("staging", "https://10.0.0.1", False, "connection refused"),
    ]
    return config_of(specs, refresh_rate=0.25), statuses, clusters
