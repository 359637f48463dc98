"""Acceptance tests for the engine (issue 11): coming back quickly, and coming back home.

Defect 3: after the API server answered again, traffic flowed only 9–13 s later; a Failed forward
(NotFound) noticed its service appear only at the next slow retry (25–30 s). Defect 4: a forward
pushed off its port by a foreign process never moved back, even after a restart.

The bounds below are the issue's targets doubled for a loaded machine; the defects are well
beyond them. Production backoffs (``backoff=None``, ``cluster_backoff=None``): the fast test
backoff would make today's slow paths look quick.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from kportforward.core.models import ForwardSpec
from kportforward.core.states import ForwardState
from kportforward.sim import generated_world
from tests.integration.supervisor_helpers import (
    RUNNING,
    Harness,
    echo,
    echo_specs,
    echo_within,
    free_ports,
    make_supervisor,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
S = ForwardState


async def test_traffic_flows_again_soon_after_the_api_server_resumes(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    port = specs[0].local_port
    h = Harness(
        make_supervisor(
            kubectl, str(sim.kubeconfig_path), specs, backoff=None, cluster_backoff=None
        )
    )
    try:
        await h.sup.start()
        await h.all_running(30)
        await h.wait(lambda: h.sup.status("api").probe_latencies, 10, "a passing probe")
        sim.hang()
        try:
            await h.wait(lambda: h.state("api") is not RUNNING, 15, "the hang noticed")
            await asyncio.sleep(4.0)  # long enough for the engine to be waiting on something
        finally:
            sim.resume()
        took = await echo_within(port, 6.0)  # target 3 s; today 9–13 s
        assert took < 6.0
        await h.wait(lambda: h.state("api") is RUNNING, 10, "Running again")
    finally:
        sim.resume()
        await h.close()


async def test_traffic_flows_again_soon_after_the_api_server_comes_back(
    kubectl, sim_factory, tmp_path
):
    """The API server down (stopped, not hung) and back on the same address: the forward was
    Suspended meanwhile; it must not sit out a long access-probe step once the server answers."""
    first = sim_factory(generated_world(1))
    server_port = int(first.url.rsplit(":", 1)[1])
    kubeconfig = tmp_path / "kubeconfig"  # the simulator's own file goes with it
    kubeconfig.write_bytes(Path(first.kubeconfig_path).read_bytes())
    specs = echo_specs([("api", "service/svc-000")])
    h = Harness(
        make_supervisor(kubectl, str(kubeconfig), specs, backoff=None, cluster_backoff=None)
    )
    try:
        await h.sup.start()
        await h.all_running(30)
        await h.wait(lambda: h.sup.status("api").probe_latencies, 10, "a passing probe")
        await asyncio.to_thread(first.stop_in_thread)
        await h.wait(lambda: h.state("api") is not RUNNING, 15, "the server loss noticed")
        await asyncio.sleep(8.0)  # down long enough for any wait between retries to grow
        await asyncio.to_thread(sim_factory, generated_world(1), port=server_port)
        took = await echo_within(specs[0].local_port, 6.0)  # target 3 s; the issue saw 9-13 s
        assert took < 6.0
        await h.wait(lambda: h.state("api") is RUNNING, 10, "Running again")
    finally:
        await h.close()


async def test_failed_not_found_forward_starts_when_its_service_appears(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    # The pods exist (svc-000's); the service "late" that selects them does not, yet.
    specs = echo_specs([("late", "service/late")])
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs, backoff=None))
    try:
        await h.sup.start()
        await h.wait(lambda: h.state("late") is S.FAILED, 20, "Failed (NotFound)")
        assert 'services "late" not found' in h.sup.status("late").reason
        await asyncio.sleep(1.0)  # settled in Failed, its slow retry far away
        sim.add_service("late", selector={"app": "svc-000"}, ports=[9000])
        # A watch notices at once (target ~3 s); the slow retry would take 25–30 s.
        await h.wait(lambda: h.state("late") is RUNNING, 8.0, "Running once the service exists")
        assert await echo(specs[0].local_port, b"late") == b"late"
    finally:
        await h.close()


async def test_a_moved_forward_returns_home_once_its_port_is_free(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    (home,) = free_ports(1)
    holder = socket.socket()
    holder.bind(("127.0.0.1", home))
    holder.listen(1)
    specs = (ForwardSpec("api", "service/svc-000", 9000, home, namespace="default"),)
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running(30)
        moved = h.sup.status("api")
        assert moved.local_port not in (0, home)
        assert moved.port_moved_reason, "a move must say why"
        assert str(home) in moved.port_moved_reason
        assert await echo(moved.local_port, b"away") == b"away"
        holder.close()  # the foreign process is gone
        await h.sup.restart("api")
        await h.wait(
            lambda: h.state("api") is RUNNING and h.sup.status("api").pid != moved.pid,
            20,
            "Running again after the restart",
        )
        back = h.sup.status("api")
        assert back.local_port == home, f"still on {back.local_port}: {back.port_moved_reason}"
        assert back.port_moved_reason is None
        assert await echo(home, b"home") == b"home"
    finally:
        holder.close()
        await h.close()
