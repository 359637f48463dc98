"""As a person: the real ``kportforward`` in a tmux terminal against the simulator.

Each test runs its own tmux server (a private socket), types keys with send-keys, reads the screen
with capture-pane, and kills the server at teardown. No shell: tmux runs ``run_in_terminal.py``
(Python), which runs the kportforward argv and then prints its exit code and whether the terminal
modes were restored.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from kportforward.sim import Simulator
from tests.ui.test_app_real import free_ports, world

_sockets = itertools.count()


def _require_tmux() -> str:
    path = shutil.which("tmux")
    if path is None:
        if os.environ.get("KPORTFORWARD_REQUIRE_KUBECTL") == "1":
            pytest.fail("tmux not found and KPORTFORWARD_REQUIRE_KUBECTL=1")
        pytest.skip("tmux not found")
    return path


class Terminal:
    """One tmux server with one 120x30 session running an argv."""

    def __init__(
        self, tmux: str, workdir: Path, argv: list[str], env: dict[str, str] | None = None
    ) -> None:
        self.tmux = tmux
        self.socket = f"kpf-ui-test-{os.getpid()}-{next(_sockets)}"
        conf = workdir / "tmux.conf"
        conf.write_text("set -g history-limit 100\n")
        env_args = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        self._run(
            "-f", str(conf), "new-session", "-d", "-s", "t", "-x", "120", "-y", "30",
            *env_args, "--", *argv,
        )  # fmt: skip
        self.socket_path = self._run("display", "-p", "-t", "t", "#{socket_path}").strip()
        self.wrapper = int(self._run("list-panes", "-t", "t", "-F", "#{pane_pid}").strip())
        self.pid = self._child()

    def _child(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = psutil.Process(self.wrapper).children()
            if children:
                return children[0].pid
            time.sleep(0.02)
        raise AssertionError("kportforward did not start")

    def _run(self, *args: str) -> str:
        return subprocess.run(
            [self.tmux, "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout

    def screen(self) -> str:
        """The visible pane as text."""
        return self._run("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        """Type keys (tmux key names: Enter, Escape, Down, or literal characters)."""
        for key in keys:
            self._run("send-keys", "-t", "t", key)

    def flags(self) -> dict[str, str]:
        """Terminal modes of the pane: alternate screen, cursor, mouse."""
        names = ("alternate_on", "cursor_flag", "mouse_any_flag")
        out = self._run("display", "-p", "-t", "t", " ".join(f"#{{{n}}}" for n in names))
        return dict(zip(names, out.split(), strict=True))

    def wait_screen(
        self, predicate: Callable[[str], bool], timeout: float = 30, what: str = ""
    ) -> str:
        """Poll the screen until ``predicate(text)``; fail showing the screen."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")
            time.sleep(0.1)

    def kill_server(self) -> None:
        """Close the terminal (the pane's process gets SIGHUP) and remove the server's socket."""
        subprocess.run(
            [self.tmux, "-L", self.socket, "kill-server"], capture_output=True, timeout=10
        )
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)


def kubectls_using(kubeconfig: Path) -> list[psutil.Process]:
    """Live kubectl processes started with our simulator's kubeconfig."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            cmd = proc.info["cmdline"] or []
            if (
                proc.info["status"] != psutil.STATUS_ZOMBIE
                and any("kubectl" in part for part in cmd[:1])
                and str(kubeconfig) in cmd
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until ``predicate()``; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def dashboard(kubectl: str, tmp_path: Path) -> Iterator[Callable[[], tuple[Terminal, Simulator]]]:
    """Start ``kportforward --config ... --kubeconfig <sim>`` in a fresh tmux server."""
    tmux = _require_tmux()
    started: list[tuple[Terminal, Simulator]] = []

    def start() -> tuple[Terminal, Simulator]:
        sim = Simulator(world())
        sim.start_in_thread()
        web, api = free_ports(2)
        config = tmp_path / f"config-{len(started)}.yaml"
        config.write_text(
            "portForwards:\n"
            f"  web:\n    target: service/web\n    targetPort: 80\n    localPort: {web}\n"
            "    type: web\n"
            f"  api:\n    target: service/api\n    targetPort: 80\n    localPort: {api}\n"
            "    namespace: payments\n    type: rest\n"
            "uiOptions:\n  refreshRate: 100ms\n"
        )
        argv = [
            sys.executable,
            str(Path(__file__).with_name("run_in_terminal.py")),
            sys.executable,
            "-m",
            "kportforward",
            "--config",
            str(config),
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "--kubectl",
            kubectl,
        ]
        term = Terminal(tmux, tmp_path, argv)
        started.append((term, sim))
        return term, sim

    yield start
    for term, sim in started:
        term.kill_server()
        for pid in (term.pid, term.wrapper):  # only processes this test started
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
        for proc in kubectls_using(sim.kubeconfig_path):  # type: ignore[arg-type]
            proc.kill()
        sim.stop_in_thread()


def test_a_person_uses_the_dashboard_and_quits(dashboard) -> None:
    term, sim = dashboard()
    screen = term.wait_screen(lambda s: "2/2 running" in s, what="both forwards Running")
    assert "● Running" in screen and "web" in screen and "api" in screen
    assert len(kubectls_using(sim.kubeconfig_path)) == 2
    term.keys("Down", "Enter")  # api is first by name, web second
    screen = term.wait_screen(lambda s: "PID" in s and "service/web" in s, what="details")
    # A terminal cannot tell a lone Esc from the start of an escape sequence until a moment
    # passes, so after Esc the test waits for the screen to change, as a person would.
    term.keys("Escape")
    term.wait_screen(lambda s: "NAME" in s and "PID" not in s, what="back to the table")
    term.keys("?")
    term.wait_screen(lambda s: "Keys" in s and "restart the selected forward" in s, what="help")
    term.keys("Escape")
    term.wait_screen(lambda s: "Keys" not in s, what="help closed")
    term.keys("/")
    term.wait_screen(lambda s: "filter: name, namespace" in s, what="the filter box")
    term.keys(*"payments")
    screen = term.wait_screen(lambda s: " web " not in s, what="web filtered out")
    assert " api " in screen
    term.keys("Escape")
    term.wait_screen(lambda s: " web " in s, what="filter cleared")
    term.keys("q")
    term.wait_screen(lambda s: "EXIT=0" in s and "TTY=restored" in s, what="exit status 0")
    flags = term.flags()
    assert flags["alternate_on"] == "0" and flags["cursor_flag"] == "1"
    assert flags["mouse_any_flag"] == "0"
    assert kubectls_using(sim.kubeconfig_path) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_quit_cleanly_and_restore_the_terminal(dashboard, signum: int) -> None:
    term, sim = dashboard()
    term.wait_screen(lambda s: "2/2 running" in s, what="both forwards Running")
    os.kill(term.pid, signum)
    took = wait_until(lambda: gone(term.pid), 10, f"exit after {signal.Signals(signum).name}")
    term.wait_screen(lambda s: "EXIT=0" in s and "TTY=restored" in s, what=f"exit 0 ({took:.2f}s)")
    flags = term.flags()
    assert flags["alternate_on"] == "0" and flags["cursor_flag"] == "1", flags
    assert flags["mouse_any_flag"] == "0"
    assert kubectls_using(sim.kubeconfig_path) == []  # type: ignore[arg-type]


def test_closing_the_terminal_stops_every_kubectl(dashboard) -> None:
    term, sim = dashboard()
    term.wait_screen(lambda s: "2/2 running" in s, what="both forwards Running")
    term.kill_server()  # the terminal goes away: SIGHUP, and every write now fails
    wait_until(lambda: gone(term.pid), 10, "exit after the terminal closed")
    wait_until(lambda: not kubectls_using(sim.kubeconfig_path), 5, "no kubectl left")  # type: ignore[arg-type]
