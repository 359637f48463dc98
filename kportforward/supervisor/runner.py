"""One forward's runner: carries out the lifecycle's effects and feeds back what happened.

The runner holds no decisions. Every input goes through ``core.lifecycle.step``; the effects that
come back (resolve a port, spawn, stop, probe, wake at, emit, report the cluster down) are carried
out through replaceable parts — a process factory (the real kubectl by default), a clock and a
prober — whose results come back as inputs. Nothing here blocks: slow effects run as small tasks
and report back, so a stop arriving while a spawn waits for its slot is handled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kportforward.core import lifecycle as lc
from kportforward.core.models import ForwardSpec, ForwardStatus, Traffic
from kportforward.core.states import ForwardState
from kportforward.supervisor.health import ProbeResult, start_probe
from kportforward.supervisor.kubectl import LOG_LINES, Failure, KubectlProcess

log = logging.getLogger(__name__)

S = ForwardState


@dataclass(frozen=True, slots=True)
class Tuning:
    """Timings of the runners; tests shrink them."""

    monitoring_interval: float = 1.0
    probe_timeout: float = 0.5
    connect_timeout: float = 75.0
    """Restart a kubectl silent this long (it waits up to 60 s for a pod by itself)."""
    spawn_window: float = 0.5
    """A starting kubectl holds its spawn slot until ready, or this long at most."""
    stop_interrupt_wait: float = 1.0
    stop_term_wait: float = 0.5
    verify_grace: float = 0.05
    """After a probe's EOF, how long to watch kubectl for a forwarding error before believing it."""


class Clock(Protocol):
    """The runner's time: ``now()`` for decisions, ``call_at`` for wake-ups."""

    def now(self) -> float:
        """Seconds (wall clock by default)."""

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        """Call ``callback`` at ``when`` (in ``now()``'s terms); returns a handle with cancel()."""


class LoopClock:
    """Wall-clock decisions, wake-ups on the running loop."""

    def now(self) -> float:
        """``time.time()``."""
        return time.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        """A loop timer ``when - now()`` seconds from now."""
        return asyncio.get_running_loop().call_later(max(0.0, when - time.time()), callback)


ProcessFactory = Callable[[list[str], str, deque[str]], Awaitable[Any]]
"""``(argv, forward name, log ring) -> process``: a started kubectl (``KubectlProcess`` or a fake
with ``pid``, ``ready``, ``pod``, ``connections``, ``forward_errors``, ``exited``,
``add_exit_callback``, ``on_change``, ``classify``, ``stop``, ``kill``)."""


async def spawn_kubectl(argv: list[str], forward: str, lines: deque[str]) -> Any:
    """The default process factory: the real kubectl."""
    return await KubectlProcess.spawn(argv, forward=forward, log_lines=lines)


ProbeStarter = Callable[[str, int, float, Callable[[ProbeResult], None]], Any]
"""``(address, port, timeout, callback) -> handle with cancel()``: one probe through a tunnel."""


@dataclass(frozen=True, slots=True)
class FrontDoorSettings:
    """How one forward's front door behaves."""

    hold_timeout: float = 10.0
    http_log: bool = False


class RunnerHost(Protocol):
    """What a runner needs from the supervisor around it."""

    tuning: Tuning
    prober: Any
    """The probing rotation (``health.TunnelProber``): ``escalate(runner)`` on a failed probe."""

    def emit(self, runner: ForwardRunner, previous: ForwardState, reason: str) -> None:
        """Publish one transition."""

    async def allocate(self, runner: ForwardRunner) -> tuple[int, str | None]:
        """A local port (configured first) and why it moved; LookupError(reason) if none."""

    def spawn_slot(self) -> asyncio.Semaphore:
        """Bounds kubectl processes between spawn and readiness."""

    def spawn_blocker(self, runner: ForwardRunner) -> str | None:
        """Why the forward may not spawn now (cluster suspended, kubeconfig gone), or None."""

    def argv(self, runner: ForwardRunner, port: int) -> list[str]:
        """The kubectl argv for this forward on ``port``."""

    def cluster_down(self, runner: ForwardRunner, reason: str, *, auth: bool) -> None:
        """kubectl said the forward's cluster is unreachable or rejects the credentials."""

    def watch_state(self, runner: ForwardRunner) -> None:
        """The forward's state or pod changed: keep probing rotation and watches in step."""

    def door_for(self, runner: ForwardRunner) -> FrontDoorSettings | None:
        """The front door settings for this forward, or None when kubectl owns the port."""

    async def home_available(self, runner: ForwardRunner) -> bool:
        """True when the forward's configured port is free now (a moved door may go home)."""

    def port_taken(self, runner: ForwardRunner, port: int) -> None:
        """A bind of ``port`` failed: forget any cached "free" answer for it."""

    def traffic(self, runner: ForwardRunner, traffic: Traffic) -> None:
        """The forward's door counted new traffic (at most once a second)."""


class ForwardRunner:
    """Carries out one forward's lifecycle; its snapshot is :meth:`status`."""

    def __init__(
        self,
        spec: ForwardSpec,
        host: RunnerHost,
        *,
        policy: lc.Policy | None = None,
        clock: Clock | None = None,
        spawn: ProcessFactory = spawn_kubectl,
        probe: ProbeStarter = start_probe,
        stopped: bool = False,
    ) -> None:
        self.host = host
        self.clock = clock or LoopClock()
        self.record = lc.new_record(spec, policy, stopped=stopped)
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self.procs: dict[int, Any] = {}
        """Every kubectl of this forward not yet gone (the current one and any being stopped)."""
        self.rss: int | None = None
        self.cpu_percent: float | None = None
        self._spawn = spawn
        self._probe_starter = probe
        self._inbox: deque[lc.Input] = deque()
        self._busy = False
        self._timer: Any = None
        self._probe: Any = None
        self._probe_pid: int | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connections_before = 0
        self._probes = 0
        self._status: ForwardStatus | None = None
        self._status_key: tuple[Any, ...] = ()
        self._closed = False
        self.door: Any = None
        """The forward's ``FrontDoor`` on the user's port (None: kubectl listens there itself).
        It lives as long as the forward, across kubectl restarts."""

    # -- the one way in -------------------------------------------------------------------------

    @property
    def spec(self) -> ForwardSpec:
        """The forward's spec as the lifecycle knows it."""
        return self.record.spec

    @property
    def state(self) -> ForwardState:
        """The forward's state."""
        return self.record.state

    @property
    def proc(self) -> Any:
        """The kubectl that belongs to the forward now, if any."""
        pid = self.record.pid
        return self.procs.get(pid) if pid is not None else None

    @property
    def spawns(self) -> int:
        """kubectl processes started for this forward."""
        return self.record.spawns

    def feed(self, event: lc.Input) -> None:
        """Hand one input to the lifecycle and carry out its effects (re-entrant safe)."""
        if self._closed:
            return
        self._inbox.append(event)
        if self._busy:
            return
        self._busy = True
        try:
            while self._inbox:
                item = self._inbox.popleft()
                self.record, effects = lc.step(self.record, item, self.clock.now())
                for effect in effects:
                    self._do(effect)
                self._sync_door()
            self.host.watch_state(self)
        finally:
            self._busy = False

    def change_spec(self, spec: ForwardSpec) -> None:
        """The config changed this forward: a new kubectl only if its argv or port changed."""
        self.record, effects = lc.config_changed(self.record, spec, self.clock.now())
        for effect in effects:
            self._do(effect)
        self._sync_door()
        self.host.watch_state(self)

    # -- effects --------------------------------------------------------------------------------

    def _do(self, effect: lc.Effect) -> None:
        if isinstance(effect, lc.Emit):
            self.host.emit(self, effect.previous, effect.reason)
        elif isinstance(effect, lc.WakeAt):
            self._wake_at(effect.when)
        elif isinstance(effect, lc.ResolvePort):
            self._task(self._resolve(effect.attempt), "resolve")
        elif isinstance(effect, lc.Spawn):
            self._task(self._spawn_one(effect.attempt, effect.port), "spawn")
        elif isinstance(effect, lc.Stop):
            self._stop_pid(effect.pid)
        elif isinstance(effect, lc.Probe):
            self._start_probe(effect.pid)
        elif isinstance(effect, lc.ReportClusterDown):
            self.host.cluster_down(self, effect.reason, auth=effect.auth)

    def _task(self, coro: Any, what: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{what} {self.spec.name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("forward %s: internal error: %r", self.spec.name, exc)
            self.feed(lc.SpawnFailed(self.record.attempt, f"internal error: {exc}", True))

    def _wake_at(self, when: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if when is not None:
            self._timer = self.clock.call_at(when, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.feed(lc.TimerFired())

    async def settle(self) -> None:
        """Wait for every kubectl being stopped to be gone (its port free again)."""
        while self._stopping:
            await asyncio.gather(*list(self._stopping), return_exceptions=True)

    async def _resolve(self, attempt: int) -> None:
        await self.settle()
        if attempt != self.record.attempt:
            return
        try:
            settings = self.host.door_for(self)
            if settings is None:
                await self._close_door()
                port, moved = await self.host.allocate(self)
            else:
                port, moved = await self._door_port(settings)
        except LookupError as exc:
            self.feed(lc.PortUnavailable(attempt, str(exc.args[0] if exc.args else exc)))
            return
        self.feed(lc.PortAssigned(attempt, port, moved))

    async def _door_port(self, settings: FrontDoorSettings) -> tuple[int, str | None]:
        """The port of the forward's door: the one it holds (home, or a move home is not free
        for), the configured one again when it is free, else a new door where the allocator says.
        The bind is the check: no gap in which someone else could take the port."""
        spec, door = self.spec, self.door
        if door is not None and door.address == spec.address:
            if not door.listening:
                with contextlib.suppress(OSError):
                    door.reopen()
            if door.listening and (
                door.port == spec.local_port or not await self.host.home_available(self)
            ):
                moved = None if door.port == spec.local_port else self.record.port_moved_reason
                return door.port, moved
        await self._close_door()
        from kportforward.supervisor.frontdoor import FrontDoor

        for _ in range(5):
            port, moved = await self.host.allocate(self)
            try:
                door = FrontDoor(
                    spec.name,
                    spec.address,
                    port,
                    hold_timeout=settings.hold_timeout,
                    http_log=settings.http_log,
                    on_traffic=lambda traffic: self.host.traffic(self, traffic),
                )
                await door.start()
            except OSError:
                self.host.port_taken(self, port)  # taken between the check and our bind
                continue
            self.door = door
            return port, moved
        raise LookupError(f"no local port could be bound for {spec.name}")

    async def _close_door(self) -> None:
        door, self.door = self.door, None
        if door is not None:
            await door.close()

    def _sync_door(self) -> None:
        """The door follows the lifecycle: relay while the tunnel is verified, hold new
        connections while it restarts, refuse honestly when the forward is Stopped or Failed."""
        door = self.door
        if door is None:
            return
        state = self.record.state
        if state in (S.RUNNING, S.DEGRADED) or (state is S.CONNECTING and self.record.ready):
            # Connections flow as soon as kubectl is ready (as they would without the door);
            # the status still says Running only once a probe has crossed the tunnel.
            proc = self.proc
            port = getattr(proc, "ready_port", None)
            if port and door.target != ("127.0.0.1", port):
                door.set_target(("127.0.0.1", port))
        elif state in (S.STOPPED, S.FAILED):
            if door.listening:
                door.close_listener(self.record.reason)
        elif door.target is not None:
            door.hold(self.record.reason)

    async def _spawn_one(self, attempt: int, port: int) -> None:
        await self.settle()
        tuning = self.host.tuning
        async with self.host.spawn_slot():
            if attempt != self.record.attempt or self.record.state not in (
                S.STARTING,
                S.RECONNECTING,
            ):
                return
            blocked = self.host.spawn_blocker(self)
            if blocked:
                self.feed(lc.ClusterDown(blocked))
                return
            if self.proc is not None:
                self._connections_before += self.proc.connections
            try:
                # With a door, kubectl listens on a port of its own choosing (its readiness line
                # names it); the user's port is the door's.
                kubectl_port = 0 if self.door is not None else port
                proc = await self._spawn(
                    self.host.argv(self, kubectl_port), self.spec.name, self.lines
                )
            except OSError as exc:
                self.feed(lc.SpawnFailed(attempt, *_spawn_error(exc)))
                return
            pid = proc.pid
            self.procs[pid] = proc
            proc.on_change = lambda: self._proc_changed(proc)
            proc.add_exit_callback(lambda: self._proc_exited(proc))
            self.feed(lc.Spawned(attempt, pid))
            # The slot bounds kubectls that are starting: hold it until readiness, or for at most
            # spawn_window (a kubectl waiting a minute for a pod must not starve the others).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tuning.spawn_window):
                    await proc.ready.wait()

    def _proc_changed(self, proc: Any) -> None:
        if proc.ready.is_set():
            self.feed(lc.Ready(proc.pid, proc.pod))
            if proc.pod:
                self.feed(lc.PodKnown(proc.pid, proc.pod))

    def _proc_exited(self, proc: Any) -> None:
        self.procs.pop(proc.pid, None)
        if proc.pid != self.record.pid:
            return
        self._connections_before += proc.connections
        why = proc.classify(pod_target=self.spec.targets_pod)
        kind = why.failure.value
        reason = why.reason
        if why.failure is Failure.REFUSED:
            reason = _nothing_listens(self.spec, proc)
        self.feed(lc.Exited(proc.pid, kind, reason, why.message))

    def _stop_pid(self, pid: int) -> None:
        proc = self.procs.get(pid)
        if proc is None or proc.exited:
            return
        self._cancel_probe()
        if proc is not None:
            self._connections_before += proc.connections
        tuning = self.host.tuning

        async def stop() -> None:
            await proc.stop(tuning.stop_interrupt_wait, tuning.stop_term_wait)

        task = asyncio.get_running_loop().create_task(stop(), name=f"stop {self.spec.name}")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    # -- probes ---------------------------------------------------------------------------------

    def probe_now(self) -> None:
        """Start a tunnel probe unless one is pending (called by the prober's rotation)."""
        if self._probe is None and self.record.state is S.RUNNING and self.record.pid:
            self._start_probe(self.record.pid)

    def _start_probe(self, pid: int) -> None:
        if pid != self.record.pid:
            return
        if self._probe is not None:
            if self._probe_pid == pid:
                return  # one probe per tunnel at a time
            self._cancel_probe()  # a probe of an earlier kubectl: its answer no longer matters
        proc = self.procs.get(pid)
        # Probes go straight to kubectl's own port: they test the tunnel, not the door, and
        # never count as the user's traffic.
        port = (
            getattr(proc, "ready_port", None) if self.door is not None else self.record.local_port
        )
        if proc is None or not port:
            return
        errors_before = getattr(proc, "forward_errors", 0)
        state_before = self.record.state

        def done(result: ProbeResult) -> None:
            self._probe = None
            if result.ok or result.timed_out:
                self._probes += 1  # kubectl accepted it and printed "Handling connection"
            if (result.ok and state_before is not S.RUNNING) or result.hung_up:
                # An EOF can be kubectl closing us because nothing listens in the pod: kubectl
                # prints that error before it closes, so give its stderr a moment to arrive.
                self._probe = asyncio.get_running_loop().call_later(
                    self.host.tuning.verify_grace, verdict, result
                )
                return
            verdict(result)

        def verdict(result: ProbeResult) -> None:
            self._probe = None
            if (
                not result.ok
                and not result.hung_up
                and getattr(proc, "returncode", None) is not None
            ):
                # kubectl is gone (a kill, a crash): its exit, which follows, names the cause;
                # a probe that found the port closed would only say "connection refused".
                return
            refused = getattr(proc, "forward_errors", 0) > errors_before or proc.exited
            if (result.ok and refused) or result.hung_up:
                reason = _nothing_listens(self.spec, proc)
                if result.hung_up and not refused:
                    reason = _hangs_up(self.spec, proc)
                result = ProbeResult(False, result.latency, reason)
            if not result.ok and self.record.state is S.RUNNING:
                self.host.prober.escalate(self)
            self.feed(lc.ProbeDone(pid, result.ok, result.latency, result.reason, result.timed_out))

        self._probe_pid = pid
        self._probe = self._probe_starter(
            self.spec.address, port, self.host.tuning.probe_timeout, done
        )

    def _cancel_probe(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    # -- queries --------------------------------------------------------------------------------

    def status(self) -> ForwardStatus:
        """An immutable snapshot of this forward (cached until something in it changes).

        Client connections are the door's count, else kubectl's over all its processes (our
        probes not counted)."""
        traffic: Traffic | None
        if self.door is not None:
            traffic = stats = self.door.stats()
            connections = stats.opened
        else:  # zeros until the door opens; None only when kubectl owns the port (no door)
            traffic = Traffic() if self.host.door_for(self) is not None else None
            live = self.proc.connections if self.proc is not None else 0
            connections = max(0, self._connections_before + live - self._probes)
        key = (self.record, connections, self.rss, self.cpu_percent, traffic)
        if self._status is not None and key == self._status_key:
            return self._status
        self._status_key = key
        self._status = self.record.status(
            connections=connections, rss=self.rss, cpu=self.cpu_percent, traffic=traffic
        )
        return self._status

    # -- the end --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop every kubectl of this forward (the graceful sequence) and every pending task."""
        self._closed = True
        self._wake_at(None)
        self._cancel_probe()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        tuning = self.host.tuning
        procs = [p for p in self.procs.values() if not p.exited]
        try:
            await asyncio.gather(
                *(p.stop(tuning.stop_interrupt_wait, tuning.stop_term_wait) for p in procs),
                *list(self._stopping),
                return_exceptions=True,
            )
        except BaseException:  # a second cancel (a forced exit): no more waiting
            for p in procs:
                p.kill()
            raise
        finally:
            await self._close_door()

    def mark_stopped(self, reason: str) -> None:
        """After ``close()``: record the final Stopped state (shutdown)."""
        self._closed = False
        self.record, effects = lc.step(self.record, lc.UserStop(reason), self.clock.now())
        for effect in effects:
            if isinstance(effect, lc.Emit):
                self.host.emit(self, effect.previous, effect.reason)
        self._closed = True


def _hangs_up(spec: ForwardSpec, proc: Any) -> str:
    where = f"pod {proc.pod}" if getattr(proc, "pod", None) else "the pod"
    return (
        f"{spec.target_port} in {where} closes every connection at once (EOF right after connect)"
    )


_FORWARDING_TO = re.compile(r"error occurred forwarding \d+ -> (\d+)")


def _nothing_listens(spec: ForwardSpec, proc: Any) -> str:
    """``nothing listens on 9000 in pod web-1``: the container port from kubectl's own error line
    (a service port may map to another), else the configured target port."""
    port: object = spec.target_port
    for line in reversed(getattr(proc, "errors", ())):
        if m := _FORWARDING_TO.search(line):
            port = m.group(1)
            break
    where = f"pod {proc.pod}" if getattr(proc, "pod", None) else "the pod"
    return f"nothing listens on {port} in {where}"


def _spawn_error(exc: OSError) -> tuple[str, bool]:
    """A reason and whether it is transient (resource exhaustion) for a failed spawn."""
    import errno

    transient = exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN)
    what = "out of resources starting kubectl" if transient else "cannot run kubectl"
    return f"{what}: {exc.strerror or exc}", transient
