"""The supervisor with the real kubectl against the simulator: start, carry bytes, recover, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from kportforward.sim import generated_world
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
