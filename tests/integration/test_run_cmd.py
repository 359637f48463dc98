"""``kportforward run``: event lines, signals, no kubectl left behind, bad input in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from kportforward.sim import generated_world
from tests.conftest import run_cli
from tests.integration.supervisor_helpers import free_ports, kubectls_of

pytestmark = pytest.mark.integration


def write_config(path: Path, n: int) -> list[int]:
    ports = free_ports(n)
    doc = {
        "monitoringInterval": "200ms",
        "portForwards": {
            f"f{i}": {"target": f"service/svc-{i:03d}", "targetPort": 9000,
                      "localPort": ports[i], "namespace": "default"}
            for i in range(n)
        },
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    return ports


class Run:
    """``kportforward run`` in a subprocess, its stdout read line by line in a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kportforward", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pred, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                raise AssertionError(f"never happened; lines={self.lines} stderr={err}")
            time.sleep(0.05)

    def finish(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def wait_no_kubectl(owner: int, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while (left := kubectls_of(owner)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def running(n: int):
    def check(lines: list[str]) -> bool:
        states = {}
        for line in lines:
            if line.startswith("{"):
                ev = json.loads(line)
                if ev["event"] == "forward":
                    states[ev["forward"]] = ev["state"]
        return len(states) == n and all(s == "Running" for s in states.values())

    return check


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_run_json_until_signal_leaves_no_kubectl(kubectl, sim_factory, tmp_path, sig):
    sim = sim_factory(generated_world(3))
    config = tmp_path / "kpf.yaml"
    write_config(config, 3)
    run = Run("--json", "--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))
    try:
        run.wait_for(running(3))
        assert len(kubectls_of(run.proc.pid)) == 3
        first = next(e for e in map(json.loads, run.lines) if e["event"] == "forward")
        assert {"ts", "time", "event", "forward", "state", "localPort", "pid", "restarts",
                "reason"} <= set(first)  # fmt: skip
        run.proc.send_signal(sig)
        assert run.finish() == 0
        assert wait_no_kubectl(run.proc.pid) == []
        last = [e for e in map(json.loads, run.lines) if e["event"] == "forward"][-3:]
        assert {ev["state"] for ev in last} == {"Stopped"}
    finally:
        run.kill()


def test_run_sigkilled_leaves_no_kubectl(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(3))
    config = tmp_path / "kpf.yaml"
    write_config(config, 3)
    run = Run("--json", "--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))
    try:
        run.wait_for(running(3))
        pids = [p.pid for p in kubectls_of(run.proc.pid)]
        assert len(pids) == 3
        run.proc.kill()
        run.finish()
        # The parent-death signal takes them down with us (found by our env marker, not by name).
        assert wait_no_kubectl(run.proc.pid, 5.0) == []
    finally:
        run.kill()


def test_run_human_lines_by_default(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(1))
    config = tmp_path / "kpf.yaml"
    (port,) = write_config(config, 1)
    run = Run("--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))
    try:
        run.wait_for(lambda lines: any(" Running " in x for x in lines))
        line = next(x for x in run.lines if " Running " in x)
        assert line.split()[1] == "f0" and f":{port}" in line and "forwarding" in line
        run.proc.send_signal(signal.SIGINT)
        assert run.finish() == 0
        assert wait_no_kubectl(run.proc.pid) == []
    finally:
        run.kill()


def test_missing_or_non_executable_kubectl_is_one_line_exit_2(tmp_path):
    config = tmp_path / "kpf.yaml"
    write_config(config, 1)
    plain = tmp_path / "kubectl"
    plain.write_text("#!/bin/sh\n")
    for path in (str(tmp_path / "nope"), str(plain), str(tmp_path)):
        result = run_cli("run", "--config", str(config), "--kubectl", path)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr and "--kubectl" in result.stderr


def test_kubeconfig_problems_are_one_line_exit_2(kubectl, tmp_path):
    config = tmp_path / "kpf.yaml"
    write_config(config, 1)
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\ncurrent-context: nowhere\ncontexts: []\n")
    for kc in (str(tmp_path / "missing"), str(broken)):
        result = run_cli("run", "--config", str(config), "--kubeconfig", kc)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


STUBBORN = """#!{python}
# A narrow stand-in for kubectl that ignores SIGINT and SIGTERM, so only SIGKILL stops it.
import signal, socket, sys
if sys.argv[1:2] == ["version"]:  # the start-up check: answer as kubectl does
    print('{{"clientVersion": {{"gitVersion": "v1.32.4-stand-in"}}}}')
    sys.exit(0)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
local, remote = sys.argv[-1].split(":")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(local or 0)))  # 0 behind the front door: a port of its own
s.listen(16)
print(f"Forwarding from 127.0.0.1:{{s.getsockname()[1]}} -> {{remote}}", flush=True)
while True:  # answers like a tunnel to an echo server: the probe's EOF gets an EOF back
    c, _ = s.accept()
    while c.recv(65536):
        pass
    c.close()
"""


def test_second_sigint_forces_a_slow_shutdown(tmp_path):
    fake = tmp_path / "kubectl"
    fake.write_text(STUBBORN.format(python=sys.executable))
    fake.chmod(0o755)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    config = tmp_path / "kpf.yaml"
    write_config(config, 1)
    run = Run(
        "--json", "--config", str(config), "--kubeconfig", str(kubeconfig), "--kubectl", str(fake)
    )
    try:
        run.wait_for(running(1))
        assert len(kubectls_of(run.proc.pid)) == 1
        run.proc.send_signal(signal.SIGINT)
        assert run.proc.stderr is not None
        # (the unreachable fake cluster's startup warning may come first)
        line = run.proc.stderr.readline()
        if "warning" in line:
            line = run.proc.stderr.readline()
        assert "stopping" in line
        run.proc.send_signal(signal.SIGINT)  # the stub ignores SIGINT/SIGTERM: this must force
        assert run.finish() == 0
        assert "forced: killed 1" in run.proc.stderr.read()
        assert wait_no_kubectl(run.proc.pid) == []
    finally:
        run.kill()
