"""The front door in the engine (issue 12): the user's port is kportforward's for the life of the
forward, connections wait through every kubectl restart, the traffic is counted, Stopped refuses.

The real kubectl and the simulator; the door is on by default (`frontDoor: false` is the escape
hatch, tested too).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import replace

import psutil
import pytest

from kportforward.core.models import Config, Settings
from kportforward.sim import generated_world
from tests.integration.conftest import echo_through
from tests.integration.supervisor_helpers import RUNNING, Harness, echo_specs, make_supervisor

pytestmark = pytest.mark.integration


def _echo(port: int, data: bytes = b"ping", timeout: float = 5.0) -> bytes:
    return echo_through(port, data, timeout)


def _listeners(port: int) -> set[int]:
    """Pids listening on 127.0.0.1:port."""
    return {
        c.pid
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
    }


class Client(threading.Thread):
    """Connects every 10 ms and echoes; counts refusals and other failures."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.ok = self.refused = self.other = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                if _echo(self.port, b"x", timeout=15) == b"x":
                    self.ok += 1
                else:
                    self.other += 1
            except ConnectionRefusedError:
                self.refused += 1
            except OSError:
                self.other += 1
            time.sleep(0.01)


async def test_connections_wait_through_kubectl_kills_and_are_counted(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    port = specs[0].local_port
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    client = Client(port)
    try:
        await h.sup.start()
        await h.all_running()
        kubectl_pid = h.sup.status("api").pid
        # The user's port belongs to us (the manager), not to kubectl.
        holders = await asyncio.to_thread(_listeners, port)
        assert kubectl_pid not in holders and holders, holders
        client.start()
        for _ in range(3):
            await asyncio.sleep(0.5)
            pid = h.sup.status("api").pid
            assert pid is not None
            psutil.Process(pid).kill()
            await h.wait(lambda p=pid: h.state("api") is RUNNING and h.sup.status("api").pid != p,
                         30, "back Running on a new kubectl")  # fmt: skip
        await asyncio.sleep(0.5)
        client.stop.set()
        await asyncio.to_thread(client.join, 20)
        assert client.refused == 0, vars(client)
        assert client.ok > 20
        traffic = h.sup.status("api").traffic
        assert traffic is not None
        assert traffic.opened >= client.ok
        assert h.sup.status("api").restarts == 3
    finally:
        client.stop.set()
        await h.close()


async def test_exact_counters_for_a_known_transfer(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    port = specs[0].local_port
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        payload = b"k" * 100_000
        for _ in range(3):
            assert await asyncio.to_thread(_echo, port, payload) == payload
        await h.wait(lambda: (t := h.sup.status("api").traffic) is not None
                     and t.active == 0 and t.bytes_out == 300_000, 10, "counted")  # fmt: skip
        traffic = h.sup.status("api").traffic
        assert traffic is not None
        assert (traffic.opened, traffic.bytes_in, traffic.bytes_out) == (3, 300_000, 300_000)
        assert h.traffic, "no traffic event"  # at most one a second, and at least one
    finally:
        await h.close()


async def test_stopped_refuses_and_start_reopens_the_same_port(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    port = specs[0].local_port
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        await h.sup.stop("api")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.to_thread(_echo, port)
        await h.sup.start_forward("api")
        await h.all_running()
        assert h.sup.status("api").local_port == port
        assert await asyncio.to_thread(_echo, port) == b"ping"
    finally:
        await h.close()


async def test_a_foreign_holder_moves_the_door_and_it_returns_home(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    port = specs[0].local_port
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        status = h.sup.status("api")
        assert status.local_port != port and f"{port} is held by" in (
            status.port_moved_reason or ""
        )
        assert await asyncio.to_thread(_echo, status.local_port) == b"ping"
        squatter.close()
        await h.sup.restart("api")
        await h.wait(lambda: h.state("api") is RUNNING and h.sup.status("api").local_port == port,
                     30, "home again")  # fmt: skip
        assert h.sup.status("api").port_moved_reason is None
        assert await asyncio.to_thread(_echo, port) == b"ping"
    finally:
        with contextlib.suppress(OSError):
            squatter.close()
        await h.close()


async def test_hold_timeout_closes_a_waiting_connection(kubectl, sim_factory):
    """With the cluster gone the tunnel cannot come back: a connection waits holdTimeout, then
    is closed (not refused, not kept forever)."""
    sim = sim_factory(generated_world(1))
    specs = tuple(replace(s, hold_timeout=1.0) for s in echo_specs([("api", "service/svc-000")]))
    port = specs[0].local_port
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        await asyncio.to_thread(sim.hang)
        pid = h.sup.status("api").pid
        assert pid is not None
        psutil.Process(pid).kill()
        await h.wait(lambda: h.state("api") is not RUNNING, 10, "not Running")

        def wait_at_the_door() -> tuple[bytes, float]:
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # accepted
                sock.sendall(b"x")
                return sock.recv(10), time.monotonic() - started

        answer, waited = await asyncio.to_thread(wait_at_the_door)
        assert answer == b""  # closed after the hold timeout, never refused
        assert 0.8 <= waited < 8, waited
        await asyncio.to_thread(sim.resume)
    finally:
        await h.close()


async def test_front_door_false_lets_kubectl_listen_on_the_port(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    port = specs[0].local_port
    config = Config(forwards=specs, settings=Settings(monitoring_interval=0.2, front_door=False))
    sup = make_supervisor(kubectl, str(sim.kubeconfig_path), specs)
    sup.config = config
    h = Harness(sup)
    try:
        await h.sup.start()
        await h.all_running()
        pid = h.sup.status("api").pid
        assert pid in await asyncio.to_thread(_listeners, port)
        assert h.sup.status("api").traffic is None
        assert await asyncio.to_thread(_echo, port) == b"ping"
    finally:
        await h.close()
