"""PortChecker against real sockets on 127.0.0.1: held ports, TTL expiry, invalidation, reasons."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kportforward.core.ports import PortChecker, addresses_overlap, probe_port
from tests.conftest import free_ports

_HOLDER_SCRIPT = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket()
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(8)
    print(s.getsockname()[1], flush=True)
    sys.stdin.read()  # hold the port until the test closes our stdin
    """
)


class PortHolder:
    """A foreign helper process that listens on ``address:port`` (0: any free port) until closed."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER_SCRIPT, address, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"port holder failed to listen on {address}:{port}")
        self.port = int(line)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        """True while the helper process has not exited."""
        return self.proc.poll() is None

    def close(self) -> None:
        """Stop the helper and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()

    def __enter__(self) -> PortHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port(address: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class FakeTimer:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def holder():
    with PortHolder() as h:
        yield h


def test_free_port_is_available():
    port = free_port()
    rec = PortChecker().check(port)
    assert rec.available and rec.reason == "free"
    assert (rec.port, rec.address) == (port, "127.0.0.1")


def test_port_held_by_a_foreign_process_is_in_use_and_the_holder_is_named(holder):
    checker = PortChecker()
    assert checker.is_available(holder.port) is False
    plain = checker.check(holder.port)
    assert plain.reason == "in_use" and plain.holder_pid is None  # no psutil scan unless asked
    rec = checker.check(holder.port, holder=True)
    assert rec.reason == "in_use"
    assert rec.holder_pid == holder.pid
    assert rec.holder_name and "python" in rec.holder_name
    assert rec.message == f"{holder.port} is held by {rec.holder_name} (pid {holder.pid})"
    # The named record is cached: asking again costs no scan and keeps the name.
    assert checker.check(holder.port).holder_pid == holder.pid
    assert holder.alive()


def test_a_wildcard_listener_makes_loopback_busy():
    with PortHolder("0.0.0.0") as h:
        assert probe_port(h.port, "127.0.0.1").reason == "in_use"
        assert probe_port(h.port, "0.0.0.0").reason == "in_use"


def test_answers_are_cached_until_the_ttl_expires():
    timer = FakeTimer()
    checker = PortChecker(ttl=5.0, timer=timer)
    port = free_port()
    assert checker.is_available(port) is True
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        timer.now += 4.9
        assert checker.is_available(port) is True  # stale but within the TTL: the cached answer
        info = checker.cache_info()
        assert (info.hits, info.misses, info.size) == (1, 1, 1)
        timer.now += 0.2
        assert checker.is_available(port) is False  # expired: bound again
        assert checker.cache_info().misses == 2


def test_invalidate_forgets_one_port_and_only_on_the_given_address():
    timer = FakeTimer()
    checker = PortChecker(ttl=60, timer=timer)
    port, other = free_ports(2)
    assert checker.check_many([port, other]) == {port: True, other: True}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        checker.invalidate(port, address="127.0.0.2")  # another address: nothing forgotten
        assert checker.is_available(port) is True
        checker.invalidate(port)
        assert checker.is_available(port) is False
        assert checker.cache_info().size == 2
    checker.invalidate(port, address="127.0.0.1")
    assert checker.is_available(port) is True
    checker.invalidate()
    assert checker.cache_info().size == 0


def test_a_port_in_time_wait_from_an_earlier_kubectl_counts_as_free():
    """Go sets SO_REUSEADDR on POSIX on both the old and the new listener, so TIME_WAIT leftovers
    of an earlier kubectl do not stop the next one; our probe must say the same."""
    if sys.platform == "win32":
        pytest.skip("POSIX SO_REUSEADDR semantics")
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the earlier kubectl did
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the side that closes first keeps the TIME_WAIT entry on `port`
    client.close()
    server.close()
    assert probe_port(port).available is True


def test_unconfigured_address_is_not_available():
    # 192.0.2.1 (TEST-NET-1) is assigned to no interface here; binding fails locally, no traffic.
    rec = PortChecker().check(free_port(), "192.0.2.1")
    assert rec.reason == "address_not_available" and not rec.available
    assert "192.0.2.1" in rec.message


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_out_of_range_ports_are_invalid(port):
    rec = PortChecker().check(port)
    assert rec.reason == "invalid" and not rec.available


def test_an_address_that_is_not_an_ip_is_invalid():
    rec = probe_port(8080, "not-an-address")
    assert rec.reason == "invalid" and "not an IP address" in rec.message


def test_localhost_is_checked_as_ipv4_loopback(holder):
    assert probe_port(holder.port, "localhost").reason == "in_use"
    assert addresses_overlap("localhost", "127.0.0.1")
    assert addresses_overlap("0.0.0.0", "127.0.0.1")
    assert not addresses_overlap("127.0.0.1", "127.0.0.2")


_PRIVILEGED_PROBE = "from kportforward.core.ports import probe_port; print(probe_port(80).reason)"


def test_privileged_port_is_permission_denied_without_the_capability():
    """Root may bind <1024, so the check runs in a real child without CAP_NET_BIND_SERVICE."""
    knob = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    if not knob.exists():
        pytest.skip("Linux-only: needs ip_unprivileged_port_start and setpriv")
    start = int(knob.read_text())
    if start <= 80:
        pytest.skip("this kernel lets everyone bind port 80")
    argv = [sys.executable, "-c", _PRIVILEGED_PROBE]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv is missing: cannot drop CAP_NET_BIND_SERVICE")
        drop = "-net_bind_service"
        argv = [setpriv, "--bounding-set", drop, "--inh-caps", drop, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "permission_denied"


def test_permission_denied_message_names_the_privileged_port():
    from kportforward.core.ports import PortCheck

    rec = PortCheck(80, "127.0.0.1", False, "permission_denied", "Permission denied")
    assert rec.message == "80 is a privileged port (permission denied on 127.0.0.1)"


def test_check_many_mixes_cached_and_probed_ports_and_uses_the_pool(holder):
    checker = PortChecker(max_workers=4)
    try:
        free = free_ports(40)
        ports = [holder.port, *free]
        first = checker.check_many(ports)
        assert first == {holder.port: False, **dict.fromkeys(free, True)}
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if (cpus or 1) > 1:
            assert checker._pool is not None  # 41 uncached ports went through the thread pool
        assert checker.cache_info().misses == 41
        again = checker.check_many(ports)
        assert again == first
        assert checker.cache_info().hits == 41
        records = checker.check_many_records([holder.port])
        assert records[holder.port].reason == "in_use"
    finally:
        checker.close()
    assert checker._pool is None


def test_check_many_on_an_unconfigured_address_reports_each_port():
    ports = free_ports(3)
    records = PortChecker().check_many_records(ports, "192.0.2.1")
    assert {r.reason for r in records.values()} == {"address_not_available"}


def test_the_fast_index_follows_the_ttl_cache_on_eviction_and_expiry():
    timer = FakeTimer()
    checker = PortChecker(ttl=5, timer=timer, maxsize=2)
    a, b, c = free_ports(3)
    for port in (a, b, c):
        checker.is_available(port)
    assert checker.cache_info().size == 2
    assert set(checker._index) == set(checker._cache)  # the evicted entry left the index too
    timer.now += 10
    checker.is_available(a)  # inserting expires the old entries
    assert set(checker._index) == set(checker._cache) == {("127.0.0.1", a)}
    checker.invalidate()
    assert not checker._index


def test_localhost_and_its_ipv4_address_share_one_cache_entry(holder):
    checker = PortChecker()
    assert checker.is_available(holder.port, "localhost") is False
    assert checker.is_available(holder.port, "127.0.0.1") is False
    info = checker.cache_info()
    assert (info.hits, info.misses, info.size) == (1, 1, 1)


def test_naming_the_holder_does_not_extend_the_cached_answer(holder):
    timer = FakeTimer()
    checker = PortChecker(ttl=5, timer=timer)
    assert checker.check(holder.port).holder_pid is None
    timer.now += 4
    assert checker.check(holder.port, holder=True).holder_pid == holder.pid
    timer.now += 1.5  # 5.5 s after the bind: expired, although the name was added at 4 s
    before = checker.cache_info().misses
    checker.check(holder.port)
    assert checker.cache_info().misses == before + 1
