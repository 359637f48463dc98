"""One forward's lifecycle loop: resolve a port, spawn kubectl, watch it, restart it.

The runner never picks a state itself: it reports events to ``core.states.next_state`` and emits one
event per transition through its host (the Supervisor). Commands (stop, start, reconnect, cluster
up) arrive on a small queue and wake the loop; kubectl's exit and readiness wake it too, so nothing
is polled except the tunnel probe, which is the point of the probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kportforward.core.backoff import Backoff
from kportforward.core.models import ForwardSpec, ForwardStatus, Transition
from kportforward.core.states import Event, ForwardState, has_process, next_state
from kportforward.supervisor.health import ProbeResult, TunnelProber, start_probe
from kportforward.supervisor.kubectl import LOG_LINES, Classification, Failure, KubectlProcess

log = logging.getLogger(__name__)

S = ForwardState


@dataclass(frozen=True, slots=True)
class Tuning:
    """Timings of one runner; tests shrink them."""

    monitoring_interval: float = 1.0
    probe_timeout: float = 0.5
    degraded_reprobe: float = 0.0
    """Delay before the second probe after a first failure (it follows at once by default)."""
    connect_timeout: float = 75.0
    """Restart a kubectl silent this long (it waits up to 60 s for a pod by itself)."""
    spawn_window: float = 0.5
    """A starting kubectl holds its spawn slot until ready, or this long at most."""
    stop_interrupt_wait: float = 1.0
    stop_term_wait: float = 0.5


class RunnerHost(Protocol):
    """What a runner needs from the supervisor."""

    tuning: Tuning
    prober: TunnelProber

    def emit(self, runner: ForwardRunner, previous: ForwardState, reason: str) -> None:
        """Publish one transition."""

    async def resolve_port(self, runner: ForwardRunner, *, again: bool) -> tuple[int, str | None]:
        """The local port to use and why it moved (None: not moved). Raises LookupError(reason)."""

    def spawn_slot(self) -> asyncio.Semaphore:
        """The semaphore bounding kubectl processes between spawn and readiness."""

    def cluster_blocked(self, runner: ForwardRunner) -> str | None:
        """The reason the forward's cluster is suspended, or None to go ahead."""

    def cluster_failed(self, runner: ForwardRunner, why: Classification) -> None:
        """kubectl said the cluster is unreachable or rejected the credentials."""

    def argv(self, runner: ForwardRunner, port: int) -> list[str]:
        """The kubectl argv for this forward on ``port``."""

    def pod_changed(self, runner: ForwardRunner) -> None:
        """The runner's kubectl learned (or changed) the pod it forwards to."""


@dataclass
class _Command:
    event: Event
    reason: str
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ForwardRunner:
    """The lifecycle of one forward; its snapshot is :meth:`status`."""

    def __init__(
        self,
        spec: ForwardSpec,
        host: RunnerHost,
        backoff: Backoff | None = None,
        *,
        wall: Callable[[], float] = time.time,
        stopped: bool = False,
    ) -> None:
        self.spec = spec
        self.host = host
        self.backoff = backoff or Backoff()
        self.state = S.STOPPED if stopped else S.STARTING
        self.reason = "stopped" if stopped else "starting"
        self.proc: KubectlProcess | None = None
        self.local_port = 0
        self.port_moved_reason: str | None = None
        self.restarts = 0
        self.spawns = 0
        self.running_since: float | None = None
        self.retry_at: float | None = None
        self.last_error: str | None = None
        self.rss: int | None = None
        self.cpu_percent: float | None = None
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self.history: deque[Transition] = deque(maxlen=50)
        self.latencies: deque[float] = deque(maxlen=30)
        self._connections_before = 0
        self._probes = 0
        self._wall = wall
        self._commands: deque[_Command] = deque()
        self._wake = asyncio.Event()
        self._reresolve = False
        self._tunnel_answers = False
        self._probe: Any = None
        self._probe_timer: asyncio.TimerHandle | None = None
        self._probe_result: ProbeResult | None = None
        self._status: ForwardStatus | None = None
        self._transitions = 0
        self._status_key: tuple[Any, ...] = ()
        self.task: asyncio.Task[None] | None = None

    # -- commands -------------------------------------------------------------------------------

    def command(self, event: Event, reason: str) -> asyncio.Future[None]:
        """Queue a command; the future resolves once the runner has handled it."""
        cmd = _Command(event, reason)
        self._commands.append(cmd)
        self._wake.set()
        if self.task is None or self.task.done():
            cmd.done.set_result(None)
        return cmd.done

    @property
    def connections(self) -> int:
        """Client connections handled over all kubectl processes (our probes not counted)."""
        live = self.proc.connections if self.proc else 0
        return max(0, self._connections_before + live - self._probes)

    def status(self) -> ForwardStatus:
        """An immutable snapshot of this forward (cached until something in it changes)."""
        pid = self.proc.pid if self.proc and not self.proc.exited else None
        key = (
            self.state, self.reason, self.local_port, self.port_moved_reason, pid, self.restarts,
            self.running_since, self.retry_at, self.connections, self.last_error, self.rss,
            self.cpu_percent, self._transitions, self._probes, self.spec,
        )  # fmt: skip
        if self._status is not None and key == self._status_key:
            return self._status
        self._status_key = key
        self._status = ForwardStatus(
            spec=self.spec,
            state=self.state,
            reason=self.reason,
            local_port=self.local_port,
            port_moved_reason=self.port_moved_reason,
            pid=pid,
            restarts=self.restarts,
            running_since=self.running_since,
            retry_at=self.retry_at,
            connections=self.connections,
            last_error=self.last_error,
            rss=self.rss,
            cpu_percent=self.cpu_percent,
            history=tuple(self.history),
            probe_latencies=tuple(self.latencies),
        )
        return self._status

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """The runner's task: loop until cancelled; kills its kubectl on the way out."""
        try:
            while True:
                self._wake.clear()
                if self._commands and not has_process(self.state):
                    self._apply_commands()
                    continue
                if self.state in (S.STARTING, S.RECONNECTING):
                    try:
                        await self._attempt()
                    except Exception as exc:  # a bug must not end the forward's supervision
                        log.exception("forward %s: unexpected error", self.spec.name)
                        self.last_error = f"internal error: {type(exc).__name__}: {exc}"
                        self.retry_at = self._wall() + max(1.0, self.backoff.next_delay())
                        if self.proc is not None and not self.proc.exited:
                            self.proc.kill()
                        self._transition(Event.EXITED, self.last_error)
                elif self.state in (S.COOLDOWN, S.FAILED):
                    delay = (self.retry_at or 0) - self._wall()
                    if delay <= 0:
                        self._transition(Event.BACKOFF_ELAPSED, "retrying now")
                    else:
                        await self._sleep(delay)
                else:  # Stopped, Suspended: only a command moves them
                    await self._sleep(None)
        finally:
            self._finish_commands()
            proc = self.proc
            if proc is not None and not proc.exited:
                try:  # graceful even when cancelled; a second cancel (forced exit) kills
                    await self._stop_proc(proc)
                except BaseException:
                    proc.kill()
                    raise

    async def _sleep(self, delay: float | None) -> None:
        """Wait for a wake-up (command, exit, readiness) or ``delay`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    def _apply_commands(self) -> None:
        while self._commands:
            cmd = self._commands.popleft()
            if cmd.event is Event.USER_START:
                self.backoff.reset()
                self._reresolve = self._reresolve or self.state is S.FAILED
            self._transition(cmd.event, cmd.reason)
            if not cmd.done.done():
                cmd.done.set_result(None)

    def _finish_commands(self) -> None:
        while self._commands:
            cmd = self._commands.popleft()
            if not cmd.done.done():
                cmd.done.set_result(None)

    def _transition(self, event: Event, reason: str) -> bool:
        """Apply ``event`` through the table; emit one event if the state changed."""
        new = next_state(self.state, event)
        if new is None:
            return False
        previous = self.state
        now = self._wall()
        if new is S.RUNNING:
            if previous is not S.DEGRADED:  # Degraded → Running continues the same stretch
                self.running_since = now
                self.backoff.mark_running()
        elif previous in (S.RUNNING, S.DEGRADED) and new is not S.DEGRADED:
            self.running_since = None
            self.backoff.mark_stopped()
        if new not in (S.COOLDOWN, S.FAILED, S.SUSPENDED):
            self.retry_at = None
        self.state, self.reason = new, reason
        self._transitions += 1
        self.history.append(Transition(now, new, reason))
        self.host.emit(self, previous, reason)
        return True

    async def _attempt(self) -> None:
        """Starting/Reconnecting: resolve the port, wait for a spawn slot, spawn, supervise."""
        blocked = self.host.cluster_blocked(self)
        if blocked:
            self._transition(Event.CLUSTER_DOWN, blocked)
            return
        try:
            port, moved = await self.host.resolve_port(self, again=self._reresolve)
        except LookupError as exc:
            self.retry_at = self._wall() + self.backoff.next_delay()
            self.last_error = str(exc.args[0] if exc.args else exc)
            self._transition(Event.PORT_UNAVAILABLE, f"{self.last_error}; retrying")
            return
        self._reresolve = False
        self.local_port, self.port_moved_reason = port, moved
        async with self.host.spawn_slot():
            if self._commands:  # a stop or restart arrived while we waited
                return
            if blocked := self.host.cluster_blocked(self):
                self._transition(Event.CLUSTER_DOWN, blocked)
                return
            if self.proc is not None:
                self._connections_before += self.proc.connections
            try:
                proc = await KubectlProcess.spawn(
                    self.host.argv(self, port), forward=self.spec.name, log_lines=self.lines
                )
            except OSError as exc:  # kubectl vanished or lost its exec bit since startup
                self.last_error = f"cannot run kubectl: {exc.strerror or exc}"
                self.retry_at = self._wall() + self.backoff.slow_delay()
                self._transition(Event.EXITED_FATAL, self.last_error)
                return
            proc.on_change = self._on_proc_change
            self.proc = proc
            self.spawns += 1
            if self.spawns > 1:
                self.restarts += 1
            proc.add_exit_callback(self._wake.set)
            self._transition(Event.SPAWNED, f"kubectl started (pid {proc.pid}) on port {port}")
            # The slot bounds kubectls that are starting: hold it until readiness, or for at most
            # spawn_window (a kubectl waiting a minute for a pod must not starve the others).
            await self._supervise(proc, slot_until=time.monotonic() + self.host.tuning.spawn_window)
        if has_process(self.state):
            await self._supervise(proc)

    def _on_proc_change(self) -> None:
        self._wake.set()
        if self.proc is not None and self.proc.pod:
            self.host.pod_changed(self)

    async def _supervise(self, proc: KubectlProcess, *, slot_until: float | None = None) -> None:
        """Watch one kubectl until it exits or a command ends it.

        With ``slot_until``, return early as soon as it is ready or that moment has passed.
        While Running, the host's TunnelProber starts probes (``probe_now``) as loop callbacks; a
        result wakes this task only when it needs a transition, so a healthy forward costs no
        task wake-ups.
        """
        tuning = self.host.tuning
        connect_deadline = proc.started + tuning.connect_timeout
        try:
            while True:
                self._wake.clear()
                if self._commands:
                    await self._stop_proc(proc)
                    self._apply_commands()
                    return
                if proc.exited:
                    self._on_exit(proc)
                    return
                now = time.monotonic()
                if self.state is S.CONNECTING:
                    if proc.ready.is_set():
                        self._transition(Event.READY, self._ready_reason(proc))
                        if slot_until is not None:
                            return
                        continue
                    if now >= connect_deadline:
                        await self._stop_proc(proc)
                        self.retry_at = self._wall() + self.backoff.next_delay()
                        self._transition(
                            Event.EXITED, f"no 'Forwarding from' within {tuning.connect_timeout:g}s"
                        )
                        return
                    if slot_until is not None:
                        if now >= slot_until:
                            return
                        await self._sleep(min(connect_deadline, slot_until) - now)
                    else:
                        await self._sleep(connect_deadline - now)
                    continue
                if slot_until is not None:
                    return
                result, self._probe_result = self._probe_result, None
                if result is not None and await self._on_probe_result(proc, result):
                    return
                if self.state is S.RUNNING:
                    self.host.prober.add(self)
                elif self._probe_timer is None and self._probe is None:  # Degraded: re-probe
                    self.host.prober.remove(self)
                    self._probe_timer = asyncio.get_running_loop().call_later(
                        tuning.degraded_reprobe, self._start_probe
                    )
                await self._sleep(None)
        finally:
            if slot_until is None or not has_process(self.state):
                self._cancel_probe()

    async def _on_probe_result(self, proc: KubectlProcess, result: ProbeResult) -> bool:
        """Apply a probe result that needs a transition; True when the kubectl was stopped."""
        if result.ok:
            self._transition(Event.PROBE_OK, "probe through the tunnel passed again")
            return False
        self.last_error = result.reason
        if self.state is S.RUNNING:
            self._transition(Event.PROBE_FAILED, f"probe failed: {result.reason}")
            return False
        await self._stop_proc(proc)
        self._transition(Event.PROBE_FAILED, f"tunnel dead ({result.reason}); restarting")
        return True

    def probe_now(self) -> None:
        """Start a tunnel probe unless one is already pending (called by the prober)."""
        if self._probe is None and self._probe_timer is None and self.state is S.RUNNING:
            self._start_probe()

    def _start_probe(self) -> None:
        self._probe_timer = None
        tuning = self.host.tuning
        self._probe = start_probe(
            self.spec.address, self.local_port, tuning.probe_timeout, self._probe_done
        )

    def _probe_done(self, result: ProbeResult) -> None:
        """A probe finished (in the loop). Healthy and Running: just schedule the next one."""
        self._probe = None
        if result.ok or result.timed_out:
            self._probes += 1  # kubectl accepted it and printed "Handling connection"
        if result.ok:
            self._tunnel_answers = True
            self.latencies.append(result.latency)
            if self.backoff.attempts:
                # Bytes went through: this attempt was healthy, so the next loss of the tunnel
                # restarts at once. Only attempts that never carried a probe escalate.
                self.backoff.reset()
            if self.state is S.RUNNING:
                return  # the prober picks the next moment
        elif result.timed_out and not self._tunnel_answers:
            return  # this backend has never answered an EOF: silence proves nothing here
        else:
            self.host.prober.escalate(self)
        self._probe_result = result
        self._wake.set()

    def _cancel_probe(self) -> None:
        self.host.prober.remove(self)
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        self._probe_result = None

    def _ready_reason(self, proc: KubectlProcess) -> str:
        target = f"{self.spec.target}:{self.spec.target_port}"
        pod = f" (pod {proc.pod})" if proc.pod else ""
        return f"forwarding {self.spec.address}:{self.local_port} → {target}{pod}"

    async def _stop_proc(self, proc: KubectlProcess) -> None:
        tuning = self.host.tuning
        await proc.stop(tuning.stop_interrupt_wait, tuning.stop_term_wait)

    def _on_exit(self, proc: KubectlProcess) -> None:
        why = proc.classify(pod_target=self.spec.kind.lower() in ("pod", "po", "pods"))
        self.last_error = why.message
        if why.failure in (Failure.AUTH, Failure.NETWORK):
            self.host.cluster_failed(self, why)
            self._transition(Event.CLUSTER_DOWN, f"{why.reason}: {why.message}")
            return
        if why.failure is Failure.FATAL:
            self.retry_at = self._wall() + self.backoff.slow_delay()
            self._transition(Event.EXITED_FATAL, why.message)
            return
        if why.failure is Failure.PORT:
            self._reresolve = True
        # next_delay() first forgets earlier failures if the forward had been Running long enough.
        delay = self.backoff.next_delay()
        if delay <= 0:
            self._transition(Event.RECONNECT, f"{why.reason}: {why.message}; restarting now")
            return
        self.retry_at = self._wall() + delay
        self._transition(Event.EXITED, f"{why.reason}: {why.message}; retry in {delay:.1f}s")

    async def close(self) -> None:
        """End the loop; its kubectl gets the graceful stop sequence. The state stays as it was."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.proc is not None and not self.proc.exited:
            await self._stop_proc(self.proc)
