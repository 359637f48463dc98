"""Faults the supervisor must see and survive: pod replaced, hung server, 401, NotFound, 403."""

from __future__ import annotations

import asyncio
import time

import pytest

from kportforward.core.states import ForwardState
from kportforward.sim import generated_world
from tests.integration.supervisor_helpers import (
    RUNNING,
    Harness,
    echo,
    echo_specs,
    make_supervisor,
)

pytestmark = pytest.mark.integration
S = ForwardState


async def test_replaced_pod_restarts_the_forward_before_any_client_request(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        old_pod = h.sup._runners["api"].proc.pod
        old_pid = h.sup.status("api").pid
        assert old_pod in sim.pods("default")
        new_pod = sim.restart_pod("default", old_pod)
        # No client request is made: the watch (or kubectl's own exit) must drive the restart.
        await h.wait(
            lambda: h.state("api") is RUNNING and h.sup._runners["api"].proc.pod == new_pod,
            20,
            "running on the replacement pod",
        )
        assert h.sup.status("api").pid != old_pid
        assert await echo(specs[0].local_port, b"new pod") == b"new pod"
    finally:
        await h.close()


async def test_not_ready_pod_reconnects_at_once(kubectl, sim_factory):
    world = generated_world(0)
    world.add_deployment("two", replicas=2, ports=[{"containerPort": 9000, "backend": "echo"}])
    world.add_service("two", ports=[9000])
    sim = sim_factory(world)
    specs = echo_specs([("two", "service/two")])
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        await h.wait(lambda: h.sup._pod_watches, 10, "pod watch started")
        runner = h.sup._runners["two"]
        first = runner.proc.pod
        await asyncio.sleep(0.5)  # let the watch list the namespace
        sim.set_pod_ready("default", first, False)
        await h.wait(
            lambda: any("not ready" in e.reason for e in h.events if getattr(e, "forward", "")),
            10,
            "reconnect on not-ready",
        )
        await h.all_running(20)
        assert await echo(specs[0].local_port, b"x") == b"x"
    finally:
        await h.close()


async def test_hung_server_is_detected_and_recovers_after_resume(kubectl, sim_factory):
    sim = sim_factory(generated_world(1))
    specs = echo_specs([("api", "service/svc-000")])
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        # Timeouts count only once the backend has answered a probe (see supervisor/health.py).
        await h.wait(lambda: h.sup.status("api").probe_latencies, 10, "a passing probe")
        pid = h.sup.status("api").pid
        sim.hang()
        try:
            await h.wait(lambda: S.RECONNECTING in h.states("api"), 15, "dead tunnel restarted")
            assert S.DEGRADED in h.states("api")
        finally:
            sim.resume()
        await h.wait(lambda: h.state("api") is RUNNING, 30, "running after resume")
        assert h.sup.status("api").pid != pid
        assert await echo(specs[0].local_port, b"resumed") == b"resumed"
    finally:
        await h.close()


async def test_401_suspends_probes_once_per_step_and_recovers(kubectl, sim_factory):
    sim = sim_factory(generated_world(3))
    specs = echo_specs((f"f{i}", f"service/svc-{i:03d}") for i in range(3))
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.all_running()
        rule = sim.add_rule(401)
        for name in ("f0", "f1", "f2"):  # kubectl's tunnels die; restarts meet the 401
            await h.sup.restart(name)
        await h.wait(
            lambda: all(s.state is S.SUSPENDED for s in h.sup.snapshot()), 20, "all Suspended"
        )
        assert "credentials" in h.sup.status("f0").reason
        key = h.sup.cluster_key(h.sup._runners["f0"])
        spawns = sum(r.spawns for r in h.sup._runners.values())
        await h.wait(lambda: h.sup.access_probes(key) >= 4, 20, "four access probes")
        # One probe per backoff step for the cluster — not one per forward — and no kubectl storm.
        probes = h.sup.access_probes(key)
        # The counter moves when a probe starts; the request may not have reached the sim yet.
        assert sim.count("GET", r"^/version/?$") in (probes - 1, probes)
        assert sum(r.spawns for r in h.sup._runners.values()) == spawns
        assert any(getattr(e, "cluster", None) and e.cluster.reachable is False for e in h.events)
        sim.remove_rule(rule)
        await h.all_running(20)
        assert await echo(specs[1].local_port, b"back") == b"back"
        assert any(getattr(e, "cluster", None) and e.cluster.reachable for e in h.events)
    finally:
        await h.close()


async def test_not_found_and_forbidden_fail_with_kubectls_message(kubectl, sim_factory):
    sim = sim_factory(generated_world(2))
    sim.add_rule(403, method="GET", path_regex=r"/services/svc-001$")
    specs = echo_specs(
        [("missing", "service/nope"), ("denied", "service/svc-001"), ("fine", "service/svc-000")]
    )
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), specs))
    try:
        await h.sup.start()
        await h.wait(
            lambda: h.state("missing") is S.FAILED and h.state("denied") is S.FAILED,
            20,
            "both Failed",
        )
        await h.wait(lambda: h.state("fine") is RUNNING, 20, "the healthy one Running")
        missing, denied = h.sup.status("missing"), h.sup.status("denied")
        assert missing.reason == 'Error from server (NotFound): services "nope" not found'
        assert denied.reason.startswith("Error from server (Forbidden): ")
        assert missing.retry_at and missing.retry_at > time.time() + 0.5  # retried slowly
        await asyncio.sleep(1.0)
        # Slow retries only (the cap is 2 s here): a handful of spawns, never a storm.
        assert h.sup._runners["missing"].spawns <= 2
        assert h.sup._runners["denied"].spawns <= 2
        # A user restart retries at once.
        before = h.sup._runners["missing"].spawns
        await h.sup.restart("missing")
        await h.wait(lambda: h.sup._runners["missing"].spawns > before, 5, "immediate retry")
    finally:
        await h.close()


async def test_kubectl_that_cannot_be_run_fails_the_forward_without_killing_its_runner(tmp_path):
    specs = echo_specs([("api", "service/svc-000")])
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    h = Harness(make_supervisor(str(tmp_path / "gone" / "kubectl"), str(kubeconfig), specs))
    try:
        await h.sup.start()
        await h.wait(lambda: h.state("api") is S.FAILED, 10, "Failed")
        assert "No such file or directory" in h.sup.status("api").reason
        await h.sup.restart("api")  # still supervised: a restart tries again, and fails again
        await h.wait(lambda: h.sup.status("api").planned_restarts == 0, 10, "tried")
        await h.wait(lambda: h.state("api") is S.FAILED, 10, "Failed again")
        await h.sup.stop("api")
        assert h.state("api") is S.STOPPED
    finally:
        await h.close()
