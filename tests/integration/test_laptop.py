"""A laptop's day (issue 14): a stopped (sleeping) manager, idle tunnels cut by the far side.

The real kubectl and the simulator; `kportforward run` is SIGSTOPped as a suspended laptop would
stop it, while the cluster moves on (a pod replaced). After SIGCONT every forward is usable again
at once, only the dead tunnel's kubectl is replaced, and the working ones keep their pid.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from kportforward.core.models import Config, ForwardSpec, Settings
from kportforward.sim import generated_world
from kportforward.supervisor.runner import Tuning
from kportforward.supervisor.supervisor import Supervisor
from tests.conftest import free_ports
from tests.integration.conftest import echo_through
from tests.integration.supervisor_helpers import Harness, kubectls_of

pytestmark = pytest.mark.integration


async def _echo(port: int, data: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), 2)
    finally:
        writer.close()


@pytest.mark.parametrize("keep_alive", [0.4, 30.0], ids=["keepAlive-0.4s", "keepAlive-30s"])
async def test_idle_tunnel_survives_an_idle_cut_only_with_keep_alive(
    kubectl: str, sim_factory, keep_alive: float
) -> None:
    """The far side cuts tunnels idle for 1.5 s; probes are rare (every 30 s). With keepAlive
    under the cut the tunnel is never idle: after 5 s of no traffic the user's first connection
    works on the same kubectl. With keepAlive above it, the tunnel is cut (the control)."""
    sim = sim_factory(generated_world(1))
    sim.set_idle_timeout(1.5)
    (port,) = free_ports(1)
    spec = ForwardSpec("api", "service/svc-000", 9000, port, namespace="default")
    config = Config(
        forwards=(spec,), settings=Settings(monitoring_interval=30, keep_alive=keep_alive)
    )
    h = Harness(
        Supervisor(
            config,
            kubectl=kubectl,
            kubeconfig=str(sim.kubeconfig_path),
            tuning=Tuning(monitoring_interval=30, probe_timeout=0.5),
        )
    )
    try:
        await h.sup.start()
        await h.wait(lambda: h.state("api").value == "Running", 30, "Running")
        pid = h.sup.status("api").pid
        await asyncio.sleep(5.0)  # no user traffic
        if keep_alive < 1.5:
            assert await _echo(port) == b"ping"
            assert h.sup.status("api").pid == pid
            assert h.sup.status("api").restarts == 0
        else:
            assert h.sup.status("api").pid != pid or h.sup.status("api").restarts >= 1
    finally:
        await h.close()


def test_sigstopped_manager_comes_back_with_only_the_dead_tunnel_replaced(
    kubectl: str, sim_factory, tmp_path: Path
) -> None:
    sim = sim_factory(generated_world(4))
    ports = free_ports(4)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "portForwards": {
                    f"f{i}": {"target": f"service/svc-00{i}", "targetPort": 9000,
                              "localPort": ports[i], "namespace": "default"}
                    for i in range(4)
                }
            }
        )
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "kportforward", "run", "--json", "--config", str(config),
         "--kubeconfig", str(sim.kubeconfig_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    objects: list[dict] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            objects.append(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()

    def last(name: str) -> dict:
        return next((o for o in reversed(objects) if o.get("forward") == name and "state" in o), {})

    def wait(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"{what}: {objects[-8:]}"
            time.sleep(0.05)

    try:
        wait(lambda: all(last(f"f{i}").get("state") == "Running" for i in range(4)), 60, "Running")
        time.sleep(6.0)  # past the stability window: a lost tunnel restarts at once
        pids = {f"f{i}": last(f"f{i}")["pid"] for i in range(4)}
        victim_pod = next(p for p in sim.pods("default") if p.startswith("svc-000"))
        stopped_at = time.time()
        proc.send_signal(signal.SIGSTOP)
        try:
            sim.restart_pod("default", victim_pod)  # the cluster moves on while we sleep
            time.sleep(8.0)
        finally:
            proc.send_signal(signal.SIGCONT)
        woke = time.monotonic()
        # Every forward usable again; measure how long (no timed assert: a bound is a deadline).
        for i in range(4):
            deadline = time.monotonic() + 15
            while True:
                try:
                    if echo_through(ports[i], b"ping", timeout=2) == b"ping":
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"f{i} not usable after SIGCONT: {objects[-8:]}"
                time.sleep(0.05)
        took = time.monotonic() - woke
        wait(lambda: last("f0").get("state") == "Running", 15, "f0 Running again")
        print(f"all four usable {took:.2f} s after SIGCONT")
        assert last("f0")["pid"] != pids["f0"]  # the dead tunnel got a new kubectl
        for name in ("f1", "f2", "f3"):
            assert last(name)["pid"] == pids[name], f"{name} was restarted though it worked"
        spawned = [o for o in objects if o.get("state") == "Connecting" and o["ts"] >= stopped_at]
        assert [o["forward"] for o in spawned] == ["f0"], spawned
        assert any(
            o.get("event") == "notice" and "woke up" in o.get("message", "") for o in objects
        ), objects[-6:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait(5)
        deadline = time.monotonic() + 5
        while kubectls_of(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
