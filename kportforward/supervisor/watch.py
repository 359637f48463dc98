"""Small watchers with explicit inputs and a callback; none of them knows the Supervisor.

- :class:`Ticker` runs an async callback every ``interval`` seconds (the kubeconfig poll).
- :class:`ConfigWatcher` stats the config sources and loads them again when one changes.
- :class:`ProcessSampler` reads RSS and CPU of a set of pids with psutil.

Each is one task, cheap at rest, started with ``start()`` and ended with ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)


class Ticker:
    """Call ``tick()`` every ``interval`` seconds until closed; an exception is logged, not
    fatal."""

    def __init__(self, name: str, interval: float, tick: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self.interval = interval
        self._tick = tick
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin ticking (on the running loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; trying again next tick", self.name)

    async def close(self) -> None:
        """Stop ticking; returns once the task has ended."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class ConfigWatcher(Ticker):
    """Load the config again when any of its source files changes (mtime, size, presence).

    ``sources()`` lists the files; ``load()`` (run in a thread) returns the new config or raises;
    ``on_change(config, error)`` gets exactly one of them.
    """

    def __init__(
        self,
        sources: Callable[[], Iterable[Any]],
        load: Callable[[], Any],
        on_change: Callable[[Any, Exception | None], Awaitable[None]],
        interval: float = 1.0,
    ) -> None:
        super().__init__("config-watch", interval, self._check)
        self._sources = sources
        self._load = load
        self._on_change = on_change
        self._seen = self._signature()

    def _signature(self) -> tuple[Any, ...]:
        out: list[tuple[str, int | None, int | None]] = []
        for path in self._sources():
            try:
                st = os.stat(path)
                out.append((str(path), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(path), None, None))
        return tuple(out)

    async def _check(self) -> None:
        now = await asyncio.to_thread(self._signature)
        if now == self._seen:
            return
        self._seen = now
        try:
            config = await asyncio.to_thread(self._load)
        except Exception as exc:  # keep running on the old config; the callback says why
            await self._on_change(None, exc)
            return
        await self._on_change(config, None)


class ProcessSampler(Ticker):
    """Every ``interval`` seconds, RSS and CPU% of each pid ``pids()`` names, to ``on_sample``."""

    def __init__(
        self,
        pids: Callable[[], Iterable[int]],
        on_sample: Callable[[dict[int, tuple[int, float] | None]], None],
        interval: float = 5.0,
    ) -> None:
        super().__init__("psutil-sampler", interval, self._sample)
        self._pids = pids
        self._on_sample = on_sample
        self._procs: dict[int, Any] = {}

    async def _sample(self) -> None:
        import psutil

        out: dict[int, tuple[int, float] | None] = {}
        for pid in self._pids():
            ps = self._procs.get(pid)
            try:
                if ps is None:
                    ps = self._procs[pid] = psutil.Process(pid)
                    ps.cpu_percent(None)  # the first call only sets the baseline
                with ps.oneshot():
                    out[pid] = (ps.memory_info().rss, ps.cpu_percent(None))
            except psutil.Error:
                out[pid] = None
        for pid in [p for p in self._procs if p not in out]:
            del self._procs[pid]
        self._on_sample(out)


class SleepDetector(Ticker):
    """Notices that the machine slept (or the process was stopped): a tick that arrives far too
    late, or a wall clock that jumped ahead of the monotonic one. ``on_wake(seconds)`` gets the
    time that went missing."""

    def __init__(
        self,
        on_wake: Callable[[float], Awaitable[None]],
        interval: float = 1.0,
        threshold: float = 4.0,
        clocks: tuple[Callable[[], float], Callable[[], float]] | None = None,
    ) -> None:
        super().__init__("sleep-detector", interval, self._check)
        self._on_wake = on_wake
        self.threshold = threshold
        import time

        self._mono, self._wall = clocks or (time.monotonic, time.time)
        self._last = (self._mono(), self._wall())

    def missing(self) -> float:
        """Seconds lost since the last tick (0 when the tick came on time); moves the marks on."""
        mono, wall = self._mono(), self._wall()
        last_mono, last_wall = self._last
        self._last = (mono, wall)
        late = (mono - last_mono) - self.interval
        jumped = (wall - last_wall) - (mono - last_mono)
        lost = max(late, jumped)
        return lost if lost >= self.threshold else 0.0

    async def _check(self) -> None:
        lost = self.missing()
        if lost:
            await self._on_wake(lost)


class NetworkWatcher(Ticker):
    """Notices that the local addresses or the default route changed (Wi-Fi, VPN, docking);
    ``on_change(reason)`` is called once per change. psutil's interface list, read in a thread."""

    def __init__(
        self,
        on_change: Callable[[str], Awaitable[None]],
        interval: float = 2.0,
        read: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__("network-watch", interval, self._check)
        self._on_change = on_change
        self._read = read or network_signature
        self._seen: Any = None

    async def _check(self) -> None:
        now = await asyncio.to_thread(self._read)
        if self._seen is not None and now != self._seen:
            self._seen = now
            await self._on_change("the network changed")
        self._seen = now


def network_signature() -> tuple[Any, ...]:
    """The machine's non-loopback addresses and (on Linux) its default route, comparable."""
    import psutil

    addrs = []
    for name, entries in sorted(psutil.net_if_addrs().items()):
        for entry in entries:
            if entry.address and not entry.address.startswith(("127.", "::1", "fe80")):
                addrs.append((name, str(entry.address)))
    route = ""
    with contextlib.suppress(OSError), open("/proc/net/route", encoding="ascii") as f:
        route = next((ln.split()[0] for ln in f if ln.split()[1:2] == ["00000000"]), "")
    return (tuple(sorted(addrs)), route)
