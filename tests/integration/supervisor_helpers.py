"""Supervisor integration test helpers: fast tunings, waiting, finding our kubectls."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil

from kportforward.core.backoff import Backoff
from kportforward.core.models import Config, ForwardSpec, Settings
from kportforward.core.states import ForwardState
from kportforward.supervisor.reclaim import OWNER_ENV
from kportforward.supervisor.runner import Tuning
from kportforward.supervisor.supervisor import Supervisor
from tests.conftest import free_ports

RUNNING = ForwardState.RUNNING

FAST = Tuning(
    monitoring_interval=0.2,
    probe_timeout=0.5,
    connect_timeout=30.0,
    stop_interrupt_wait=1.0,
    stop_term_wait=0.5,
)


def fast_backoff() -> Backoff:
    """Small delays so restarts happen within a test's patience."""
    return Backoff(base=0.1, cap=2.0, reset_after=3.0)


def cluster_backoff() -> Backoff:
    """Access-probe steps for suspended clusters: 0.2, 0.4, 0.8, 1.0 …"""
    return Backoff(base=0.2, cap=1.0, jitter=0.0)


def echo_specs(names_targets: Iterable[tuple[str, str]], **kw: Any) -> tuple[ForwardSpec, ...]:
    """Forwards to each target's echo port (9000 in generated worlds) on free local ports."""
    pairs = list(names_targets)
    ports = free_ports(len(pairs))
    return tuple(
        ForwardSpec(name, target, 9000, port, namespace="default", **kw)
        for (name, target), port in zip(pairs, ports, strict=True)
    )


class Harness:
    """A Supervisor on the test's loop, with every event collected."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.events: list[Any] = []
        self.traffic: list[Any] = []
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def _collect(self) -> None:
        from kportforward.supervisor.events import TrafficEvent

        async for ev in self.sup.events():
            # Traffic ticks (one a second per busy forward) are kept apart from the transitions.
            (self.traffic if isinstance(ev, TrafficEvent) else self.events).append(ev)

    def state(self, name: str) -> ForwardState:
        """One forward's current state."""
        return self.sup.status(name).state

    def states(self, name: str) -> list[ForwardState]:
        """Every state ``name`` went through, in order."""
        return [
            e.status.state
            for e in self.events
            if getattr(e, "forward", None) == name and hasattr(e, "status")
        ]

    async def wait(self, pred: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
        """Poll ``pred`` until true; fail with the snapshot after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                snap = [(s.name, s.state.value, s.reason) for s in self.sup.snapshot()]
                raise AssertionError(f"timed out waiting for {what or pred}: {snap}")
            await asyncio.sleep(0.05)

    async def all_running(self, timeout: float = 60.0) -> None:
        """Wait until every forward is Running."""
        await self.wait(
            lambda: all(s.state is RUNNING for s in self.sup.snapshot()), timeout, "all Running"
        )

    async def close(self) -> None:
        """Shut down and let the collector finish."""
        await self.sup.shutdown()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._task, 5)


def make_supervisor(
    kubectl: str, kubeconfig: str, specs: Iterable[ForwardSpec], **kw: Any
) -> Supervisor:
    """A Supervisor with the fast test tunings (overridable through ``kw``)."""
    config = Config(forwards=tuple(specs), settings=Settings(monitoring_interval=0.2))
    kw.setdefault("tuning", FAST)
    kw.setdefault("backoff", fast_backoff)
    kw.setdefault("cluster_backoff", cluster_backoff)
    kw.setdefault("sample_interval", 0.5)
    kw.setdefault("watch_interval", 0.2)
    return Supervisor(config, kubectl=kubectl, kubeconfig=kubeconfig, **kw)


def kubectls_of(owner_pid: int) -> list[psutil.Process]:
    """Live kubectl processes started by ``owner_pid`` (found by our env marker, never by name)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(OWNER_ENV) == str(owner_pid) and proc.status() != "zombie":
                found.append(proc)
    return found


def open_fds(*sims: Any) -> int:
    """File descriptors this process has open, minus sockets of the in-process simulators' loops.

    The simulators share our process; their backends' connections are theirs to close, not ours.
    """
    fds = set(os.listdir("/proc/self/fd"))
    loops = {getattr(sim, "_loop", None) for sim in sims} - {None}
    if loops:
        gc.collect()
        for obj in gc.get_objects():
            if isinstance(obj, asyncio.BaseTransport) and getattr(obj, "_loop", None) in loops:
                fds.discard(str(getattr(obj, "_sock_fd", "")))
    return len(fds)


async def echo(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` through 127.0.0.1:``port``, half-close, return everything that comes back."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(data)
            await writer.drain()
            writer.write_eof()
            return await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


# -- for the engine acceptance tests (tests/integration/test_engine_*.py) ----------------------

UPGRADES = r"/pods/[^/]+/portforward"
"""The pod's portforward subresource: kubectl 1.31+ asks for it once (a WebSocket GET) per run."""


def spawns(sim: Any) -> int:
    """kubectl runs that reached a pod, counted on the cluster's side, so the count holds
    whatever the supervisor calls a restart: kubectl 1.31+ sends one WebSocket GET per run (and a
    POST only when that fails); SPDY-only runs (1.27-1.30, or the WebSocket switched off) send
    one POST. The larger of the two counts is the number of runs either way."""
    return max(int(sim.count("GET", UPGRADES)), int(sim.count("POST", UPGRADES)))


def statuses(h: Harness, name: str) -> list[Any]:
    """Every status ``name`` was shown with through the event stream, in order."""
    return [e.status for e in h.events if getattr(e, "forward", None) == name]


def mentioned(h: Harness, pattern: str, *, forwards: bool = True) -> list[Any]:
    """Events whose text (their repr: every field of a typed event) matches ``pattern``;
    ``forwards=False`` leaves out per-forward events (for what the header or a notice says)."""
    rx = re.compile(pattern, re.IGNORECASE)
    return [
        e
        for e in h.events
        if (forwards or getattr(e, "forward", None) is None) and rx.search(repr(e))
    ]


async def sample(h: Harness, name: str, seconds: float, every: float = 0.05) -> list[Any]:
    """``name``'s snapshot every ``every`` seconds for ``seconds``: (wall time, status) pairs."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append((time.time(), h.sup.status(name)))
        await asyncio.sleep(every)
    return seen


async def echo_within(port: int, seconds: float, data: bytes = b"ping") -> float:
    """Echo through ``port`` until it works; returns the seconds it took (fails after
    ``seconds``). Each try has a short timeout so a hung tunnel does not eat the budget."""
    start = time.monotonic()
    last: BaseException | None = None
    while time.monotonic() - start < seconds:
        try:
            if await echo(port, data, timeout=1.0) == data:
                return time.monotonic() - start
        except (OSError, TimeoutError) as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"no echo through :{port} within {seconds} s (last error: {last!r})")


def merged_kubeconfig(path: Any, sims: Iterable[Any], current: str) -> None:
    """Write one kubeconfig holding every simulator's context, ``current`` selected (atomic)."""
    import yaml

    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
    }
    for sim in sims:
        with open(sim.kubeconfig_path, encoding="utf-8") as fh:
            one = yaml.safe_load(fh)
        for section in ("clusters", "users", "contexts"):
            doc[section] += one[section]
    doc["current-context"] = current
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh)
    os.replace(tmp, path)
