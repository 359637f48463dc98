"""Signals: the real dashboard in a pseudo-terminal against the simulator, and run's forced exit.

- dashboard + SIGINT / SIGTERM / SIGHUP: exits by itself (measured; the issue's budget is 3 s, the
  test waits up to 10 s), no kubectl of ours left (found by the KPORTFORWARD_OWNER_PID marker), and
  the terminal restored: the alternate screen left (``ESC[?1049l`` after the last ``ESC[?1049h``)
  and the pty back in canonical mode with echo.
- dashboard and ``run`` + SIGKILL of the manager: its kubectl die with it (parent-death signal).
- ``run`` + a second SIGINT during a slow shutdown: forced, the SIGTERM step is never reached.
``run``'s single-signal behaviour is covered by tests/integration/test_run_cmd.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from kportforward.sim import Simulator, generated_world
from tests.integration.supervisor_helpers import free_ports, kubectls_of

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\x1b\][^\x07]*\x07")
ENTER_ALT, LEAVE_ALT = b"\x1b[?1049h", b"\x1b[?1049l"


def write_config(path: Path, n: int, target_port: int = 9000) -> None:
    """``n`` forwards onto generated_world's services, on free ports."""
    ports = free_ports(n)
    path.write_text(yaml.safe_dump({
        "monitoringInterval": "500ms",
        "portForwards": {
            f"f{i}": {"target": f"service/svc-{i:03d}", "targetPort": target_port,
                      "localPort": ports[i], "namespace": "default"}
            for i in range(n)
        },
    }))  # fmt: skip


class PtyApp:
    """``python -m kportforward ARGS`` on a 120x30 pseudo-terminal; output read by a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kportforward", *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "30",
                 **(env or {})},
            start_new_session=True,
            close_fds=True,
        )  # fmt: skip
        self.raw = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.raw += data

    def text(self) -> str:
        """Everything shown so far, escape sequences removed."""
        with self._lock:
            raw = bytes(self.raw)
        return ANSI.sub("", raw.decode("utf-8", "replace"))

    def wait_text(self, pattern: str, timeout: float = 60) -> None:
        """Poll until the screen output matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never saw {pattern!r}; exit {self.proc.poll()}; "
                                     f"screen tail: {self.text()[-1500:]!r}")  # fmt: skip
            time.sleep(0.05)

    def lflags(self) -> int:
        """The pty's local mode flags (ECHO, ICANON …) as the app left them."""
        return termios.tcgetattr(self.slave)[3]

    def drain(self) -> None:
        """After the app exited: close our end of the terminal and read what is left."""
        self._close_fd("slave")
        self._reader.join(5)

    def _close_fd(self, which: str) -> None:
        fd = getattr(self, which)
        if fd >= 0:  # never twice: the number may belong to another file by now
            setattr(self, which, -1)
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Kill the app if still running (ours: started here), close the pty."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_fd("slave")
        self._close_fd("master")
        self._reader.join(5)


def wait_gone(owner: int, timeout: float) -> tuple[list, float]:
    """Poll until no kubectl carries ``owner``'s marker; returns (left, seconds waited)."""
    start = time.monotonic()
    while (left := kubectls_of(owner)) and time.monotonic() - start < timeout:
        time.sleep(0.01)
    return left, time.monotonic() - start


@pytest.fixture
def dashboard(
    kubectl: str, sim_factory: Callable[..., Simulator], tmp_path: Path
) -> Iterator[PtyApp]:
    """The real dashboard over 3 forwards, shown with every row Running."""
    sim = sim_factory(generated_world(3))
    config = tmp_path / "config.yaml"
    write_config(config, 3)
    app = PtyApp("--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))
    try:
        app.wait_text(r"3/3 running")
        assert len(kubectls_of(app.proc.pid)) == 3
        yield app
    finally:
        app.close()
        wait_gone(app.proc.pid, 5)


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_dashboard_exits_cleanly_on_signal(dashboard: PtyApp, sig: signal.Signals) -> None:
    assert dashboard.lflags() & termios.ECHO == 0  # the app really had the terminal in raw mode
    sent = time.monotonic()
    dashboard.proc.send_signal(sig)
    code = dashboard.proc.wait(10)
    took = time.monotonic() - sent
    print(f"dashboard {sig.name}: exited {code} after {took:.2f}s")
    left, _ = wait_gone(dashboard.proc.pid, 2)
    assert left == [], [p.cmdline() for p in left]
    assert code == 0
    lflags = dashboard.lflags()
    assert lflags & termios.ECHO and lflags & termios.ICANON
    dashboard.drain()
    raw = bytes(dashboard.raw)
    assert ENTER_ALT in raw and raw.rfind(LEAVE_ALT) > raw.rfind(ENTER_ALT)


def test_dashboard_sigkilled_leaves_no_kubectl(dashboard: PtyApp) -> None:
    pids = [p.pid for p in kubectls_of(dashboard.proc.pid)]
    dashboard.proc.kill()
    dashboard.proc.wait(10)
    left, took = wait_gone(dashboard.proc.pid, 5)
    print(f"dashboard SIGKILL: {len(pids)} kubectl gone {took:.2f}s after the manager died")
    assert left == []


def test_run_sigkilled_leaves_no_kubectl_quickly(
    kubectl: str, sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = sim_factory(generated_world(3))
    config = tmp_path / "config.yaml"
    write_config(config, 3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kportforward", "run", "--json", "--config", str(config),
         "--kubeconfig", str(sim.kubeconfig_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        running: set[str] = set()
        assert proc.stdout is not None
        for line in proc.stdout:
            ev = json.loads(line)
            if ev["event"] == "forward" and ev["state"] == "Running":
                running.add(ev["forward"])
            if len(running) == 3:
                break
        assert len(kubectls_of(proc.pid)) == 3
        proc.kill()
        proc.wait(10)
        left, took = wait_gone(proc.pid, 5)
        print(f"run SIGKILL: kubectl gone {took:.2f}s after the manager died")
        assert left == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# A wrapper around the real kubectl that makes the polite stop slow: it notes each signal its
# group receives and outlives kubectl until SIGKILL, so `run` must go SIGINT → wait → SIGTERM →
# wait → SIGKILL — unless a second SIGINT forces it.
SLOW_WRAPPER = """\
import os, signal, subprocess, sys, time
log = os.environ["KPF_SIGNAL_LOG"]
def note(sig, frame):
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()} {signal.Signals(sig).name}\\n")
if sys.argv[1:2] == ["version"]:  # the start-up check: answer as kubectl does
    os.execv(os.environ["KPF_REAL_KUBECTL"], ["kubectl", *sys.argv[1:]])
signal.signal(signal.SIGINT, note)
signal.signal(signal.SIGTERM, note)
subprocess.Popen([os.environ["KPF_REAL_KUBECTL"], *sys.argv[1:]])
while True:
    time.sleep(1)
"""


def _slow_run(kubectl: str, sim: Simulator, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    wrapper = tmp_path / "slow-kubectl"
    wrapper.write_text(f"#!{sys.executable}\n{SLOW_WRAPPER}")
    wrapper.chmod(0o755)
    config = tmp_path / "config.yaml"
    write_config(config, 2)
    log = tmp_path / "signals.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kportforward", "run", "--json", "--config", str(config),
         "--kubeconfig", str(sim.kubeconfig_path), "--kubectl", str(wrapper)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "KPF_SIGNAL_LOG": str(log), "KPF_REAL_KUBECTL": kubectl},
    )  # fmt: skip
    running: set[str] = set()
    assert proc.stdout is not None
    for line in proc.stdout:
        ev = json.loads(line)
        if ev["event"] == "forward" and ev["state"] == "Running":
            running.add(ev["forward"])
        if len(running) == 2:
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    return proc, log


def _wait_for_line(path: Path, word: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and word in path.read_text()):
        assert time.monotonic() < deadline, f"no {word} in {path}"
        time.sleep(0.01)


@pytest.mark.parametrize("second_sigint", [False, True], ids=["polite", "forced"])
def test_run_second_sigint_forces_a_slow_shutdown(
    kubectl: str, sim_factory: Callable[..., Simulator], tmp_path: Path, second_sigint: bool
) -> None:
    sim = sim_factory(generated_world(2))
    proc, log = _slow_run(kubectl, sim, tmp_path)
    try:
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _wait_for_line(log, "SIGINT")  # the polite stop has begun, and it is slow
        if second_sigint:
            proc.send_signal(signal.SIGINT)
        proc.wait(15)
        took = time.monotonic() - sent
        left, _ = wait_gone(proc.pid, 5)
        seen = log.read_text().split()
        print(f"run {'forced' if second_sigint else 'polite'} shutdown: {took:.2f}s; {seen}")
        assert left == []
        if second_sigint:
            assert "SIGTERM" not in seen  # killed at once, no SIGTERM step waited for
        else:
            assert "SIGTERM" in seen  # the control: without the second SIGINT it is slow
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_dashboard_keeps_running_and_says_so_when_the_config_turns_bad(
    kubectl: str, sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    # Bad input inside the dashboard: a notification, the app and its forwards carry on.
    sim = sim_factory(generated_world(2))
    config = tmp_path / "config.yaml"
    write_config(config, 2)
    app = PtyApp("--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))
    try:
        app.wait_text(r"2/2 running")
        config.write_text("portForwards: [unclosed\n")
        app.wait_text(r"not\s+reloaded")
        assert app.proc.poll() is None
        assert len(kubectls_of(app.proc.pid)) == 2
        app.proc.send_signal(signal.SIGTERM)
        assert app.proc.wait(10) == 0
        assert wait_gone(app.proc.pid, 2)[0] == []
    finally:
        app.close()
