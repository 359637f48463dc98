"""Acceptance tests for the engine (issue 11): contexts, kubeconfigs, clusters and reloads.

Defect 5: one unknown ``context:`` stopped everything. Defect 6: a deleted kubeconfig tore down
working tunnels. Defect 7: the cluster list went stale and wrong. Defect 8: reload warnings
("did you mean") were dropped. Here through the Supervisor; ``run``/``check`` in
test_engine_run.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from kportforward.core.config import load_config
from kportforward.core.models import Config, ForwardSpec
from kportforward.core.states import ForwardState
from kportforward.sim import generated_world
from tests.integration.supervisor_helpers import (
    RUNNING,
    Harness,
    echo,
    echo_specs,
    free_ports,
    make_supervisor,
    mentioned,
    merged_kubeconfig,
    sample,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
S = ForwardState
MISSING = (
    r"kubeconfig\b.*\b(missing|not found|deleted|gone|no such file|does not exist"
    r"|broken|invalid|cannot be (read|parsed)|not valid|error)"
)


async def test_unknown_context_fails_alone_naming_the_contexts_that_exist(kubectl, sim_factory):
    sim = sim_factory(generated_world(1), context_name="alpha")
    good, bad = echo_specs([("good", "service/svc-000"), ("bad", "service/svc-000")])
    bad = ForwardSpec(
        bad.name, bad.target, bad.target_port, bad.local_port, namespace="default", context="nope"
    )
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), (good, bad)))
    try:
        await h.sup.start()
        await h.wait(lambda: h.state("bad") is S.FAILED, 15, "the bad forward Failed")
        await h.wait(lambda: h.state("good") is RUNNING, 20, "the good forward Running")
        reason = h.sup.status("bad").reason
        assert "nope" in reason and "alpha" in reason, reason
        assert await echo(good.local_port, b"good") == b"good"
    finally:
        await h.close()


async def test_missing_forward_kubeconfig_fails_alone(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(1), context_name="alpha")
    good, bad = echo_specs([("good", "service/svc-000"), ("bad", "service/svc-000")])
    gone = tmp_path / "no-such-kubeconfig"
    bad = ForwardSpec(
        bad.name, bad.target, bad.target_port, bad.local_port, namespace="default",
        kubeconfig=str(gone),
    )  # fmt: skip
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), (good, bad)))
    try:
        await h.sup.start()
        await h.wait(lambda: h.state("bad") is S.FAILED, 15, "the bad forward Failed")
        await h.wait(lambda: h.state("good") is RUNNING, 20, "the good forward Running")
        assert str(gone) in h.sup.status("bad").reason, h.sup.status("bad").reason
        assert await echo(good.local_port, b"good") == b"good"
    finally:
        await h.close()


@pytest.mark.parametrize(
    ("given", "damage"),
    [("KUBECONFIG", "deleted"), ("--kubeconfig", "deleted"), ("KUBECONFIG", "broken")],
)
async def test_deleted_or_broken_kubeconfig_keeps_running_tunnels_and_says_so(
    kubectl, sim_factory, tmp_path, given, damage
):
    sim = sim_factory(generated_world(2), context_name="alpha")
    # The hermetic $KUBECONFIG (tests/conftest.py), or a file given explicitly.
    kubeconfig = Path(os.environ["KUBECONFIG"]) if given == "KUBECONFIG" else tmp_path / "kc"
    assert str(kubeconfig).startswith((os.environ["HOME"], str(tmp_path)))  # never a real one
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    saved = Path(sim.kubeconfig_path).read_bytes()
    kubeconfig.write_bytes(saved)
    explicit = str(kubeconfig) if given == "--kubeconfig" else None
    a, b = echo_specs([("a", "service/svc-000"), ("b", "service/svc-001")])
    h = Harness(make_supervisor(kubectl, explicit, (a, b)))
    try:
        await h.sup.start()
        await h.all_running(30)
        pid_a = h.sup.status("a").pid
        if damage == "deleted":
            kubeconfig.unlink()
        else:
            kubeconfig.write_text("apiVersion: v1\nclusters: [{name: half-written\n")
        seen = await sample(h, "a", 3.0)  # the kubeconfig watcher polls every 0.2 s here
        assert {(s.state, s.pid) for _, s in seen} == {(RUNNING, pid_a)}
        assert await echo(a.local_port, b"still here") == b"still here"
        await h.wait(
            lambda: mentioned(h, MISSING, forwards=False),
            5,
            f"a notice that the kubeconfig is {damage}",
        )
        # A new spawn waits for the kubeconfig instead of failing against localhost:8080.
        await h.sup.restart("b")
        seen = await sample(h, "b", 2.0)
        assert all(s.state is not RUNNING for _, s in seen[5:])
        assert "kubeconfig" in h.sup.status("b").reason, h.sup.status("b").reason
        tmp = kubeconfig.with_name("kubeconfig.tmp")
        tmp.write_bytes(saved)
        os.replace(tmp, kubeconfig)  # restored
        await h.wait(lambda: h.state("b") is RUNNING, 15, "b Running once the kubeconfig is back")
        assert await echo(b.local_port, b"b") == b"b"
        seen = await sample(h, "a", 1.0)
        assert {(s.state, s.pid) for _, s in seen} == {(RUNNING, pid_a)}  # nothing restarted
        # The header never learned of a cluster called "(none)" or "(current)" meanwhile.
        assert mentioned(h, r"context='\((current|none)\)'") == []
    finally:
        await h.close()


async def test_clusters_are_exactly_those_the_forwards_use(kubectl, sim_factory, tmp_path):
    a = sim_factory(generated_world(1), context_name="alpha")
    b = sim_factory(generated_world(1), context_name="beta")
    kubeconfig = tmp_path / "kubeconfig"
    merged_kubeconfig(kubeconfig, [a, b], "alpha")
    p1, p2, p3 = free_ports(3)
    follows = ForwardSpec("follows", "service/svc-000", 9000, p1, namespace="default")
    pinned = ForwardSpec(
        "pinned", "service/svc-000", 9000, p2, namespace="default", context="alpha"
    )
    on_b = ForwardSpec("on-b", "service/svc-000", 9000, p3, namespace="default", context="beta")
    h = Harness(make_supervisor(kubectl, str(kubeconfig), (follows, pinned, on_b)))
    try:
        await h.sup.start()
        await h.all_running(30)
        clusters = h.sup.clusters()
        # By context name (the current context's real name, once, not "(current)") and server.
        assert sorted(c.context for c in clusters) == ["alpha", "beta"], clusters
        servers = {c.context: c.server.rstrip("/") for c in clusters}
        assert servers == {"alpha": a.url.rstrip("/"), "beta": b.url.rstrip("/")}
        a.stop_in_thread()  # the current context's API server is down
        await h.wait(
            lambda: all(h.state(n) is not RUNNING for n in ("follows", "pinned")),
            15,
            "alpha's forwards noticed it is down",
        )
        await h.wait(
            lambda: all(c.reachable is not True for c in h.sup.clusters() if c.context == "alpha"),
            10,
            "alpha not shown reachable",
        )
        seen = await sample(h, "follows", 1.0)
        assert all(s.state is not RUNNING for _, s in seen)
        by_name = {c.context: c for c in h.sup.clusters()}
        assert sorted(by_name) == ["alpha", "beta"]  # still by name while down
        assert by_name["alpha"].reachable is not True
        assert by_name["beta"].reachable is not False and h.state("on-b") is RUNNING
        # Removing the only forward of a context removes the context.
        await h.sup.reload(Config(forwards=(follows, pinned), settings=h.sup.config.settings))
        await h.wait(lambda: {s.name for s in h.sup.snapshot()} == {"follows", "pinned"}, 10)
        assert [c.context for c in h.sup.clusters()] == ["alpha"]
        # Nothing on the event stream names a cluster other than by its context.
        assert mentioned(h, r"context='\((current|none)\)'") == []
    finally:
        await h.close()


async def test_reload_warnings_reach_the_event_stream(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(1))
    (port,) = free_ports(1)
    forward = {"target": "service/svc-000", "targetPort": 9000, "localPort": port,
               "namespace": "default"}  # fmt: skip
    path = tmp_path / "kpf.yaml"
    path.write_text(yaml.safe_dump({"portForwards": {"api": forward}}))
    config = load_config(str(path))
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), config.forwards))
    try:
        await h.sup.start()
        await h.all_running(30)
        pid = h.sup.status("api").pid
        path.write_text(
            yaml.safe_dump({"portForwards": {"api": {**forward, "namespce": "default"}}})
        )
        edited = load_config(str(path))
        assert any("did you mean" in w.message for w in edited.warnings)  # the loader's part
        await h.sup.reload(edited)
        await h.wait(lambda: mentioned(h, "did you mean"), 5, "the warning as an event")
        assert h.sup.status("api").pid == pid  # a warning alone changes nothing
    finally:
        await h.close()
