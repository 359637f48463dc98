"""The simulator scenarios the engine's acceptance tests need: services created and deleted while
running (seen by kubectl and by watchers) and a container port that hangs up right after connect."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from kportforward.sim import SimulatorClient, generated_world

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def hung_up(pf) -> bool:
    """Connect through the tunnel, send nothing, and see the far end close (EOF or reset)."""
    with pf.connect() as s:
        try:
            return s.recv(1) == b""
        except ConnectionResetError:
            return True


def test_service_created_at_run_time_is_forwardable_and_deleted_is_not_found(
    sim_factory, port_forward
):
    sim = sim_factory(generated_world(1))
    # The pods of svc-000 exist; a second service selecting them appears only now.
    missing = port_forward(sim, "service/late", 9000, wait=False)
    assert missing.wait_exit() == 1
    assert 'services "late" not found' in missing.stderr
    assert sim.add_service("late", selector={"app": "svc-000"}, ports=[9000]) == "late"
    pf = port_forward(sim, "service/late", 9000)
    assert pf.echo(b"late") == b"late"
    pf.kill()
    sim.delete_service("default", "late")
    gone = port_forward(sim, "service/late", 9000, wait=False)
    assert gone.wait_exit() == 1
    assert 'services "late" not found' in gone.stderr
    with pytest.raises(ValueError, match="already exists"):
        sim.add_service("svc-000")
    with pytest.raises(KeyError, match="not found"):
        sim.delete_service("default", "late")


def test_service_watch_sees_added_and_deleted(sim_factory):
    sim = sim_factory(generated_world(1))

    def change_soon() -> None:
        deadline = time.monotonic() + 10
        while sim.count(path_regex="services.*watch=true") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        sim.add_service("late", selector={"app": "svc-000"}, ports=[9000])
        sim.delete_service("default", "late")

    threading.Thread(target=change_soon, daemon=True).start()
    url = sim.url + "/api/v1/namespaces/default/services?watch=true&timeoutSeconds=3"
    seen = []
    with urllib.request.urlopen(url, timeout=10) as resp:
        for raw in resp:
            ev = json.loads(raw)
            seen.append((ev["type"], ev["object"]["metadata"]["name"]))
            if ev["type"] == "DELETED":
                break
    assert seen[0] == ("ADDED", "svc-000")  # the listing first
    assert seen[-2:] == [("ADDED", "late"), ("DELETED", "late")]


def test_eof_backend_closes_each_tunnel_connection_but_kubectl_stays(sim_factory, port_forward):
    sim = sim_factory(generated_world(1))
    pod = sim.pods("default")[0]
    pf = port_forward(sim, "service/svc-000", 9000)
    assert pf.echo(b"before") == b"before"
    sim.eof_backend("default", pod, 9000)
    for _ in range(3):
        assert hung_up(pf)  # accepted, then closed before any byte was read
    assert pf.alive()  # unlike a refusal, kubectl does not exit
    sim.eof_backend("default", pod, 9000, eof=False)
    assert pf.echo(b"after") == b"after"
    with pytest.raises(KeyError):
        sim.eof_backend("default", pod, 1234)


def test_control_endpoints_for_services_and_eof(sim_factory, port_forward):
    sim = sim_factory(generated_world(1))
    client = SimulatorClient(sim.url)
    pod = sim.pods("default")[0]
    assert client.add_service("late", selector={"app": "svc-000"}, ports=[9000]) == "late"
    pf = port_forward(sim, "service/late", 9000)
    client.eof_backend("default", pod, 9000)
    assert hung_up(pf)
    client.eof_backend("default", pod, 9000, eof=False)
    assert pf.echo(b"x") == b"x"
    client.delete_service("default", "late")
    with pytest.raises(urllib.error.HTTPError) as info:
        client.delete_service("default", "late")
    assert info.value.code == 404
