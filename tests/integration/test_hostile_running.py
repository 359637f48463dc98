"""Hostile things that happen while kportforward runs (issue #18, items 1, 3, 5, 6, 9, 11).

The real CLI in a subprocess, the real kubectl against the simulator: a kubeconfig replaced by a
FIFO or by a link to /dev/zero, a log file on a full disk, an exec credential plugin that prints
its token or is still running when a signal arrives, a run killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from kportforward.sim import Simulator, generated_world
from tests.integration.supervisor_helpers import free_ports, kubectls_of

pytestmark = pytest.mark.integration


class Cli:
    """``python -m kportforward ARGS`` with stdout and stderr collected by threads."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kportforward", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream, sink: list[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_for(self, pred, what: str, timeout: float = 45.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not pred():
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"exited {self.proc.returncode} before {what}: {self.err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.out[-5:]} {self.err}")
            time.sleep(0.05)

    def finish(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        time.sleep(0.2)  # let the readers drain
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _config(path: Path, n: int = 1) -> Path:
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
    return path


def _running(cli: Cli, n: int = 1) -> bool:
    states = {}
    for line in cli.out:
        event = json.loads(line)
        if event.get("event") == "forward":
            states[event["forward"]] = event["state"]
    return sum(1 for s in states.values() if s == "Running") >= n


@pytest.mark.parametrize("replacement", ["fifo", "link-to-dev-zero", "directory"])
def test_a_kubeconfig_replaced_by_a_non_file_while_running_neither_freezes_nor_crashes(
    kubectl, sim_factory, tmp_path: Path, replacement: str
) -> None:
    """Before #18 a FIFO froze the event loop (SIGTERM no longer worked) and /dev/zero crashed
    the supervisor with exit 1. Now the re-read is refused, off the loop, and it keeps running."""
    sim: Simulator = sim_factory(generated_world(1))
    assert sim.kubeconfig_path is not None
    kc = tmp_path / "kubeconfig"
    kc.write_text(sim.kubeconfig_path.read_text())
    cli = Cli(
        "run", "--json", "--config", str(_config(tmp_path / "c.yaml")), "--kubeconfig", str(kc)
    )
    try:
        cli.wait_for(lambda: _running(cli), "Running")
        kc.unlink()
        if replacement == "fifo":
            os.mkfifo(kc)
        elif replacement == "directory":
            kc.mkdir()
        else:
            kc.symlink_to("/dev/zero")
        time.sleep(3.0)  # the watcher stats the kubeconfig every second
        assert cli.proc.poll() is None, cli.err
        rss = psutil.Process(cli.proc.pid).memory_info().rss
        assert rss < 500 << 20
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0, cli.err
        assert not [line for line in cli.err if "Traceback" in line]
        assert kubectls_of(cli.proc.pid) == []
    finally:
        cli.kill()


def test_a_full_disk_under_the_log_file_is_reported_once(kubectl, sim_factory, tmp_path) -> None:
    """/dev/full fails every write with ENOSPC: one warning line, then the handler is off (before
    #18: a logging traceback per record, hundreds of lines in seconds)."""
    sim: Simulator = sim_factory(generated_world(2))
    cli = Cli("-v", "--log-file", "/dev/full", "run", "--json",
              "--config", str(_config(tmp_path / "c.yaml", 2)),
              "--kubeconfig", str(sim.kubeconfig_path))  # fmt: skip
    try:
        cli.wait_for(lambda: _running(cli, 2), "Running")
        time.sleep(1.0)
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0
    finally:
        cli.kill()
    warning = (
        "kportforward: warning: cannot write the log file /dev/full (No space left on device); "
        "logging stopped"
    )
    assert cli.err.count(warning) == 1, cli.err
    # Besides it, only run's own line about the signal: no "Logging error", no traceback.
    assert [line for line in cli.err if line != warning] == [
        "kportforward: SIGTERM: stopping every kubectl (Ctrl-C again to force)"
    ]


def test_an_existing_log_file_is_tightened_to_0600(tmp_path: Path) -> None:
    log = tmp_path / "kpf.log"
    log.write_text("earlier\n")
    log.chmod(0o644)
    config = tmp_path / "c.yaml"
    config.write_text("portForwards: {}\n")
    done = subprocess.run(
        [sys.executable, "-m", "kportforward", "--log-file", str(log), "check", "--config",
         str(config)], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text().startswith("earlier\n")  # appended to, not replaced


# ------------------------------------------------------------------ exec credential plugins

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJkZXYiLCJleHAiOjF9.c2lnbmF0dXJlLXNpZw"
HEX_TOKEN = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _plugin(tmp_path: Path, body: str) -> Path:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    plugin.chmod(0o755)
    return plugin


def _exec_kubeconfig(sim: Simulator, path: Path, plugin: Path) -> Path:
    assert sim.kubeconfig_path is not None
    doc = yaml.safe_load(sim.kubeconfig_path.read_text())
    doc["users"][0]["user"] = {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                 "interactiveMode": "Never"}
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_token_an_exec_plugin_prints_on_stderr_is_redacted(kubectl, sim_factory, tmp_path):
    sim: Simulator = sim_factory(generated_world(1))
    plugin = _plugin(
        tmp_path,
        f"""
        import sys
        print("refresh failed for {JWT} (cached: {HEX_TOKEN})", file=sys.stderr)
        sys.exit(1)
    """,
    )
    kc = _exec_kubeconfig(sim, tmp_path / "kc", plugin)
    log = tmp_path / "kpf.log"
    # A failing login is a state (issue 14): run waits Suspended and says why, redacted.
    proc = subprocess.Popen(
        [sys.executable, "-m", "kportforward", "-v", "--log-file", str(log), "run",
         "--config", str(_config(tmp_path / "c.yaml")), "--kubeconfig", str(kc)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # Over plain http kubectl sends no credentials, so the forward may well run: either
        # way the plugin's failure has been reported by then.
        settled = ("→ Running", "→ Suspended")
        while time.monotonic() < deadline and not (
            log.exists() and any(s in log.read_text() for s in settled)
        ):
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "refresh failed for <redacted>" in err  # the reason is still there
    everything = out + err + log.read_text()
    assert JWT not in everything and JWT.split(".")[1] not in everything
    assert HEX_TOKEN not in everything


_SLOW_PLUGIN = """
    import os, subprocess, sys, time
    here = os.path.dirname(os.path.abspath(__file__))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(os.path.join(here, "pids.tmp"), "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    os.rename(os.path.join(here, "pids.tmp"), os.path.join(here, "pids"))
    time.sleep(300)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_signal_during_the_startup_credential_check_takes_the_plugin_along(
    kubectl, sim_factory, tmp_path: Path, sig: signal.Signals
) -> None:
    """Before #18 the plugin (in its own session) outlived kportforward. Now: SIGINT and SIGTERM
    kill its whole process group, its own child too; SIGKILL (nothing runs) still takes the plugin
    itself, through its parent-death signal."""
    sim: Simulator = sim_factory(generated_world(1))
    kc = _exec_kubeconfig(sim, tmp_path / "kc", _plugin(tmp_path, _SLOW_PLUGIN))
    cli = Cli("run", "--config", str(_config(tmp_path / "c.yaml")), "--kubeconfig", str(kc))
    procs: list[psutil.Process] = []
    try:
        pids = tmp_path / "pids"
        cli.wait_for(pids.exists, "the plugin to start")
        plugin_pid, child_pid = map(int, pids.read_text().split())
        procs = [psutil.Process(plugin_pid), psutil.Process(child_pid)]
        cli.proc.send_signal(sig)
        cli.finish()
        must_die = procs if sig != signal.SIGKILL else procs[:1]
        _gone, alive = psutil.wait_procs(must_die, timeout=10)
        assert not alive, f"left running after {sig.name}: {alive}"
        assert not [line for line in cli.err if "Traceback" in line]
    finally:
        cli.kill()
        for p in procs:  # processes this test's plugin started (psutil checks their start time)
            if p.is_running():
                p.kill()


# ---------------------------------------------------------------- temporary directories


def test_a_sigkilled_sim_leaves_a_directory_the_next_start_removes(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp)}
    first = Cli("sim", env=env)
    try:
        first.wait_for(lambda: any(x.startswith("press Ctrl-C") for x in first.out), "the sim")
        first.proc.kill()
        first.finish()
    finally:
        first.kill()
    left = [p for p in tmp.iterdir() if p.name.startswith("kportforward-sim-")]
    assert len(left) == 1 and (left[0] / ".kportforward-owner").is_file()
    assert (left[0] / "kubeconfig").is_file()  # what SIGKILL left behind
    second = Cli("sim", env=env)
    try:
        second.wait_for(lambda: any(x.startswith("press Ctrl-C") for x in second.out), "the sim")
        assert not left[0].exists()
        assert len(list(tmp.iterdir())) == 1  # only the second run's own directory
        second.proc.send_signal(signal.SIGINT)
        assert second.finish() == 0
    finally:
        second.kill()
    assert list(tmp.iterdir()) == []
