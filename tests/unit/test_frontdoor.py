"""The front door against local TCP servers standing in for kubectl's listener (real sockets on
127.0.0.1; the real kubectl is in tests/integration/test_frontdoor_kubectl.py)."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kportforward.supervisor import doorio as fd
from kportforward.supervisor.doorio import bind_listeners
from kportforward.supervisor.frontdoor import DYING_GRACE, FrontDoor, Traffic

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class Upstream:
    """A server playing kubectl's listener; ``cut()`` closes every connection (kubectl died)."""

    def __init__(self, handler: Handler = _echo) -> None:
        self.handler = handler
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.writers.add(w)
            try:
                await self.handler(r, w)
            finally:
                self.writers.discard(w)

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return ("127.0.0.1", self.server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self.writers):
            w.close()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    yield up
    if up.server is not None:
        up.cut()


@pytest.fixture
async def door() -> AsyncIterator[FrontDoor]:
    d = FrontDoor("api", "127.0.0.1", 0, hold_timeout=5.0)
    await d.start()
    yield d
    await d.close()


async def talk(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    """Send, half-close, read everything back."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    writer.write_eof()
    got = await reader.read()
    writer.close()
    return got


async def settle(door: FrontDoor) -> Traffic:
    for _ in range(200):
        stats = door.stats()
        if stats.active == 0:
            return stats
        await asyncio.sleep(0.01)
    return door.stats()


async def test_bytes_both_ways_and_exact_counters(door: FrontDoor, upstream: Upstream) -> None:
    door.set_target(await upstream.start())
    data = bytes(range(256)) * 4000  # 1,024,000 bytes
    assert await talk(door.port, data) == data
    assert await talk(door.port, b"x") == b"x"
    stats = await settle(door)
    assert (stats.opened, stats.active, stats.failed, stats.ended_with_tunnel) == (2, 0, 0, 0)
    assert (stats.bytes_in, stats.bytes_out) == (1_024_001, 1_024_001)
    assert door.requests() == ()  # no HTTP log unless asked


async def test_half_close_both_ways(door: FrontDoor) -> None:
    heard: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def greet_then_half_close(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"hello\n")
        w.write_eof()  # the server is done talking, but still listens
        heard.set_result(await r.read())
        w.close()

    up = Upstream(greet_then_half_close)
    door.set_target(await up.start())
    reader, writer = await asyncio.open_connection("127.0.0.1", door.port)
    assert await reader.read() == b"hello\n"  # EOF reached the client: the server half-closed
    writer.write(b"late words")  # the other direction still works
    writer.write_eof()
    assert await asyncio.wait_for(heard, 5) == b"late words"  # and its EOF got through too
    stats = await settle(door)
    assert (stats.active, stats.bytes_in, stats.bytes_out) == (0, 10, 6)
    writer.close()
    up.cut()


async def test_connections_wait_while_held_and_are_released(
    door: FrontDoor, upstream: Upstream
) -> None:
    target = await upstream.start()
    clients = [asyncio.create_task(talk(door.port, f"c{i}".encode())) for i in range(5)]
    for _ in range(100):
        if door.stats().waiting == 5:
            break
        await asyncio.sleep(0.01)
    assert door.stats().waiting == 5  # accepted and held: nobody was refused
    door.set_target(target)
    assert await asyncio.gather(*clients) == [f"c{i}".encode() for i in range(5)]
    assert door.stats().failed == 0


async def test_the_pending_list_is_bounded_the_rest_wait_in_the_accept_queue(
    upstream: Upstream,
) -> None:
    d = FrontDoor("api", "127.0.0.1", 0, hold_timeout=5.0, max_pending=2)
    await d.start()
    clients = [asyncio.create_task(talk(d.port, b"%d" % i)) for i in range(6)]
    await asyncio.sleep(0.2)
    assert d.stats().waiting == 2
    d.set_target(await upstream.start())
    assert sorted(await asyncio.gather(*clients)) == [b"%d" % i for i in range(6)]
    await d.close()


async def test_hold_timeout_closes_with_a_logged_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = FrontDoor("api", "127.0.0.1", 0, hold_timeout=0.3)
    await d.start()
    d.hold("kubectl exited: lost connection to pod")
    caplog.set_level(logging.WARNING)
    reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
    writer.write(b"anyone?")
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the door, not refused
    writer.close()
    assert d.stats().failed == 1 and d.stats().waiting == 0
    assert "waited 0.3 s for the tunnel (kubectl exited: lost connection to pod)" in caplog.text
    await d.close()


async def test_closed_listener_refuses_and_reopen_listens_again(
    door: FrontDoor, upstream: Upstream
) -> None:
    door.set_target(await upstream.start())
    door.close_listener("stopped by the user")
    assert not door.listening
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", door.port)
    door.reopen()
    door.set_target(upstream.server.sockets[0].getsockname()[:2])  # type: ignore[union-attr]
    assert await talk(door.port, b"back") == b"back"


async def test_a_held_port_is_never_taken_and_nothing_stays_bound() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    with pytest.raises(OSError) as info:
        FrontDoor("api", "127.0.0.1", port)
    assert info.value.errno == errno.EADDRINUSE
    holder.close()

    # localhost: ::1 held by someone else is an error, and our 127.0.0.1 socket is released.
    v6 = socket.socket(socket.AF_INET6)
    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        v6.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    v6.listen()
    port = v6.getsockname()[1]
    with pytest.raises(OSError):
        bind_listeners("localhost", port)
    socks = bind_listeners("127.0.0.1", port)  # the IPv4 half was not left bound
    for s in socks:
        s.close()
    v6.close()


@pytest.mark.parametrize("address", ["localhost", "0.0.0.0"])
async def test_addresses(address: str, upstream: Upstream) -> None:
    d = FrontDoor("api", address, 0)
    await d.start()
    d.set_target(await upstream.start())
    families = {s.family for s in d._socks}
    if address == "localhost":
        assert socket.AF_INET in families
        if socket.AF_INET6 in families:
            assert await talk(d.port, b"six", host="::1") == b"six"
    assert await talk(d.port, b"four") == b"four"
    await d.close()


async def test_connections_on_a_dying_tunnel_are_counted(
    door: FrontDoor, upstream: Upstream
) -> None:
    door.set_target(await upstream.start())
    conns = [await asyncio.open_connection("127.0.0.1", door.port) for _ in range(3)]
    for _, w in conns:
        w.write(b"ping")
    for r, _ in conns:
        assert await r.readexactly(4) == b"ping"
    upstream.cut()  # kubectl died: every connection gets EOF
    for r, w in conns:
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
    await settle(door)
    door.hold("kubectl exited")  # the engine notices a moment later
    assert door.stats().ended_with_tunnel == 3
    # A connection that completed well before the tunnel went is not "ended with the tunnel".
    up2 = Upstream()
    second = await up2.start()
    door.set_target(second)
    r, w = await asyncio.open_connection("127.0.0.1", door.port)
    w.write(b"x")
    await r.readexactly(1)
    w.close()
    await settle(door)
    await asyncio.sleep(DYING_GRACE + 0.1)
    door.hold("restart")
    assert door.stats().ended_with_tunnel == 3
    # One still open when the tunnel goes ends with it.
    door.set_target(second)
    r, w = await asyncio.open_connection("127.0.0.1", door.port)
    w.write(b"y")
    await r.readexactly(1)
    door.hold("reload")
    assert door.stats().ended_with_tunnel == 4
    w.close()
    up2.cut()


async def test_a_client_that_never_reads_is_back_pressured_with_bounded_memory(
    door: FrontDoor,
) -> None:
    sent = 0

    async def firehose(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal sent
        chunk = b"z" * 65536
        try:
            while True:
                w.write(chunk)
                sent += len(chunk)
                await w.drain()
        except ConnectionError:
            pass

    up = Upstream(firehose)
    door.set_target(await up.start())
    client = socket.create_connection(("127.0.0.1", door.port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    last = -1
    for _ in range(100):  # until the server is blocked: nothing more gets through
        await asyncio.sleep(0.05)
        if sent == last:
            break
        last = sent
    assert sent == last, "the server was never stopped by back-pressure"
    # Bounded: the door buffers at most its high-water marks plus one read, whatever was sent.
    assert door.buffered() <= 2 * fd.WRITE_HIGH + 256 * 1024
    assert door.stats().bytes_out < 64 * 1024 * 1024
    client.close()
    up.cut()


async def test_on_traffic_is_throttled_and_sees_the_last_change(upstream: Upstream) -> None:
    seen: list[Traffic] = []
    d = FrontDoor("api", "127.0.0.1", 0, on_traffic=seen.append)
    await d.start()
    d.set_target(await upstream.start())
    for i in range(20):
        assert await talk(d.port, b"%d" % i) == b"%d" % i
    await asyncio.sleep(1.2)
    assert 1 <= len(seen) <= 3  # 20 connections, at most one report a second
    assert seen[-1].opened == 20 and seen[-1].bytes_in == sum(len(b"%d" % i) for i in range(20))
    await d.close()


async def test_on_traffic_reports_the_rate_and_then_its_fall_to_zero(upstream: Upstream) -> None:
    seen: list[Traffic] = []
    d = FrontDoor("api", "127.0.0.1", 0, on_traffic=seen.append)
    await d.start()
    d.set_target(await upstream.start())
    assert await talk(d.port, b"x" * 5000) == b"x" * 5000
    await asyncio.sleep(3.5)  # the second with bytes completes, then a quiet one
    assert any(t.rate_in == 5000 and t.rate_out == 5000 for t in seen), seen
    assert seen[-1].rate_in == 0 and seen[-1].rate_out == 0  # the dashboard's cell goes to 0/s
    reports = len(seen)
    await asyncio.sleep(1.5)
    assert len(seen) == reports  # and then it goes quiet: no reports while nothing flows
    await d.close()


async def test_http_log_through_the_door(door: FrontDoor) -> None:
    async def http(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while line := await r.readuntil(b"\r\n\r\n"):
            status = b"404 Not Found" if b"/missing" in line else b"200 OK"
            w.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            await w.drain()
            if b"close" in line:
                break
        w.close()

    d = FrontDoor("api", "127.0.0.1", 0, http_log=True)
    await d.start()
    up = Upstream(http)
    d.set_target(await up.start())
    reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
    writer.write(b"GET /a HTTP/1.1\r\n\r\nGET /missing HTTP/1.1\r\nConnection: close\r\n\r\n")
    await reader.read()
    writer.close()
    await settle(d)
    assert [(r.method, r.path, r.status) for r in d.requests()] == [
        ("GET", "/a", 200),
        ("GET", "/missing", 404),
    ]
    await d.close()
    up.cut()


def test_raise_nofile_limit_goes_to_the_hard_limit() -> None:
    before, after = fd.raise_nofile_limit()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == after >= before
    assert hard == resource.RLIM_INFINITY or soft == hard
    assert fd.raise_nofile_limit() == (before, after)  # once per process


async def test_history_and_rates_add_up_to_the_bytes_relayed(
    door: FrontDoor, upstream: Upstream
) -> None:
    door.set_target(await upstream.start())
    assert await talk(door.port, b"a" * 5000) == b"a" * 5000
    start = int(time.monotonic())
    while int(time.monotonic()) < start + 2:  # both seconds the transfer may span are complete
        await asyncio.sleep(0.05)
    assert sum(i for i, _ in door.history(5)) == 5000
    assert sum(o for _, o in door.history(5)) == 5000
    assert door.stats().as_json()["bytesIn"] == 5000
    assert door.stats().rate_in == 0.0  # nothing in the last complete second
