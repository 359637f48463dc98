"""The supervisor with the real kubectl against the simulator: start, carry bytes, recover, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import psutil
import pytest

from kportforward.core.models import ForwardSpec
from kportforward.owned import pid_namespace, start_time
from kportforward.sim import generated_world
from kportforward.supervisor.reclaim import (
    FORWARD_ENV,
    OWNER_ENV,
    OWNER_PIDNS_ENV,
    OWNER_START_ENV,
)
from tests.integration.supervisor_helpers import (
    RUNNING,
    Harness,
    echo,
    echo_specs,
    free_ports,
    kubectls_of,
    make_supervisor,
    open_fds,
)

pytestmark = pytest.mark.integration


async def test_twenty_forwards_run_and_carry_bytes_then_shut_down_clean(kubectl, sim_factory):
    sim = sim_factory(generated_world(20))
    specs = echo_specs((f"f{i:02d}", f"service/svc-{i:03d}") for i in range(20))
    fds_before = open_fds(sim)
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    await h.sup.start()
    await h.all_running()
    replies = await asyncio.gather(*(echo(s.local_port, f"hello {s.name}".encode()) for s in specs))
    assert replies == [f"hello {s.name}".encode() for s in specs]
    snap = h.sup.snapshot()
    assert all(s.pid and s.local_port == s.spec.local_port for s in snap)
    assert len({s.pid for s in snap}) == 20
    assert len(kubectls_of(os.getpid())) == 20
    await h.wait(lambda: all(s.rss for s in h.sup.snapshot()), 10, "psutil samples")
    # every transition is one event with a reason
    for s in specs:
        assert h.states(s.name)[:2] == [h.states(s.name)[0], RUNNING]
    assert all(e.reason for e in h.events)

    await h.close()
    await h.close()  # idempotent
    assert kubectls_of(os.getpid()) == []
    assert all(s.state.value == "Stopped" for s in h.sup.snapshot())
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    await h.wait(lambda: open_fds(sim) <= fds_before, 10, f"fds back to {fds_before}")


async def test_sigkilled_kubectl_comes_back_and_traffic_flows(kubectl, sim_factory):
    sim = sim_factory(generated_world(2))
    specs = echo_specs([("a", "service/svc-000"), ("b", "service/svc-001")])
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        old = h.sup.status("a").pid
        other = h.sup.status("b").pid
        os.kill(old, signal.SIGKILL)
        await h.wait(lambda: h.state("a") is not RUNNING, 10, "a noticed the kill")
        await h.wait(lambda: h.state("a") is RUNNING, 20, "a back")
        status = h.sup.status("a")
        assert status.pid != old and status.restarts == 1
        assert "SIGKILL" in " ".join(e.reason for e in h.events if getattr(e, "forward", "") == "a")
        assert await echo(specs[0].local_port, b"again") == b"again"
        assert h.sup.status("b").pid == other  # the neighbour was not touched
    finally:
        await h.close()


async def test_foreign_port_holder_is_left_alone_and_the_forward_moves(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    (port,) = free_ports(1)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket,sys,time\n"
            f"s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen()\n"
            "print('ok',flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        specs = echo_specs([("api", "service/svc-000")])
        specs = (specs[0].__class__(**{**_fields(specs[0]), "local_port": port}),)
        h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
        try:
            await h.sup.start()
            await h.all_running()
            status = h.sup.status("api")
            assert status.local_port != port and status.port_moved
            assert str(port) in (status.port_moved_reason or "")
            assert await echo(status.local_port, b"moved") == b"moved"
            assert holder.poll() is None  # the foreign process is alive
        finally:
            await h.close()
    finally:
        holder.kill()
        holder.wait()


def _fields(spec):
    return {f: getattr(spec, f) for f in spec.__slots__}


async def test_port_taken_after_resolution_is_resolved_again(kubectl, sim_factory):
    """A port taken while the forward was stopped: it moves with a reason, and returns home
    (the reason cleared) once the holder is gone."""
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    port = specs[0].local_port
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    squatter = None
    try:
        await h.sup.start()
        await h.all_running()
        await h.sup.stop("api")
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        await h.sup.start_forward("api")  # every start tries the configured port first
        await h.wait(
            lambda: h.state("api") is RUNNING and h.sup.status("api").local_port != port,
            20,
            "moved to another port",
        )
        moved = h.sup.status("api").port_moved_reason or ""
        assert f"{port} is held by" in moved
        assert await echo(h.sup.status("api").local_port, b"elsewhere") == b"elsewhere"
        # The holder goes away: the next (re)start returns home and the move is forgotten.
        squatter.close()
        squatter = None
        await h.sup.restart("api")
        await h.wait(
            lambda: h.state("api") is RUNNING and h.sup.status("api").local_port == port,
            20,
            "back on the configured port",
        )
        assert h.sup.status("api").port_moved_reason is None
        assert await echo(port, b"home") == b"home"
    finally:
        if squatter is not None:
            squatter.close()
        await h.close()


async def test_stale_kubectl_of_ours_on_the_configured_port_is_reclaimed(kubectl, sim_factory):
    """A kubectl left by a dead kportforward (our env marker, owner gone) gives the port back."""
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    port = specs[0].local_port
    dead = subprocess.Popen(["true"])
    dead_start = start_time(dead.pid)  # a zombie until waited for: its start time is readable
    dead.wait()
    marker = {OWNER_ENV: str(dead.pid), OWNER_START_ENV: dead_start or "",
              OWNER_PIDNS_ENV: pid_namespace(), FORWARD_ENV: "api"}  # fmt: skip
    argv = [kubectl, "port-forward", "--address", "127.0.0.1", "--kubeconfig",
            str(sim.kubeconfig_path), "-n", "default", "service/svc-000",
            f"{port}:9000"]  # fmt: skip
    # Orphaned as after a crash: an intermediate starts kubectl, prints its pid and exits.
    spawner = (
        "import subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=sys.stdout, "
        "stderr=subprocess.DEVNULL, start_new_session=True); print(p.pid, flush=True)"
    )
    stale = subprocess.Popen(
        [sys.executable, "-c", spawner, *argv], stdout=subprocess.PIPE, text=True,
        env={**os.environ, **marker},
    )  # fmt: skip
    assert stale.stdout is not None
    stale_kubectl = psutil.Process(int(stale.stdout.readline()))
    stale.wait(30)
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        assert "Forwarding from" in stale.stdout.readline()
        await h.sup.start()
        await h.all_running()
        assert h.sup.status("api").local_port == port  # not moved: the port was reclaimed
        stale_kubectl.wait(10)
        assert await echo(port, b"mine again") == b"mine again"
    finally:
        if stale_kubectl.is_running():  # psutil checks the start time: this very kubectl
            stale_kubectl.kill()
        stale.stdout.close()
        await h.close()


def _free_block(n: int) -> int:
    """The first of ``n`` consecutive ports free on 127.0.0.1 (none held when this returns)."""
    for base in range(21000, 60000, 37):
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        if len(socks) == n:
            return base
    raise AssertionError("no block of free ports")


async def test_moved_forwards_never_collide_with_each_other_or_configured_ports(
    kubectl, sim_factory
):
    """Two forwards pushed off foreign-held ports must not both land on one free port, nor on a
    port another forward is configured for: each spawns once, on its own port."""
    sim = sim_factory(generated_world(3))
    base = _free_block(6)
    squatters = []
    for port in (base, base + 2):
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        s.listen()
        squatters.append(s)
    specs = tuple(
        ForwardSpec(name, f"service/svc-00{i}", 9000, base + i, namespace="default")
        for i, name in enumerate(("a", "b", "c"))
    )
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        ports = {s.name: s.local_port for s in h.sup.snapshot()}
        assert ports["b"] == base + 1  # free and configured: kept
        assert len(set(ports.values())) == 3
        assert base not in ports.values() and base + 2 not in ports.values()
        for status in h.sup.snapshot():
            assert status.restarts == 0, (status.name, status.history)
            assert await echo(status.local_port, b"x") == b"x"
    finally:
        await h.close()
        for s in squatters:
            s.close()
