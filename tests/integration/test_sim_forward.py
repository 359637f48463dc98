"""The real kubectl port-forwards through the simulator: targets, transports, backends, bytes."""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kportforward.sim import Simulator

from .conftest import echo_through, small_world

SPDY_ONLY = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}


@pytest.fixture
def small(sim_factory) -> Simulator:
    """A simulator on the small world (one of each target kind)."""
    return sim_factory(small_world())


@pytest.mark.parametrize("env", [None, SPDY_ONLY], ids=["websocket", "spdy"])
@pytest.mark.parametrize(
    "target,remote",
    [
        ("service/echo", 7000),
        ("svc/echo", "tcp"),
        ("pod/solo", 7000),
        ("deployment/echo", 7000),
        ("statefulset/db", 5432),
    ],
)
def test_echo_through_each_target(small, port_forward, target, remote, env) -> None:
    pf = port_forward(small, target, remote, env=env)
    data = os.urandom(200_000)
    assert pf.echo(data) == data
    method = "POST" if env else "GET"
    assert small.count(method, r"/portforward$") == 1


def test_http_backend_names_the_pod(small, port_forward) -> None:
    pf = port_forward(small, "service/web", 80)
    (pod,) = small.pods("default", {"app": "web"})
    body = pf.http_get()
    assert pod in body


def test_named_target_port_resolves_to_the_container_port(small, port_forward) -> None:
    pf = port_forward(small, "service/web", 80)
    assert pf.stdout_lines[0].endswith("-> 8080")


def test_twenty_parallel_connections_byte_for_byte(small, port_forward) -> None:
    pf = port_forward(small, "service/echo", 7000, env=SPDY_ONLY)
    payloads = [os.urandom(64 * 1024) for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda d: echo_through(pf.local_port, d), payloads))
    assert results == payloads


@pytest.mark.parametrize(
    "env,tls",
    [(None, False), (SPDY_ONLY, False), (None, True), (SPDY_ONLY, True)],
    ids=["websocket", "spdy", "websocket-tls", "spdy-tls"],
)
def test_five_megabytes_byte_for_byte(sim_factory, port_forward, env, tls) -> None:
    """A smaller cousin of the 50 MB benchmark (benchmarks/e2e_sim.py), on every transport."""
    sim = sim_factory(small_world(), tls=tls)
    pf = port_forward(sim, "pod/solo", 7000, env=env)
    data = os.urandom(5 * 1024 * 1024)
    assert pf.echo(data, timeout=60) == data


def test_one_kubectl_many_sequential_connections(small, port_forward) -> None:
    """Each local connection is a new stream pair on the same upgraded connection."""
    pf = port_forward(small, "service/web", 80)
    bodies = {pf.http_get() for _ in range(30)}
    assert len(bodies) == 1
    assert small.count(None, "/portforward$") == 1


def test_refused_websocket_upgrade_falls_back_to_spdy(small, port_forward) -> None:
    small.allow_websocket = False
    pf = port_forward(small, "pod/solo", 7000)
    assert pf.echo(b"fallback") == b"fallback"
    statuses = [(r.method, r.status) for r in small.request_log if r.path.endswith("/portforward")]
    assert statuses == [("GET", 400), ("POST", 101)]


@pytest.mark.parametrize("env", [None, SPDY_ONLY], ids=["websocket", "spdy"])
def test_backpressure_bounds_the_simulators_buffers(small, port_forward, env) -> None:
    """A client that stops reading stalls the sender instead of filling the simulator's memory;
    once it reads again every byte arrives in order."""
    pf = port_forward(small, "pod/solo", 7000, env=env)
    data = os.urandom(48 * 1024 * 1024)
    sent = [0]
    with pf.connect(timeout=60) as conn:

        def send() -> None:
            view = memoryview(data)
            for i in range(0, len(data), 1 << 16):
                conn.sendall(view[i : i + (1 << 16)])
                sent[0] = i + (1 << 16)
            conn.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        stable, last = 0, -1
        deadline = time.monotonic() + 30
        while stable < 5 and time.monotonic() < deadline:  # wait until the sender is stuck
            time.sleep(0.1)
            stable = stable + 1 if sent[0] == last else 0
            last = sent[0]
        assert sent[0] < len(data), "nothing pushed back: the whole payload was buffered"
        buffered = 0
        for sessions in small._state.sessions.values():
            for session in sessions:
                buffered += session._transport.get_write_buffer_size()
                for req in session._requests.values():
                    if req.backend is not None:
                        buffered += req.backend.get_write_buffer_size()
        assert buffered < 16 * 1024 * 1024
        got = bytearray()
        while chunk := conn.recv(1 << 20):
            got += chunk
        sender.join(30)
    assert bytes(got) == data
