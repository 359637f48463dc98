"""Running out of file descriptors is transient (issue 18): with `ulimit -n 64` and 40 forwards, no
forward is marked Failed for it; the ones that could not get descriptors wait in Cooldown saying
why, and retry. The real `kportforward run`, kubectl and the simulator."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from kportforward.sim import generated_world
from tests.conftest import free_ports

pytestmark = pytest.mark.integration


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def test_too_many_open_files_is_a_cooldown_not_a_failure(kubectl, sim_factory, tmp_path: Path):
    n = 40
    sim = sim_factory(generated_world(n))
    ports = free_ports(n)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "portForwards": {
                    f"f{i:02d}": {"target": f"service/svc-{i:03d}", "targetPort": 9000,
                                  "localPort": ports[i], "namespace": "default"}
                    for i in range(n)
                }
            }
        )
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "kportforward", "run", "--json", "--config", str(config),
         "--kubeconfig", str(sim.kubeconfig_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_limit_fds,
    )  # fmt: skip
    events: list[dict] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.append(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + 60

        def exhausted_and_one_running() -> bool:
            said = any("open files" in e.get("reason", "") for e in events)
            return said and any(e.get("state") == "Running" for e in events)

        while time.monotonic() < deadline and not exhausted_and_one_running():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        exhausted = [e for e in events if "open files" in e.get("reason", "")]
        assert exhausted, events[-5:]
        assert all(e["state"] in ("Cooldown", "Connecting", "Starting") for e in exhausted)
        assert not [e for e in events if e.get("state") == "Failed"], events[-5:]
        assert any(e.get("state") == "Running" for e in events)  # the others work
        assert proc.poll() is None  # still supervising
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
