"""resolve_conflicts with a real PortChecker and real sockets: keeps, moves, reasons, order."""

from __future__ import annotations

import contextlib
import random
import socket
from contextlib import ExitStack

import pytest

from kportforward.core.conflicts import PortMove, Resolution, resolve_conflicts
from kportforward.core.models import ForwardSpec
from kportforward.core.ports import PortCheck, PortChecker
from kportforward.supervisor.reclaim import find_stale_kubectl, reclaim_stale_kubectl
from tests.unit.test_ports import PortHolder


def spec(name: str, port: int, address: str = "127.0.0.1") -> ForwardSpec:
    return ForwardSpec(
        name=name, target=f"service/{name}", target_port=80, local_port=port, address=address
    )


def free_block(n: int) -> int:
    """The first of ``n`` consecutive ports that are free now (found by binding them all)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 30000)
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError("no free block of ports")


def hold(port: int, stack: ExitStack, address: str = "127.0.0.1") -> socket.socket:
    s = stack.enter_context(socket.socket())
    s.bind((address, port))
    s.listen(1)
    return s


def test_free_distinct_ports_are_kept():
    base = free_block(3)
    res = resolve_conflicts([spec("a", base), spec("b", base + 1)], PortChecker())
    assert dict(res.ports) == {"a": base, "b": base + 1}
    assert not res.moves and not res.unresolved


def test_a_shared_port_goes_to_the_first_name_and_the_other_moves_with_a_reason():
    base = free_block(3)
    res = resolve_conflicts([spec("web", base), spec("api", base)], PortChecker())
    assert res.ports["api"] == base
    assert res.moves["web"] == PortMove(
        base, base + 1, f"{base} is also configured for api; web moved to {base + 1}"
    )


def test_foreign_holder_is_named_and_survives_resolution_and_a_reclaim_attempt():
    with ExitStack() as stack:
        base = free_block(3)
        holder = stack.enter_context(PortHolder(port=base))
        res = resolve_conflicts([spec("api", base)], PortChecker())
        move = res.moves["api"]
        assert (move.from_port, move.to_port) == (base, base + 1)
        assert move.reason.startswith(f"{base} is held by python")
        assert move.reason.endswith(f"(pid {holder.pid}); api moved to {base + 1}")
        # The resolver never kills; nor does the reclaim path for a process that is not our kubectl.
        assert holder.alive()
        assert find_stale_kubectl(base, forward_name="api") is None
        assert reclaim_stale_kubectl(base, forward_name="api") is None
        assert reclaim_stale_kubectl(base) is None
        assert holder.alive()
        with socket.create_connection(("127.0.0.1", base), timeout=5):
            pass  # still listening


def test_moves_skip_ports_other_forwards_claim():
    with ExitStack() as stack:
        base = free_block(4)
        hold(base, stack)
        res = resolve_conflicts(
            [spec("a", base), spec("b", base + 1)], PortChecker(), name_holders=False
        )
        assert res.ports == {"a": base + 2, "b": base + 1}
        assert res.moves["a"].reason == f"{base} is in use on 127.0.0.1; a moved to {base + 2}"


def test_a_busy_port_walks_up_past_other_busy_ports():
    with ExitStack() as stack:
        base = free_block(4)
        for port in (base, base + 1, base + 2):
            hold(port, stack)
        res = resolve_conflicts([spec("a", base)], PortChecker(), name_holders=False)
        assert res.ports["a"] == base + 3
        assert res.moves["a"].reason == f"{base} is in use on 127.0.0.1; a moved to {base + 3}"


def test_the_search_wraps_from_65535_to_1024_and_skips_privileged_ports():
    with ExitStack() as stack:
        with contextlib.suppress(OSError):  # already busy is just as good
            hold(65535, stack)
        res = resolve_conflicts([spec("top", 65535)], PortChecker(), name_holders=False)
        assert 1024 <= res.ports["top"] < 65535


def test_addresses_only_conflict_when_they_overlap():
    base = free_block(3)
    specs = [spec("a", base), spec("b", base, "127.0.0.2"), spec("c", base, "0.0.0.0")]
    res = resolve_conflicts(specs, PortChecker())
    assert res.ports["a"] == base and res.ports["b"] == base  # disjoint loopback addresses
    assert res.ports["c"] != base
    assert res.moves["c"].reason.startswith(f"{base} is also configured for a")


def test_unconfigured_address_and_invalid_port_are_reported_not_raised():
    res = resolve_conflicts(
        [spec("far", 18080, "192.0.2.1"), spec("bad", 0), spec("bad2", 70000)], PortChecker()
    )
    assert not res.ports
    assert res.unresolved["far"] == (
        "address 192.0.2.1 is not configured on this machine; far cannot start"
    )
    assert "0 is not a valid port" in res.unresolved["bad"]
    assert "70000 is not a valid port" in res.unresolved["bad2"]


def test_reserved_forward_keeps_the_port_its_own_kubectl_holds():
    with ExitStack() as stack:
        base = free_block(3)
        hold(base, stack)  # stands in for our own running kubectl on `api`'s port
        hold(base + 1, stack)  # `moved` already runs on base+1 after an earlier move
        specs = [spec("api", base), spec("other", base), spec("moved", base - 5)]
        res = resolve_conflicts(specs, PortChecker(), reserved={"api": base, "moved": base + 1})
        assert res.ports["api"] == base and "api" not in res.moves
        assert res.ports["moved"] == base + 1
        assert "already running" in res.moves["moved"].reason
        assert res.ports["other"] == base + 2
        assert res.moves["other"].reason.startswith(f"{base} is also configured for api")


def test_same_inputs_in_any_order_give_the_same_resolution():
    with ExitStack() as stack:
        base = free_block(30)
        for port in range(base, base + 30, 4):
            hold(port, stack)
        specs = [spec(f"svc{i:02d}", base + (i * 7) % 12) for i in range(24)]
        checker = PortChecker()
        first = resolve_conflicts(specs, checker)
        rng = random.Random(7)
        for _ in range(5):
            shuffled = specs[:]
            rng.shuffle(shuffled)
            again = resolve_conflicts(shuffled, PortChecker())
            assert again == first
        assert len(set(first.ports.values())) == len(first.ports) == 24
        assert len(first.moves) >= 12


def test_resolution_is_read_only():
    res = resolve_conflicts([], PortChecker())
    assert res == Resolution()
    with pytest.raises(TypeError):
        res.ports["x"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        res.ports = {}  # type: ignore[misc]


class _ScriptedChecker(PortChecker):
    """Narrow fake for rule logic the machine cannot show (root binds <1024; a full port range)."""

    def __init__(self, verdict):
        super().__init__()
        self._verdict = verdict

    def _lookup(self, port, address):
        return self._verdict(port, address)

    def check_many_records(self, ports, address="127.0.0.1"):
        return {p: self._verdict(p, address) for p in ports}


def test_privileged_port_without_permission_moves_to_the_first_unprivileged_port():
    def verdict(port, address):
        if port < 1024:
            return PortCheck(port, address, False, "permission_denied", "Permission denied")
        return PortCheck(port, address, True, "free")

    res = resolve_conflicts([spec("web", 80)], _ScriptedChecker(verdict))
    assert res.moves["web"] == PortMove(
        80, 1024, "80 is a privileged port (permission denied on 127.0.0.1); web moved to 1024"
    )


def test_no_free_port_anywhere_is_unresolved_not_raised():
    res = resolve_conflicts(
        [spec("a", 8080)],
        _ScriptedChecker(lambda p, a: PortCheck(p, a, False, "in_use", "")),
        name_holders=False,
    )
    assert res.unresolved["a"] == (
        "8080 is in use on 127.0.0.1; no free port between 1024 and 65535 for a"
    )


def test_a_localhost_forward_moves_off_a_port_another_program_holds_on_ipv6():
    """kubectl listens on 127.0.0.1 and ::1 for ``localhost`` and keeps running on one alone, so
    a port taken on ::1 only must move (a browser may resolve localhost to ::1 first)."""
    try:
        holder = socket.socket(socket.AF_INET6)
        holder.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 on this machine")
    with holder:
        holder.listen(1)
        port = holder.getsockname()[1]
        res = resolve_conflicts(
            [ForwardSpec("api", "service/api", 80, port, address="localhost")],
            PortChecker(),
            name_holders=False,
        )
        assert res.ports["api"] != port
        assert f"{port} is in use on ::1" in res.moves["api"].reason
