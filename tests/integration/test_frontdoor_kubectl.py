"""The front door in front of the real kubectl, forwarding through the simulator.

The doors run on a :class:`DoorLoop` (their own loop in a thread, as the engine may run them), so
the tests' blocking clients and kubectl start-ups never stall the door.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kportforward.sim import Simulator
from kportforward.supervisor.doorloop import DoorLoop
from kportforward.supervisor.frontdoor import FrontDoor, Traffic

from .conftest import PortForward, echo_through, small_world

SPDY_ONLY = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}


@pytest.fixture
def small(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator on the small world (echo on service/echo:7000, HTTP on service/web:80)."""
    return sim_factory(small_world())


class Doors:
    """Make doors on a door loop; every door is closed and the loop stopped at teardown."""

    def __init__(self) -> None:
        self.loop = DoorLoop().start()
        self.doors: list[FrontDoor] = []

    def open(self, address: str = "127.0.0.1", **kw: Any) -> FrontDoor:
        async def make() -> FrontDoor:
            door = FrontDoor("fwd", address, 0, **kw)
            await door.start()
            return door

        door: FrontDoor = self.loop.call(make)
        self.doors.append(door)
        return door

    def stats(self, door: FrontDoor) -> Traffic:
        return self.loop.call(door.stats)

    def settled(self, door: FrontDoor, timeout: float = 10) -> Traffic:
        """The counters once no connection is open any more."""
        deadline = time.monotonic() + timeout
        stats = self.stats(door)
        while stats.active and time.monotonic() < deadline:
            time.sleep(0.02)
            stats = self.stats(door)
        return stats

    def close(self) -> None:
        for door in self.doors:
            self.loop.call(door.close)
        self.loop.stop()


@pytest.fixture
def doors() -> Iterator[Doors]:
    d = Doors()
    yield d
    d.close()


def ready(pf: PortForward) -> tuple[str, int]:
    return ("127.0.0.1", pf.wait_ready())


@pytest.mark.parametrize("env", [None, SPDY_ONLY], ids=["websocket", "spdy"])
def test_a_large_transfer_both_ways_with_half_close_and_exact_counters(
    small: Simulator, port_forward: Callable[..., PortForward], doors: Doors, env: Any
) -> None:
    door = doors.open()
    doors.loop.call(door.set_target, ready(port_forward(small, "service/echo", 7000, env=env)))
    data = os.urandom(20 * 1024 * 1024)
    # echo_through sends everything, half-closes, and reads until the far side's EOF: the EOF
    # travels client → door → kubectl → pod and back.
    assert echo_through(door.port, data, timeout=60) == data
    assert echo_through(door.port, b"second", timeout=30) == b"second"
    stats = doors.settled(door)
    assert (stats.opened, stats.active, stats.failed, stats.ended_with_tunnel) == (2, 0, 0, 0)
    assert (stats.bytes_in, stats.bytes_out) == (len(data) + 6, len(data) + 6)


def test_two_hundred_concurrent_connections(
    small: Simulator, port_forward: Callable[..., PortForward], doors: Doors
) -> None:
    door = doors.open()
    doors.loop.call(door.set_target, ready(port_forward(small, "service/echo", 7000)))
    payloads = [os.urandom(8192) for _ in range(200)]
    barrier = threading.Barrier(200, timeout=30)

    def one(data: bytes) -> bytes:
        barrier.wait()
        return echo_through(door.port, data, timeout=60)

    with ThreadPoolExecutor(200) as pool:
        got = list(pool.map(one, payloads))
    assert got == payloads
    stats = doors.settled(door)
    assert (stats.opened, stats.failed, stats.bytes_in) == (200, 0, 200 * 8192)


def test_held_through_a_kubectl_sigkill_nobody_is_refused(
    small: Simulator, port_forward: Callable[..., PortForward], doors: Doors
) -> None:
    door = doors.open(hold_timeout=30.0)
    first = port_forward(small, "service/echo", 7000)
    doors.loop.call(door.set_target, ready(first))
    # One connection stays open across the kill: it must end, and be counted as such.
    open_conn = socket.create_connection(("127.0.0.1", door.port), timeout=10)
    open_conn.sendall(b"ping")
    assert open_conn.recv(4) == b"ping"

    results: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                got = echo_through(door.port, b"x" * 100, timeout=30)
                results.append("ok" if got == b"x" * 100 else "cut")
            except ConnectionRefusedError:
                results.append("refused")
            except ConnectionResetError:
                results.append("cut")  # caught mid-echo by the kill: a reset passed on
            except OSError as exc:
                results.append(f"error {exc}")
            time.sleep(0.01)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    time.sleep(0.3)
    first.kill()  # SIGKILL, as a crash would
    assert open_conn.recv(4) == b""  # the connection on the dying tunnel ends
    open_conn.close()
    doors.loop.call(door.hold, "kubectl exited")
    time.sleep(0.3)  # clients pile up in the door meanwhile
    second = port_forward(small, "service/echo", 7000)
    doors.loop.call(door.set_target, ready(second))
    time.sleep(0.5)
    stop.set()
    thread.join(30)

    assert "refused" not in results
    assert results.count("ok") >= 20
    assert [r for r in results if r not in ("ok", "cut")] == []
    stats = doors.settled(door)
    # The open one and every client caught mid-echo by the kill; possibly a few that completed
    # in the DYING_GRACE before it (nothing at the socket level tells those apart).
    assert 1 + results.count("cut") <= stats.ended_with_tunnel <= 1 + results.count("cut") + 25
    assert stats.failed == 0


def test_http_log_through_the_simulators_http_backend(
    small: Simulator, port_forward: Callable[..., PortForward], doors: Doors
) -> None:
    door = doors.open(http_log=True)
    doors.loop.call(door.set_target, ready(port_forward(small, "service/web", 80)))
    with socket.create_connection(("127.0.0.1", door.port), timeout=10) as s:
        s.sendall(
            b"GET /one HTTP/1.1\r\nHost: sim\r\n\r\n"
            b"POST /two?x=1 HTTP/1.1\r\nHost: sim\r\nContent-Length: 4\r\n\r\nbody"
            b"HEAD /three HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n"
        )
        while s.recv(65536):
            pass
    echo = doors.open(http_log=True)
    doors.loop.call(echo.set_target, ready(port_forward(small, "service/echo", 7000)))
    assert echo_through(echo.port, b"\x00\x01binary") == b"\x00\x01binary"
    doors.settled(door)
    doors.settled(echo)
    log = doors.loop.call(door.requests)
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", "/one", 200),
        ("POST", "/two?x=1", 200),
        ("HEAD", "/three", 200),
    ]
    assert log[1].bytes_in == len(
        b"POST /two?x=1 HTTP/1.1\r\nHost: sim\r\nContent-Length: 4\r\n\r\nbody"
    )
    assert all(r.bytes_out > 0 and r.duration >= 0 for r in log)
    assert [(r.note, r.bytes_in, r.bytes_out) for r in doors.loop.call(echo.requests)] == [
        ("not HTTP", 8, 8)
    ]


@pytest.mark.parametrize("address", ["localhost", "0.0.0.0"])
def test_addresses_through_kubectl(
    small: Simulator, port_forward: Callable[..., PortForward], doors: Doors, address: str
) -> None:
    door = doors.open(address)
    doors.loop.call(door.set_target, ready(port_forward(small, "service/echo", 7000)))
    assert echo_through(door.port, b"v4") == b"v4"
    if address == "localhost" and socket.has_ipv6:
        try:
            with socket.create_connection(("::1", door.port), timeout=10) as s:
                s.sendall(b"v6")
                s.shutdown(socket.SHUT_WR)
                assert s.recv(10) == b"v6"
        except OSError as exc:  # no IPv6 loopback on this host
            pytest.skip(f"::1 unavailable: {exc}")


def test_stopped_closes_the_listener_so_clients_are_refused(
    small: Simulator, port_forward: Callable[..., PortForward], doors: Doors
) -> None:
    door = doors.open()
    pf = port_forward(small, "service/echo", 7000)
    doors.loop.call(door.set_target, ready(pf))
    assert echo_through(door.port, b"up") == b"up"
    doors.loop.call(door.close_listener, "stopped by the user")
    pf.kill()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", door.port), timeout=5)


def test_the_simulators_backends_listen_with_the_backlog_they_ask_for(small: Simulator) -> None:
    (pod,) = small.pods("default", {"app": "echo"})
    port = small.backend_port("default", pod, 7000)
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    # For a listening socket ss's Send-Q column is the backlog (asyncio's default would be 100).
    assert out.split()[2] == "256", out
