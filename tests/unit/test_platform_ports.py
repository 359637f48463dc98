"""Port checks per platform, with real sockets: both families for ``localhost``, each platform's
bind plan, and a second bind that catches another program's overlapping listener (BSD's caveat)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from kportforward.core.ports import PortChecker, addresses_overlap, probe_port
from kportforward.platform import BindStep, for_name
from kportforward.platform.posix import LinuxPlatform
from tests.unit.test_ports import PortHolder


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no ::1 on this machine")


_V6_HOLDER = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET6)\n"
    "s.bind(('::1', 0)); s.listen(8)\n"
    "print(s.getsockname()[1], flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def v6_holder():
    """Another program listening on [::1] only (a foreign process, like a user's dev server)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _V6_HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    proc.port = int(proc.stdout.readline())  # type: ignore[attr-defined]
    yield proc
    proc.kill()
    proc.wait(10)
    for stream in (proc.stdin, proc.stdout):
        if stream:
            stream.close()


@needs_ipv6
def test_localhost_is_busy_when_another_program_holds_its_ipv6_half(v6_holder):
    port = v6_holder.port
    rec = probe_port(port, "localhost")
    assert (rec.available, rec.reason, rec.address) == (False, "in_use", "::1")
    assert probe_port(port, "127.0.0.1").available, "the IPv4 half alone is free"
    checker = PortChecker()
    assert checker.is_available(port, "localhost") is False
    assert checker.is_available(port, "127.0.0.1") is True
    assert checker.check(port, "localhost", holder=True).holder_pid == v6_holder.pid
    assert checker.check_many_records([port], "localhost")[port].address == "::1"
    assert checker.check_many([port], "127.0.0.1") == {port: True}


@needs_ipv6
def test_localhost_is_free_when_both_halves_are_and_invalidates_both():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    checker = PortChecker()
    assert checker.is_available(port, "localhost")
    assert set(checker._index) == {("127.0.0.1", port), ("::1", port)}
    assert checker.check_many([port], "localhost") == {port: True}
    checker.invalidate(port, "localhost")
    assert checker._index == {}


def test_localhost_overlaps_both_loopbacks_and_the_wildcards():
    assert addresses_overlap("localhost", "::1")
    assert addresses_overlap("::", "localhost")
    assert addresses_overlap("localhost", "0.0.0.0")
    assert addresses_overlap("localhost", "localhost")
    assert not addresses_overlap("localhost", "127.0.0.2")


def test_each_platform_binds_as_its_kubectl_will():
    assert for_name("linux").bind_plan("127.0.0.1") == (BindStep("127.0.0.1", reuseaddr=True),)
    assert for_name("win32").bind_plan("127.0.0.1") == (BindStep("127.0.0.1", exclusive=True),)
    # BSD: SO_REUSEADDR lets a specific address bind beside another program's wildcard, so the
    # wildcard is bound too (and the loopback for a wildcard); an IPv6 one may be missing.
    assert for_name("darwin").bind_plan("127.0.0.1") == (
        BindStep("127.0.0.1", reuseaddr=True),
        BindStep("0.0.0.0", reuseaddr=True),
    )
    assert for_name("darwin").bind_plan("::") == (
        BindStep("::", reuseaddr=True),
        BindStep("::1", reuseaddr=True, optional=True),
    )


class SecondBindPlatform(LinuxPlatform):
    """Linux with a BSD-shaped plan: kubectl's own bind, then a second address that another
    program may hold (127.0.0.3 stands in for macOS's wildcard, which Linux would refuse to
    bind beside any listener, so it cannot be shown with the real wildcard here)."""

    def bind_plan(self, address: str) -> tuple[BindStep, ...]:
        return (BindStep(address, reuseaddr=True), BindStep("127.0.0.3", reuseaddr=True))


def test_a_listener_caught_by_the_second_bind_makes_the_port_busy_and_says_where():
    holder = PortHolder("127.0.0.3")
    try:
        plat = SecondBindPlatform()
        rec = probe_port(holder.port, "127.0.0.1", platform=plat)
        assert (rec.available, rec.reason, rec.address) == (False, "in_use", "127.0.0.1")
        assert rec.detail == f"another program listens on 127.0.0.3:{holder.port}"
        assert probe_port(holder.port, "127.0.0.1").available, "Linux's one bind says free"
        checker = PortChecker(platform=plat)
        assert checker.platform is plat
        assert checker.check_many([holder.port], "127.0.0.1") == {holder.port: False}
    finally:
        holder.close()


def test_an_optional_second_address_the_machine_lacks_does_not_make_the_port_busy():
    class MissingV6(LinuxPlatform):
        def bind_plan(self, address: str) -> tuple[BindStep, ...]:
            # 192.0.2.1 (TEST-NET-1) is configured nowhere: "address not available".
            return (BindStep(address, reuseaddr=True), BindStep("192.0.2.1", optional=True))

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert probe_port(port, "127.0.0.1", platform=MissingV6()).available
