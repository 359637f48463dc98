"""Give every forward a local port in one deterministic batch, and say why any port moved.

Rules, in this order:

1. A forward the supervisor already runs (``reserved``) keeps the port it runs on: its own kubectl
   holds that port, which must not count against it at reload.
2. Every other forward keeps its configured port when the port is free and no forward earlier by
   name (or a reserved one) claims it on an overlapping address.
3. The rest, by name, get the next free port upward from the configured one, skipping ports that
   other forwards claim and privileged ports, wrapping within 1024–65535.
4. A forward whose address is not configured on this machine, or whose port is invalid, or for which
   no port is left, is reported in ``unresolved``; nothing is raised.

Nothing here kills or signals anything: a port held by a process we did not start is not ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from kportforward.core.models import ForwardSpec
from kportforward.core.ports import (
    FIRST_UNPRIVILEGED_PORT,
    MAX_PORT,
    MIN_PORT,
    PortCheck,
    PortChecker,
    addresses_overlap,
    normalize_address,
)

V = TypeVar("V")


def _frozen(d: Mapping[str, V]) -> Mapping[str, V]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True, slots=True)
class PortMove:
    """A forward moved off its configured port, and why (one human line)."""

    from_port: int
    to_port: int
    reason: str
    """E.g. ``8080 is held by python3 (pid 4121); api moved to 8081``."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of one ``resolve_conflicts`` batch. All mappings are read-only."""

    ports: Mapping[str, int] = field(default_factory=lambda: _frozen({}))
    """Forward name → the local port to use, for every resolved forward."""
    moves: Mapping[str, PortMove] = field(default_factory=lambda: _frozen({}))
    """Forward name → the move, for forwards not on their configured port."""
    unresolved: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    """Forward name → why no port could be given (the forward cannot start)."""

    def port_for(self, name: str) -> int | None:
        """The port for ``name``, or None when it is unresolved or unknown."""
        return self.ports.get(name)


class _Claims:
    """Ports given out in this batch, by port, with the address and forward that claimed each."""

    def __init__(self) -> None:
        self._by_port: dict[int, list[tuple[str, str]]] = {}

    def owner(self, port: int, address: str) -> str | None:
        for claimed_address, name in self._by_port.get(port, ()):
            if addresses_overlap(claimed_address, address):
                return name
        return None

    def add(self, port: int, address: str, name: str) -> None:
        self._by_port.setdefault(port, []).append((address, name))


def _valid_port(port: object) -> bool:
    return isinstance(port, int) and not isinstance(port, bool) and MIN_PORT <= port <= MAX_PORT


def _candidates(start: int) -> Iterator[int]:
    """Ports upward from ``start + 1`` within 1024–65535, wrapping once, ``start`` itself last."""
    span = MAX_PORT - FIRST_UNPRIVILEGED_PORT + 1
    first = max(start + 1, FIRST_UNPRIVILEGED_PORT)
    if first > MAX_PORT:
        first = FIRST_UNPRIVILEGED_PORT
    offset = first - FIRST_UNPRIVILEGED_PORT
    for i in range(span):
        yield FIRST_UNPRIVILEGED_PORT + (offset + i) % span


def resolve_conflicts(
    specs: Iterable[ForwardSpec],
    checker: PortChecker,
    *,
    reserved: Mapping[str, int] | None = None,
    name_holders: bool = True,
) -> Resolution:
    """Assign a local port to every forward in one batch; see the module docstring for the rules.

    ``reserved`` maps forward names to the ports their own running kubectl holds. ``name_holders``
    looks up (once per batch, via psutil) which process holds each busy configured port, for the
    reasons; turn it off where only the numbers matter.
    """
    # Sorting by (name, …) is the one tie-breaker, so shuffled input gives the same answer.
    ordered = sorted(specs, key=lambda s: (s.name, s.local_port, s.address))
    reserved = dict(reserved or {})
    claims = _Claims()
    ports: dict[str, int] = {}
    moves: dict[str, PortMove] = {}
    unresolved: dict[str, str] = {}

    # 1. Forwards already running keep their port.
    rest: list[ForwardSpec] = []
    for spec in ordered:
        held = reserved.get(spec.name)
        address = normalize_address(spec.address)
        if held is not None and _valid_port(held) and claims.owner(held, address) is None:
            claims.add(held, address, spec.name)
            ports[spec.name] = held
            if held != spec.local_port:
                moves[spec.name] = PortMove(
                    spec.local_port,
                    held,
                    f"{spec.name} stays on {held}, where it is already running",
                )
        else:
            rest.append(spec)

    # 2. One batch check of every configured port, grouped by address.
    by_address: dict[str, list[int]] = {}
    for spec in rest:
        if _valid_port(spec.local_port):
            by_address.setdefault(normalize_address(spec.address), []).append(spec.local_port)
    records: dict[tuple[str, int], PortCheck] = {}
    for address, wanted in by_address.items():
        for port, rec in checker.check_many_records(wanted, address).items():
            records[(address, port)] = rec

    # 3. Keep configured ports that are free and unclaimed; note why the others must move.
    movers: list[tuple[ForwardSpec, str | PortCheck]] = []
    for spec in rest:
        address = normalize_address(spec.address)
        if not _valid_port(spec.local_port):
            unresolved[spec.name] = f"{spec.local_port} is not a valid port for {spec.name}"
            continue
        other = claims.owner(spec.local_port, address)
        if other is not None:
            movers.append((spec, f"{spec.local_port} is also configured for {other}"))
            continue
        rec = records[(address, spec.local_port)]
        if rec.available:
            claims.add(spec.local_port, address, spec.name)
            ports[spec.name] = spec.local_port
        elif rec.reason in ("address_not_available", "invalid"):
            unresolved[spec.name] = f"{rec.message}; {spec.name} cannot start"
        else:
            movers.append((spec, rec))

    if name_holders:
        busy = [why for _, why in movers if isinstance(why, PortCheck) and why.reason == "in_use"]
        named = {(r.address, r.port): r for r in checker.with_holders(busy)}
    else:
        named = {}

    # 4. Walk upward for each mover, in name order.
    for spec, why in movers:
        address = normalize_address(spec.address)
        to_port = None
        for port in _candidates(spec.local_port):
            if claims.owner(port, address) is None and checker.is_available(port, address):
                to_port = port
                break
        if isinstance(why, PortCheck):
            why = named.get((why.address, why.port), why).message
        if to_port is None:
            unresolved[spec.name] = (
                f"{why}; no free port between {FIRST_UNPRIVILEGED_PORT} and {MAX_PORT} "
                f"for {spec.name}"
            )
            continue
        claims.add(to_port, address, spec.name)
        ports[spec.name] = to_port
        reason = f"{why}; {spec.name} moved to {to_port}"
        moves[spec.name] = PortMove(spec.local_port, to_port, reason)

    return Resolution(
        ports=_frozen(dict(sorted(ports.items()))),
        moves=_frozen(dict(sorted(moves.items()))),
        unresolved=_frozen(dict(sorted(unresolved.items()))),
    )
