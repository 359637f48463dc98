"""The port allocator: the one owner of every forward's local port.

Every (re)start asks for a port here, and the configured port is tried first each time, so a
forward pushed aside by a foreign process returns home as soon as the holder is gone (and the
"moved" reason clears). A move carries its reason. Ports held or assigned to our other forwards are
never handed out twice; a port held by anyone else is never taken — the one exception is our own
stale kubectl from an earlier run (``reclaim.py``), which is provably ours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from kportforward.core.conflicts import resolve_conflicts
from kportforward.core.models import ForwardSpec
from kportforward.core.ports import PortChecker

log = logging.getLogger(__name__)

Assignment = tuple[int, str | None]
"""(port, why it moved — None when it is the configured port)."""


class PortAllocator:
    """Local ports for every forward; checks run in a thread, one decision at a time."""

    def __init__(
        self,
        checker: PortChecker,
        notice: Callable[[str], None] = lambda _m: None,
        reclaim: bool = True,
        kubectl: str | None = None,
    ) -> None:
        self.checker = checker
        self._notice = notice
        self._reclaim = reclaim
        self._kubectl = kubectl
        """The kubectl we run: reclaim stops only a leftover of exactly that executable."""
        self.held: dict[str, tuple[ForwardSpec, int]] = {}
        """Forward name → (spec, port) for every forward that holds or is about to hold a port."""
        self._batch: dict[str, Assignment] = {}
        self._unresolved: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def prepare(self, specs: Iterable[ForwardSpec]) -> None:
        """Resolve many forwards in one batch (deterministic moves); ``take`` hands them out."""
        specs = list(specs)
        if specs:
            async with self._lock:
                self._batch.update(await asyncio.to_thread(self._resolve, specs))

    async def take(self, spec: ForwardSpec) -> Assignment:
        """The port for ``spec`` now: its batch result, else the configured port if free, else a
        move. Raises LookupError(reason) when no port can be had."""
        async with self._lock:
            got = self._batch.pop(spec.name, None)
            if got is None:
                self.held.pop(spec.name, None)
                self.checker.invalidate(spec.local_port)
                got = (await asyncio.to_thread(self._resolve, [spec])).get(spec.name)
            if got is None:
                raise LookupError(self._unresolved.pop(spec.name, "no free local port"))
            self.held[spec.name] = (spec, got[0])
            if got[1]:
                self._notice(got[1])
            return got

    async def home_available(self, spec: ForwardSpec) -> bool:
        """True when ``spec``'s configured port is free now (not ours, not anyone's)."""
        if any(port == spec.local_port for n, (_s, port) in self.held.items() if n != spec.name):
            return False
        self.checker.invalidate(spec.local_port)
        return bool(
            await asyncio.to_thread(self.checker.is_available, spec.local_port, spec.address)
        )

    def forget(self, port: int) -> None:
        """A bind of ``port`` failed after a check said it was free: check it again next time."""
        self.checker.invalidate(port)

    def release(self, name: str) -> None:
        """``name`` no longer holds a port (stopped, removed)."""
        self.held.pop(name, None)
        self._batch.pop(name, None)

    def _resolve(self, specs: list[ForwardSpec]) -> dict[str, Assignment]:
        """Blocking: reclaim our own stale kubectl on configured ports, then resolve_conflicts."""
        names = {s.name for s in specs}
        reserved = {n: port for n, (_, port) in self.held.items() if n not in names}
        reserved.update((n, a[0]) for n, a in self._batch.items() if n not in names)
        others = [spec for n, (spec, _) in self.held.items() if n in reserved]
        if self._reclaim:
            for spec in specs:
                if spec.local_port in reserved.values():
                    continue
                if not self.checker.is_available(spec.local_port, spec.address):
                    msg = _reclaim(spec.local_port, spec.address, spec.name, self._kubectl)
                    if msg:
                        self.checker.invalidate(spec.local_port)
                        log.info("%s: %s", spec.name, msg)
        resolution = resolve_conflicts([*specs, *others], self.checker, reserved=reserved)
        self._unresolved.update(resolution.unresolved)
        out: dict[str, Assignment] = {}
        for spec in specs:
            port = resolution.ports.get(spec.name)
            if port is not None:
                move = resolution.moves.get(spec.name)
                out[spec.name] = (port, move.reason if move else None)
        return out


def _reclaim(port: int, address: str, name: str, kubectl: str | None) -> str | None:
    try:
        from kportforward.supervisor.reclaim import reclaim_stale_kubectl

        return reclaim_stale_kubectl(port, address, name, kubectl=kubectl)
    except Exception as exc:
        log.warning("reclaim on port %s failed: %s", port, exc)
        return None
