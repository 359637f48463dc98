"""Context switches between two simulators, and config edits reloaded from disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from kportforward.core.config import load_config
from kportforward.core.models import ForwardSpec
from kportforward.sim import generated_world
from kportforward.supervisor.events import ConfigReloaded
from tests.integration.supervisor_helpers import (
    Harness,
    echo,
    free_ports,
    make_supervisor,
)

pytestmark = pytest.mark.integration


def merged_kubeconfig(path: Path, sims, current: str) -> None:
    """One kubeconfig holding every simulator's context; ``current`` selected."""
    doc = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for sim in sims:
        one = yaml.safe_load(Path(sim.kubeconfig_path).read_text())
        for section in ("clusters", "users", "contexts"):
            doc[section] += one[section]
    doc["current-context"] = current
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc))
    os.replace(tmp, path)


async def test_context_switch_reconnects_only_forwards_following_it(kubectl, sim_factory, tmp_path):
    a = sim_factory(generated_world(1), context_name="alpha")
    b = sim_factory(generated_world(1), context_name="beta")
    kubeconfig = tmp_path / "kubeconfig"
    merged_kubeconfig(kubeconfig, [a, b], "alpha")
    p1, p2 = free_ports(2)
    specs = (
        ForwardSpec("follows", "service/svc-000", 9000, p1, namespace="default"),
        ForwardSpec("pinned", "service/svc-000", 9000, p2, namespace="default", context="alpha"),
    )
    h = Harness(make_supervisor(kubectl, str(kubeconfig), specs))
    try:
        await h.sup.start()
        await h.all_running()
        pinned_pid = h.sup.status("pinned").pid
        follows_pid = h.sup.status("follows").pid
        assert b.count(path_regex="/portforward") == 0
        merged_kubeconfig(kubeconfig, [a, b], "beta")
        await h.wait(lambda: h.sup.status("follows").pid not in (None, follows_pid), 10, "switch")
        await h.all_running(20)
        assert b.count(path_regex="/portforward") >= 1  # now tunnelled through beta
        assert h.sup.status("pinned").pid == pinned_pid  # pinned to alpha: untouched
        assert "beta" in h.sup.status("follows").history[-3].reason
        assert await echo(p1, b"via beta") == b"via beta"
    finally:
        await h.close()


def write_config(path: Path, forwards: dict[str, dict]) -> None:
    doc = {"monitoringInterval": "200ms", "portForwards": forwards}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc))
    os.replace(tmp, path)


async def test_config_edit_reloads_with_the_documented_semantics(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(5))
    ports = free_ports(6)
    fwd = {
        f"f{i}": {"target": f"service/svc-00{i}", "targetPort": 9000, "localPort": ports[i],
                  "namespace": "default"}
        for i in range(3)
    }  # fmt: skip
    fwd["f4"] = {"target": "service/svc-004", "targetPort": 9000, "localPort": ports[5],
                 "namespace": "default", "type": "rpc"}  # fmt: skip
    path = tmp_path / "kpf.yaml"
    write_config(path, fwd)
    config = load_config(str(path))
    h = Harness(
        make_supervisor(
            kubectl,
            str(sim.kubeconfig_path),
            config.forwards,
            config_path=str(path),
            watch_config=True,
        )
    )
    try:
        await h.sup.start()
        await h.all_running()
        pids = {s.name: s.pid for s in h.sup.snapshot()}
        edited = dict(fwd)
        del edited["f2"]  # removed
        edited["f1"] = {**fwd["f1"], "localPort": ports[3]}  # changed
        edited["f4"] = {**fwd["f4"], "type": "web"}  # shown differently: same kubectl
        edited["f3"] = {"target": "service/svc-003", "targetPort": 9000, "localPort": ports[4],
                        "namespace": "default"}  # fmt: skip
        write_config(path, edited)
        await h.wait(lambda: any(isinstance(e, ConfigReloaded) for e in h.events), 10, "reload")
        reload = next(e for e in h.events if isinstance(e, ConfigReloaded))
        assert (reload.added, reload.removed, reload.changed) == (("f3",), ("f2",), ("f1", "f4"))
        await h.wait(lambda: {s.name for s in h.sup.snapshot()} == {"f0", "f1", "f3", "f4"}, 10)
        await h.all_running(20)
        snap = {s.name: s for s in h.sup.snapshot()}
        assert snap["f0"].pid == pids["f0"]  # unchanged: the same kubectl
        assert snap["f4"].pid == pids["f4"] and snap["f4"].spec.type == "web"
        assert snap["f1"].pid != pids["f1"] and snap["f1"].local_port == ports[3]
        assert await echo(ports[3], b"f1") == b"f1"
        assert await echo(ports[4], b"f3") == b"f3"
        # A broken edit keeps the old config running and says why.
        path.write_text("portForwards: [oops\n")
        await h.wait(
            lambda: any(getattr(e, "level", "") == "error" for e in h.events), 10, "error notice"
        )
        assert h.sup.status("f0").pid == pids["f0"]
    finally:
        await h.close()
