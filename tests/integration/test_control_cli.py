"""The control socket with real processes: ``run`` + the real kubectl + the simulator, and
``status``, ``wait``, ``start/stop/restart``, a second ``run`` refused or ``--replace``d, a
SIGKILLed instance's stale lock taken over, 20 clients streaming at once, ``wait --start``."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from kportforward.control.client import Client
from kportforward.control.paths import find_instance
from kportforward.sim import generated_world
from tests.conftest import run_cli
from tests.control_helpers import runtime_dir  # noqa: F401 - autouse fixture
from tests.integration.supervisor_helpers import free_ports, kubectls_of
from tests.integration.test_run_cmd import Run, running, wait_no_kubectl

pytestmark = pytest.mark.integration


def write_config(path: Path, n: int, *, bad: bool = False) -> list[int]:
    """``f0``… on svc-000…; with ``bad`` also ``bad``: a service port that does not exist."""
    ports = free_ports(n + 1)
    forwards: dict[str, Any] = {
        f"f{i}": {"target": f"service/svc-{i:03d}", "targetPort": 9000,
                  "localPort": ports[i], "namespace": "default", "group": "g"}
        for i in range(n)
    }  # fmt: skip
    if bad:
        forwards["bad"] = {"target": "service/svc-000", "targetPort": 1234,
                           "localPort": ports[n], "namespace": "default"}  # fmt: skip
    path.write_text(yaml.safe_dump({"monitoringInterval": "200ms", "portForwards": forwards}))
    return ports


def start_run(config: Path, sim: Any, *extra: str) -> Run:
    run = Run("--json", *extra, "--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))
    deadline = time.monotonic() + 30
    while find_instance(str(config)) is None or find_instance(str(config)).pid != run.proc.pid:  # type: ignore[union-attr]
        assert run.proc.poll() is None, run.proc.stderr.read() if run.proc.stderr else ""
        assert time.monotonic() < deadline, "the instance never took the lock"
        time.sleep(0.05)
    return run


def cli(config: Path, *args: str, timeout: float = 60) -> Any:
    return run_cli("--config", str(config), *args, timeout=timeout)


def stop_run(run: Run) -> None:
    if run.proc.poll() is None:
        run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 0
    assert wait_no_kubectl(run.proc.pid) == []


def test_status_wait_act_and_a_refused_second_run(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(2))
    config = tmp_path / "kpf.yaml"
    ports = write_config(config, 2, bad=True)
    run = start_run(config, sim)
    try:
        done = cli(config, "wait", "f0", "f1", "--timeout", "60s")
        assert done.returncode == 0, done.stderr
        assert f"f0 :{ports[0]}" in done.stdout
        status = cli(config, "status", "--json")
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["instance"]["pid"] == run.proc.pid and doc["instance"]["mode"] == "run"
        rows = {r["name"]: r for r in doc["forwards"]}
        assert rows["f0"]["state"] == "Running" and rows["f0"]["localPort"] == ports[0]
        assert rows["f0"]["pod"].startswith("svc-000") and rows["f0"]["uptime"] >= 0
        # The front door's counters (wait's probes go around the door: no user connection yet).
        assert rows["f0"]["traffic"]["opened"] == 0 and rows["f0"]["traffic"]["bytesIn"] == 0
        assert set(rows["f0"]["traffic"]) >= {"active", "failed", "bytesOut", "rateIn", "rateOut"}
        human = cli(config, "status")
        assert "NAME" in human.stdout and "f1" in human.stdout
        # A forward that never becomes healthy: wait times out naming its state and reason.
        never = cli(config, "wait", "bad", "--timeout", "3s")
        assert never.returncode == 1
        line = next(x for x in never.stderr.splitlines() if x.strip().startswith("bad"))
        bad_now = json.loads(cli(config, "status", "--json").stdout)
        bad_row = next(r for r in bad_now["forwards"] if r["name"] == "bad")
        assert bad_row["state"] != "Running" and bad_row["state"] in line
        assert len(line.split(None, 2)) == 3  # name, state and a reason
        # A second instance on the same config is refused, naming the first.
        second = run_cli("--config", str(config), "--kubeconfig", str(sim.kubeconfig_path), "run")
        assert second.returncode == 2
        assert f"already running (pid {run.proc.pid} since" in second.stderr
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        # Acting on the instance.
        old_pid = rows["f0"]["pid"]
        assert cli(config, "restart", "f0").returncode == 0
        assert cli(config, "wait", "f0", "--timeout", "60s").returncode == 0
        new = {r["name"]: r for r in json.loads(cli(config, "status", "--json").stdout)["forwards"]}
        assert new["f0"]["pid"] != old_pid
        assert cli(config, "stop", "f1").returncode == 0
        stopped = json.loads(cli(config, "status", "--json").stdout)["forwards"]
        assert next(r for r in stopped if r["name"] == "f1")["state"] == "Stopped"
        assert cli(config, "start", "f1").returncode == 0
        assert cli(config, "wait", "--group", "g", "--timeout", "60s").returncode == 0
        unknown = cli(config, "stop", "nope")
        assert unknown.returncode == 2 and "nope" in unknown.stderr
    finally:
        stop_run(run)
    gone = cli(config, "status")
    assert gone.returncode == 3 and "no kportforward is running" in gone.stderr
    assert cli(config, "wait", "--timeout", "1s").returncode == 3


def test_replace_stops_the_old_instance_and_takes_over(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(2))
    config = tmp_path / "kpf.yaml"
    ports = write_config(config, 2)
    first = start_run(config, sim)
    second = None
    try:
        first.wait_for(running(2))
        second = Run("--json", "--replace", "--config", str(config),
                     "--kubeconfig", str(sim.kubeconfig_path))  # fmt: skip
        assert first.finish(30) == 0  # asked to stop through the socket
        assert wait_no_kubectl(first.proc.pid) == []
        second.wait_for(running(2), timeout=60)
        doc = json.loads(cli(config, "status", "--json").stdout)
        assert doc["instance"]["pid"] == second.proc.pid
        assert sorted(r["localPort"] for r in doc["forwards"]) == sorted(ports[:2])
    finally:
        first.kill()
        if second is not None:
            stop_run(second)


def test_a_sigkilled_instance_leaves_a_lock_the_next_start_takes(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(2))
    config = tmp_path / "kpf.yaml"
    ports = write_config(config, 2)
    first = start_run(config, sim)
    try:
        first.wait_for(running(2))
        first.proc.kill()
        first.finish()
        assert wait_no_kubectl(first.proc.pid, 5.0) == []
    finally:
        first.kill()
    assert cli(config, "status").returncode == 3  # the dead owner's lock is no instance
    second = start_run(config, sim)
    try:
        second.wait_for(running(2), timeout=60)
        doc = json.loads(cli(config, "status", "--json").stdout)
        assert doc["instance"]["pid"] == second.proc.pid
        assert sorted(r["localPort"] for r in doc["forwards"]) == sorted(ports[:2])
    finally:
        stop_run(second)


def test_twenty_clients_stream_events_at_once(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(1))
    config = tmp_path / "kpf.yaml"
    write_config(config, 1)
    run = start_run(config, sim)
    info = find_instance(str(config))
    assert info is not None
    results: dict[int, list[str]] = {}

    def follow(i: int, subscribed: threading.Barrier) -> None:
        with Client(info.socket, timeout=30) as client:
            client.call("subscribe")
            subscribed.wait(30)
            seen: list[str] = []
            deadline = time.monotonic() + 60
            while "Running" not in seen[1:] and time.monotonic() < deadline:
                event = client.next_event(deadline)
                if event and event.get("forward") == "f0":
                    seen.append(event["state"])
            results[i] = seen

    try:
        run.wait_for(running(1))
        barrier = threading.Barrier(21)
        threads = [threading.Thread(target=follow, args=(i, barrier)) for i in range(20)]
        for t in threads:
            t.start()
        barrier.wait(30)
        assert cli(config, "restart", "f0").returncode == 0
        for t in threads:
            t.join(70)
        assert len(results) == 20
        for seen in results.values():  # each saw the restart through to Running again
            assert seen[0] in ("Reconnecting", "Starting") and seen[-1] == "Running", seen
    finally:
        stop_run(run)


def test_wait_returns_on_the_first_passing_probe(kubectl, sim_factory, tmp_path, capsys):
    """Measured, not asserted: the delay between the Running event and wait's exit."""
    sim = sim_factory(generated_world(1))
    config = tmp_path / "kpf.yaml"
    write_config(config, 1)
    run = start_run(config, sim)
    try:
        result = cli(config, "wait", "f0", "--timeout", "60s", "--json")
        returned = time.time()
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["verified"] == ["f0"]
        run.wait_for(running(1))
        ev = next(e for e in map(json.loads, run.lines) if e.get("state") == "Running")
        with capsys.disabled():
            print(f"\nwait returned {returned - ev['ts']:.3f} s after the Running event "
                  "(includes the wait process's own exit)")  # fmt: skip
    finally:
        stop_run(run)


def test_wait_start_starts_a_detached_instance(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(1))
    config = tmp_path / "kpf.yaml"
    write_config(config, 1)
    args = ["--config", str(config), "--kubeconfig", str(sim.kubeconfig_path)]
    result = run_cli(*args, "wait", "--start", "--timeout", "60s", timeout=90)
    pid = None
    try:
        assert result.returncode == 0, result.stderr
        info = find_instance(str(config))
        assert info is not None and info.mode == "run"
        pid = info.pid
        assert len(kubectls_of(pid)) == 1
        stopped = cli(config, "stop", "--instance")
        assert stopped.returncode == 0 and str(pid) in stopped.stdout
        psutil.Process(pid).wait(20)
        assert cli(config, "status").returncode == 3
    finally:
        if pid is not None and psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)
