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
from operator import attrgetter
from types import MappingProxyType
from typing import TypeVar

from kportforward.core.models import ForwardSpec
from kportforward.core.ports import (
    FIRST_UNPRIVILEGED_PORT,
    LOCALHOST,
    MAX_PORT,
    MIN_PORT,
    WILDCARD_ADDRESSES,
    PortCheck,
    PortChecker,
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
    """Ports given out in this batch, and by which forward, answering "who overlaps me here?"."""

    __slots__ = ("any_on_port", "exact", "wild_on_port")

    def __init__(self) -> None:
        self.exact: dict[tuple[str, int], str] = {}
        self.any_on_port: dict[int, str] = {}
        """The first claim on each port, whatever its address (a wildcard collides with all)."""
        self.wild_on_port: dict[int, str] = {}

    def owner(self, port: int, address: str) -> str | None:
        if address in WILDCARD_ADDRESSES:
            return self.any_on_port.get(port)
        return self.exact.get((address, port)) or self.wild_on_port.get(port)

    def add(self, port: int, address: str, name: str) -> None:
        self.exact.setdefault((address, port), name)
        self.any_on_port.setdefault(port, name)
        if address in WILDCARD_ADDRESSES:
            self.wild_on_port.setdefault(port, name)


_ORDER = attrgetter("name", "local_port", "address")


def _probe_address(spec: ForwardSpec) -> str:
    """What the checker is asked about: ``localhost`` as itself (kubectl listens on 127.0.0.1
    *and* ::1 for it, so the checker tests both), anything else normalized like the claims."""
    return LOCALHOST if spec.address == LOCALHOST else normalize_address(spec.address)


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
    ordered = sorted(specs, key=_ORDER)
    reserved = reserved or {}
    claims = _Claims()
    owner, claim = claims.owner, claims.add
    ports: dict[str, int] = {}
    moves: dict[str, PortMove] = {}
    unresolved: dict[str, str] = {}

    # 1. Forwards already running keep their port; the rest are checked in one batch per address.
    rest: list[tuple[ForwardSpec, str]] = []
    by_address: dict[str, list[int]] = {}
    for spec in ordered:
        name, address = spec.name, normalize_address(spec.address)
        held = reserved.get(name)
        if held is not None and _valid_port(held) and owner(held, address) is None:
            claim(held, address, name)
            ports[name] = held
            if held != spec.local_port:
                stay = f"{name} stays on {held}, where it is already running"
                moves[name] = PortMove(spec.local_port, held, stay)
            continue
        rest.append((spec, address))
        if _valid_port(spec.local_port):
            by_address.setdefault(_probe_address(spec), []).append(spec.local_port)
    records: dict[str, dict[int, PortCheck]] = {
        address: checker.check_many_records(wanted, address)
        for address, wanted in by_address.items()
    }

    # 2. Keep configured ports that are free and unclaimed; note why the others must move.
    movers: list[tuple[ForwardSpec, str, str | PortCheck]] = []
    for spec, address in rest:
        name, port = spec.name, spec.local_port
        if not _valid_port(port):
            unresolved[name] = f"{port} is not a valid port for {name}"
            continue
        other = owner(port, address)
        if other is not None:
            movers.append((spec, address, f"{port} is also configured for {other}"))
            continue
        rec = records[_probe_address(spec)][port]
        if rec.available:
            claim(port, address, name)
            ports[name] = port
        elif rec.reason in ("address_not_available", "invalid"):
            unresolved[name] = f"{rec.message}; {name} cannot start"
        else:
            movers.append((spec, address, rec))

    named: dict[tuple[str, int], PortCheck] = {}
    if name_holders:
        busy = [w for _, _, w in movers if isinstance(w, PortCheck) and w.reason == "in_use"]
        named = {(r.address, r.port): r for r in checker.with_holders(busy)}

    # 3. Walk upward for each mover, in name order.
    is_available = checker.is_available
    for spec, address, why in movers:
        name = spec.name
        to_port = None
        for port in _candidates(spec.local_port):
            if owner(port, address) is None and is_available(port, _probe_address(spec)):
                to_port = port
                break
        because = why if isinstance(why, str) else named.get((why.address, why.port), why).message
        if to_port is None:
            span = f"{FIRST_UNPRIVILEGED_PORT} and {MAX_PORT}"
            unresolved[name] = f"{because}; no free port between {span} for {name}"
            continue
        claim(to_port, address, name)
        ports[name] = to_port
        moves[name] = PortMove(spec.local_port, to_port, f"{because}; {name} moved to {to_port}")

    return Resolution(
        ports=_frozen(dict(sorted(ports.items()))),
        moves=_frozen(dict(sorted(moves.items()))),
        unresolved=_frozen(dict(sorted(unresolved.items()))),
    )
