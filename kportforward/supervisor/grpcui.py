"""``grpcui`` web UIs for ``type: rpc`` forwards, supervised like kubectl.

As the Go kportforward does with ``--grpcui``: for each running rpc forward, one
``grpcui -plaintext -bind 127.0.0.1 -port N 127.0.0.1:<localPort>`` child on the first free port
from 9200. Children are spawned from the event-loop thread in their own session with a parent-death
signal (``kubectl.pdeathsig_argv``), so none outlives the manager even on SIGKILL, and are stopped
SIGINT → SIGTERM → SIGKILL on their process group. Readiness is grpcui's line
``gRPC Web UI available at URL``. A child that exits is restarted with a backoff (1 s doubling to
60 s); a server without reflection is not retried (grpcui cannot work without it) until the forward
itself restarts. When ``grpcui`` is not on PATH there is one notice with the install hint and the
forwards are unaffected.

Use: ``ensure(name, local_port, generation=status.pid)`` on every Running snapshot of an rpc
forward (a new generation — kubectl's pid — restarts grpcui with the forward), ``await stop(name)``
when the forward stops or goes away, ``await close()`` at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import shutil
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kportforward.platform.guard import default_guard
from kportforward.supervisor.kubectl import pdeathsig_argv
from kportforward.supervisor.reclaim import owner_marker

log = logging.getLogger(__name__)

FIRST_PORT = 9200
"""The Go kportforward's first grpcui port."""
INSTALL_HINT = (
    "install grpcui to get a web UI for rpc forwards: "
    "go install github.com/fullstorydev/grpcui/cmd/grpcui@latest (or a release binary from "
    "github.com/fullstorydev/grpcui/releases) and put it on PATH; the built-in gRPC screen "
    "needs no extra program"
)
GRPCUI_ENV = "KPORTFORWARD_GRPCUI_FORWARD"
"""Marks a grpcui child with the forward it serves (beside ``owner_marker()``)."""

_READY = re.compile(r"gRPC Web UI available at (\S+)")
_NO_REFLECTION = "does not support the reflection API"
_LISTEN_FAILED = re.compile(r"Failed to listen|address already in use", re.IGNORECASE)
_LINES = 100
_KEEP: Any = object()  # "leave this field as it is" in _set


class GrpcUIState(str, enum.Enum):  # noqa: UP042 - like ForwardState
    """Where one forward's grpcui is."""

    STARTING = "starting"
    """Spawned; its URL line not yet seen."""
    RUNNING = "running"
    """Serving at ``url``."""
    BACKOFF = "backoff"
    """It exited; restarted after a delay."""
    UNSUPPORTED = "unsupported"
    """The server has no reflection: not retried until the forward restarts."""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class GrpcUIStatus:
    """An immutable snapshot of one forward's grpcui, for the row and the details screen."""

    name: str
    state: GrpcUIState
    url: str | None = None
    port: int | None = None
    pid: int | None = None
    restarts: int = 0
    last_error: str | None = None
    """Why it last exited or failed (kept once it runs again, for the details screen)."""


@dataclass
class _Child:
    name: str
    target: str
    generation: object
    port: int | None = None
    state: GrpcUIState = GrpcUIState.STARTING
    url: str | None = None
    pid: int | None = None
    restarts: int = 0
    last_error: str | None = None
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=_LINES))
    task: asyncio.Task[None] | None = None


class GrpcUISupervisor:
    """All grpcui children, one per rpc forward. Call everything from the event-loop thread."""

    def __init__(
        self,
        *,
        executable: str = "grpcui",
        first_port: int = FIRST_PORT,
        port_range: int = 100,
        ready_timeout: float = 20.0,
        backoff: tuple[float, float] = (1.0, 60.0),
        on_change: Callable[[GrpcUIStatus], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.executable = executable
        self.first_port = first_port
        self.port_range = port_range
        self.ready_timeout = ready_timeout
        self.backoff = backoff
        self.on_change = on_change
        """Called with the new status whenever a child changes state."""
        self.on_notice = on_notice
        """Called once with the install hint when grpcui is not on PATH."""
        self._children: dict[str, _Child] = {}
        self._stopping: dict[str, tuple[asyncio.Task[None], int | None, int]] = {}
        """Stops in progress: (task, port, restarts), so a quick re-start keeps the port."""
        self._noticed = False

    def available(self) -> bool:
        """Whether the grpcui program is on PATH."""
        return shutil.which(self.executable) is not None

    # -- commands --------------------------------------------------------------------------------
    def ensure(
        self, name: str, local_port: int, *, address: str = "127.0.0.1", generation: object = None
    ) -> None:
        """grpcui for forward ``name`` (Running on ``address:local_port``): started if absent,
        restarted if the port or ``generation`` changed, else left alone. Never raises for a
        missing grpcui: one notice, and nothing else happens."""
        if not self.available():
            if not self._noticed:
                self._noticed = True
                log.warning("grpcui not found on PATH: %s", INSTALL_HINT)
                if self.on_notice is not None:
                    self.on_notice(f"grpcui not found: {INSTALL_HINT}")
            return
        host = "127.0.0.1" if address in ("localhost", "0.0.0.0", "") else address
        target = f"[{host}]:{local_port}" if ":" in host else f"{host}:{local_port}"
        child = self._children.get(name)
        if child is not None and (child.target, child.generation) == (target, generation):
            running = child.task is not None and not child.task.done()
            if running or child.state is GrpcUIState.UNSUPPORTED:
                return  # serving, restarting, or known not to work for this run of the forward
        previous: tuple[asyncio.Task[None] | None, int | None, int] = (None, None, -1)
        if child is not None:
            if child.task is not None:
                child.task.cancel()  # its finally stops the process; the new task waits for it
            previous = (child.task, child.port, child.restarts)
        elif name in self._stopping:
            previous = self._stopping[name]
        old_task, old_port, old_restarts = previous
        fresh = _Child(name, target, generation, port=old_port, restarts=old_restarts + 1)
        self._children[name] = fresh
        fresh.task = asyncio.get_running_loop().create_task(
            self._run(fresh, old_task), name=f"grpcui:{name}"
        )

    def stop_soon(self, name: str) -> asyncio.Task[None] | None:
        """Begin stopping forward ``name``'s grpcui now (it is gone from status/url at once);
        returns the task that ends when the process is gone, or None if there was none.

        Synchronous on purpose: a later :meth:`ensure` for the same name, even in the same loop
        iteration, waits for this stop and reuses the port (the URL survives)."""
        child = self._children.pop(name, None)
        if child is None or child.task is None:
            return None
        child.task.cancel()
        task = child.task
        self._stopping[name] = (task, child.port, child.restarts)
        task.add_done_callback(lambda t: self._forget_stop(name, t))
        child.url = None
        self._set(child, GrpcUIState.STOPPED)
        return task

    async def stop(self, name: str) -> None:
        """Stop forward ``name``'s grpcui and wait until the process is gone; unknown: no-op."""
        task = self.stop_soon(name)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Stop every child (idempotent)."""
        await asyncio.gather(*(self.stop(name) for name in list(self._children)))
        pending = [task for task, _port, _restarts in self._stopping.values()]
        await asyncio.gather(*pending, return_exceptions=True)

    def _forget_stop(self, name: str, task: asyncio.Task[None]) -> None:
        if name in self._stopping and self._stopping[name][0] is task:
            del self._stopping[name]

    # -- queries ---------------------------------------------------------------------------------
    def status(self, name: str) -> GrpcUIStatus | None:
        """Forward ``name``'s grpcui now, or None when there is none."""
        child = self._children.get(name)
        return None if child is None else _snapshot(child)

    def url(self, name: str) -> str | None:
        """The grpcui URL for forward ``name`` while it is running."""
        child = self._children.get(name)
        return child.url if child is not None and child.state is GrpcUIState.RUNNING else None

    def lines(self, name: str) -> list[str]:
        """The last lines grpcui printed for forward ``name``."""
        child = self._children.get(name)
        return list(child.lines) if child is not None else []

    # -- the per-forward loop --------------------------------------------------------------------
    async def _run(self, child: _Child, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        delay, cap = self.backoff
        bad_ports: set[int] = set()
        while True:
            port = self._pick_port(child, bad_ports)
            if port is None:
                self._set(child, GrpcUIState.BACKOFF, error="no free port for grpcui")
                await asyncio.sleep(delay)
                bad_ports.clear()
                continue
            child.port = port
            started = time.monotonic()
            outcome = await self._once(child, port)
            if outcome == "unsupported":
                return
            if outcome == "port":
                bad_ports.add(port)
                continue
            if time.monotonic() - started > cap:
                delay = self.backoff[0]  # it ran a good while: this is a fresh failure
            self._set(child, GrpcUIState.BACKOFF)
            await asyncio.sleep(delay)
            delay = min(delay * 2, cap)
            child.restarts += 1

    async def _once(self, child: _Child, port: int) -> str:
        """Run grpcui once, until it exits; why it exited: ``exit``, ``port``, ``unsupported``."""
        argv = [
            self.executable,
            "-plaintext",
            "-bind",
            "127.0.0.1",
            "-port",
            str(port),
            child.target,
        ]
        wrapped, preexec = pdeathsig_argv(argv)
        env = {**os.environ, **owner_marker(), GRPCUI_ENV: child.name}
        self._set(child, GrpcUIState.STARTING, url=None)
        try:
            proc = await asyncio.create_subprocess_exec(
                *wrapped,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=preexec,
            )
        except OSError as exc:
            self._set(child, GrpcUIState.BACKOFF, error=f"cannot start grpcui: {exc}")
            return "exit"
        child.pid = proc.pid
        guard = default_guard()  # no grpcui outlives us, even on SIGKILL, on any platform
        guard.register(proc.pid, group=True, label=f"grpcui:{child.name}")
        child.lines.append(f"{time.strftime('%H:%M:%S')} [kportforward] spawned pid {proc.pid}")
        ready = asyncio.Event()
        reader = asyncio.create_task(self._read(child, proc, ready))
        try:
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait(
                {waiter, reader}, timeout=self.ready_timeout, return_when="FIRST_COMPLETED"
            )
            waiter.cancel()
            if not ready.is_set() and not reader.done():  # silent: not a usable grpcui
                child.lines.append(
                    f"{time.strftime('%H:%M:%S')} no URL line within {self.ready_timeout:g} s"
                )
                await _stop(proc)
            await reader  # EOF: grpcui exited (or was stopped)
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                await asyncio.shield(_stop(proc))
            reader.cancel()
            guard.unregister(proc.pid)
            child.pid = None
        text = "\n".join(child.lines)
        last = next((ln for ln in reversed(child.lines) if "[kportforward]" not in ln), "")
        child.last_error = (
            f"grpcui exited with code {code}: {last.split(' ', 1)[-1]}"
            if last
            else f"grpcui exited with code {code}"
        )
        if _NO_REFLECTION in text:
            self._set(child, GrpcUIState.UNSUPPORTED, url=None, error=child.last_error)
            return "unsupported"
        if child.state is GrpcUIState.STARTING and _LISTEN_FAILED.search(text):
            return "port"
        return "exit"

    async def _read(
        self, child: _Child, proc: asyncio.subprocess.Process, ready: asyncio.Event
    ) -> None:
        """Keep grpcui's lines until EOF (the pipe must be drained); set ``ready`` at its URL."""
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            line = raw.decode("utf-8", "replace").rstrip()
            child.lines.append(f"{time.strftime('%H:%M:%S')} {line}")
            if (m := _READY.search(line)) and not ready.is_set():
                ready.set()
                self._set(child, GrpcUIState.RUNNING, url=m.group(1))

    def _pick_port(self, child: _Child, bad: set[int]) -> int | None:
        taken = {c.port for c in self._children.values() if c is not child} | bad
        candidates = range(self.first_port, self.first_port + self.port_range)
        preferred = [child.port] if child.port is not None else []
        for port in [*preferred, *candidates]:
            if port not in taken and _port_free(port):
                return port
        return None

    def _set(
        self, child: _Child, state: GrpcUIState, *, url: Any = _KEEP, error: Any = _KEEP
    ) -> None:
        child.state = state
        if url is not _KEEP:
            child.url = url
        if error is not _KEEP:
            child.last_error = error
        if self.on_change is not None:
            self.on_change(_snapshot(child))


def _snapshot(child: _Child) -> GrpcUIStatus:
    return GrpcUIStatus(
        child.name,
        child.state,
        child.url,
        child.port,
        child.pid,
        child.restarts,
        child.last_error,
    )


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _stop(proc: asyncio.subprocess.Process, wait: float = 1.0) -> None:
    """The platform's stop plan on the child's group (SIGINT → SIGTERM → SIGKILL on POSIX)."""
    from kportforward.platform import current

    platform = current()
    for step in platform.stop_plan(wait, wait):
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            platform.signal(proc.pid, step)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), step.wait if step.wait else 10)
