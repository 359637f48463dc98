"""A scripted world for one forward: the real lifecycle and runner, fake clock/processes/probes.

``World`` drives a real ``ForwardRunner`` whose parts are replaced: processes that become ready,
name a pod and exit when the script says so; probes that answer when the script says so; a clock
that moves only when the script advances it. Every transition is recorded.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from kportforward.core import lifecycle as lc
from kportforward.core.models import ForwardSpec
from kportforward.core.states import ForwardState
from kportforward.supervisor.health import ProbeResult
from kportforward.supervisor.kubectl import Classification, Failure
from kportforward.supervisor.runner import ForwardRunner, Tuning


class FakeClock:
    """Time that moves only when told; wake-ups fire in order as it passes them."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._timers: list[tuple[float, int, Callable[[], None], list[bool]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        cancelled = [False]
        heapq.heappush(self._timers, (when, next(self._seq), callback, cancelled))

        class Handle:
            def cancel(self) -> None:
                cancelled[0] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        end = self.t + seconds
        while self._timers and self._timers[0][0] <= end:
            when, _, callback, cancelled = heapq.heappop(self._timers)
            self.t = max(self.t, when)
            if not cancelled[0]:
                callback()
        self.t = end


class FakeProcess:
    """A kubectl stand-in the script controls."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ready = asyncio.Event()
        self.pod: str | None = None
        self.pod_namespace: str | None = "default"
        self.connections = 0
        self.forward_errors = 0
        self.exited = False
        self.stops = 0
        self.killed = False
        self.on_change: Callable[[], None] | None = None
        self.classification = Classification(Failure.RETRY, "lost connection to pod", "")
        self._on_exit: list[Callable[[], None]] = []

    def add_exit_callback(self, callback: Callable[[], None]) -> None:
        self._on_exit.append(callback)

    def classify(self, *, pod_target: bool = True) -> Classification:
        return self.classification

    def become_ready(self, pod: str | None = "web-1") -> None:
        self.pod = pod
        self.ready.set()
        if self.on_change:
            self.on_change()

    def exit(self, failure: Failure = Failure.RETRY, reason: str = "lost connection to pod",
             message: str = "error: lost connection to pod") -> None:  # fmt: skip
        if self.exited:
            return
        self.classification = Classification(failure, reason, message)
        self.exited = True
        for callback in self._on_exit:
            callback()

    async def stop(self, interrupt_wait: float = 1.0, term_wait: float = 0.5) -> int:
        self.stops += 1
        self.exit(Failure.RETRY, "kubectl exited", "")
        return 0

    def kill(self) -> None:
        self.killed = True
        self.exit(Failure.RETRY, "killed", "")


class FakeProber:
    def __init__(self) -> None:
        self.members: set[Any] = set()
        self.escalations = 0

    def add(self, runner: Any) -> None:
        self.members.add(runner)

    def remove(self, runner: Any) -> None:
        self.members.discard(runner)

    def escalate(self, runner: Any) -> None:
        self.escalations += 1


class World:
    """One forward, its runner, and everything around it scripted."""

    def __init__(self, spec: ForwardSpec | None = None, policy: lc.Policy | None = None) -> None:
        self.spec = spec or ForwardSpec("api", "service/api", 9000, 18080, namespace="default")
        self.clock = FakeClock()
        self.tuning = Tuning(verify_grace=0.0, spawn_window=0.0)
        self.prober = FakeProber()
        self.transitions: list[tuple[ForwardState, ForwardState, str]] = []
        self.procs: list[FakeProcess] = []
        self.probes: deque[Callable[[ProbeResult], None]] = deque()
        self.ports: deque[int | str] = deque()
        """Scripted allocator answers: a port, or a reason for LookupError (default: home)."""
        self.blocker: str | None = None
        self.cluster_reports: list[str] = []
        self.spawn_errors: deque[OSError] = deque()
        self._pids = itertools.count(100)
        self._slot = asyncio.Semaphore(4)
        self.runner = ForwardRunner(
            self.spec,
            self,  # type: ignore[arg-type]
            policy=policy or lc.Policy(backoff_base=0.5, backoff_cap=30.0, jitter=0.0),
            clock=self.clock,
            spawn=self._spawn,
            probe=self._probe,
        )

    # -- RunnerHost --------------------------------------------------------------------------

    def emit(self, runner: Any, previous: ForwardState, reason: str) -> None:
        self.transitions.append((previous, runner.state, reason))

    async def allocate(self, runner: Any) -> tuple[int, str | None]:
        answer = self.ports.popleft() if self.ports else self.spec.local_port
        if isinstance(answer, str):
            raise LookupError(answer)
        moved = None if answer == self.spec.local_port else f"{self.spec.local_port} is taken"
        return answer, moved

    def spawn_slot(self) -> asyncio.Semaphore:
        return self._slot

    def spawn_blocker(self, runner: Any) -> str | None:
        return self.blocker

    def argv(self, runner: Any, port: int) -> list[str]:
        return ["kubectl", "port-forward", f"{port}:9000"]

    def cluster_down(self, runner: Any, reason: str, *, auth: bool = False) -> None:
        self.cluster_reports.append(reason)

    def door_for(self, runner: Any) -> None:
        return None  # kubectl owns the port here: the door is tested with real sockets

    async def home_available(self, runner: Any) -> bool:
        return True

    def port_taken(self, runner: Any, port: int) -> None:
        pass

    def traffic(self, runner: Any, traffic: Any) -> None:
        pass

    def watch_state(self, runner: Any) -> None:
        if runner.state is ForwardState.RUNNING:
            self.prober.add(runner)
        else:
            self.prober.remove(runner)

    async def _spawn(self, argv: list[str], name: str, lines: deque[str]) -> FakeProcess:
        if self.spawn_errors:
            raise self.spawn_errors.popleft()
        proc = FakeProcess(next(self._pids))
        self.procs.append(proc)
        return proc

    def _probe(self, address: str, port: int, timeout: float, callback: Any) -> Any:
        self.probes.append(callback)

        class Handle:
            def cancel(inner) -> None:
                if callback in self.probes:
                    self.probes.remove(callback)

        return Handle()

    # -- script ------------------------------------------------------------------------------

    @property
    def state(self) -> ForwardState:
        return self.runner.state

    @property
    def proc(self) -> FakeProcess:
        return self.procs[-1]

    def states(self) -> list[ForwardState]:
        return [new for _old, new, _r in self.transitions]

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    async def feed(self, event: lc.Input) -> None:
        self.runner.feed(event)
        await self.settle()

    async def begin(self) -> None:
        await self.feed(lc.Begin())

    async def ready(self, pod: str | None = "web-1") -> None:
        self.proc.become_ready(pod)
        await self.settle()

    async def probe(self, ok: bool = True, reason: str = "", timed_out: bool = False) -> None:
        callback = self.probes.popleft()
        callback(ProbeResult(ok, 0.001, reason, timed_out))
        await self.settle()

    async def running(self, pod: str | None = "web-1") -> None:
        """Ready, and the first probe passes."""
        await self.ready(pod)
        await self.probe(True)

    async def exit(self, failure: Failure = Failure.RETRY, reason: str = "lost connection to pod",
                   message: str = "error: lost connection to pod") -> None:  # fmt: skip
        self.proc.exit(failure, reason, message)
        await self.settle()

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.settle()

    def emfile(self) -> None:
        self.spawn_errors.append(OSError(errno.EMFILE, "Too many open files"))
