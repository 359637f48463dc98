"""As a person: the dashboard attaches to the ``run`` instance already running on its config.

Same table, no kubectl of its own; ``q`` detaches and says the forwards keep running (they do);
attaching again and pressing ``Q`` stops the instance too.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from kportforward.sim import Simulator, generated_world
from tests.conftest import run_cli
from tests.control_helpers import runtime_dir  # noqa: F401 - autouse fixture
from tests.integration.supervisor_helpers import kubectls_of
from tests.integration.test_control_cli import start_run, stop_run, write_config
from tests.ui.test_tmux import Terminal, _require_tmux, gone

pytestmark = pytest.mark.integration


@pytest.fixture
def sim() -> Any:
    simulator = Simulator(generated_world(2))
    simulator.start_in_thread()
    yield simulator
    simulator.stop_in_thread()


def test_attach_detach_and_stop_the_instance(kubectl, sim, tmp_path):
    tmux = _require_tmux()
    config = tmp_path / "kpf.yaml"
    write_config(config, 2)
    run = start_run(config, sim)
    terms: list[Terminal] = []

    def open_dashboard() -> Terminal:
        argv = [sys.executable, str(Path(__file__).with_name("run_in_terminal.py")),
                sys.executable, "-m", "kportforward", "--config", str(config)]  # fmt: skip
        term = Terminal(tmux, tmp_path, argv)
        terms.append(term)
        return term

    try:
        term = open_dashboard()
        term.wait_screen(lambda s: "2/2 running" in s, what="the instance's forwards")
        assert kubectls_of(term.pid) == []  # attached: the tunnels are the instance's
        assert len(kubectls_of(run.proc.pid)) == 2
        term.keys("q")
        screen = term.wait_screen(lambda s: "EXIT=" in s, what="the dashboard to exit")
        assert "EXIT=0" in screen and "detached" in screen and str(run.proc.pid) in screen
        assert run.proc.poll() is None and len(kubectls_of(run.proc.pid)) == 2
        status = json.loads(run_cli("--config", str(config), "status", "--json").stdout)
        assert [f["state"] for f in status["forwards"]] == ["Running", "Running"]

        again = open_dashboard()
        again.wait_screen(lambda s: "2/2 running" in s, what="attached again")
        again.keys("Q")
        screen = again.wait_screen(lambda s: "EXIT=" in s, what="the dashboard to exit")
        assert "EXIT=0" in screen and "stopped the instance" in screen
        assert run.finish(30) == 0
        assert run_cli("--config", str(config), "status").returncode == 3
    finally:
        for term in terms:
            term.kill_server()
            for pid in (term.pid, term.wrapper):
                if not gone(pid):
                    os.kill(pid, signal.SIGKILL)
        if run.proc.poll() is None:
            stop_run(run)
        run.kill()
        assert psutil.pid_exists(run.proc.pid) is False or gone(run.proc.pid)


def test_the_dashboard_is_the_instance_and_a_client_can_stop_it(kubectl, sim, tmp_path):
    tmux = _require_tmux()
    config = tmp_path / "kpf.yaml"
    write_config(config, 2)
    argv = [sys.executable, str(Path(__file__).with_name("run_in_terminal.py")),
            sys.executable, "-m", "kportforward", "--config", str(config),
            "--kubeconfig", str(sim.kubeconfig_path)]  # fmt: skip
    term = Terminal(tmux, tmp_path, argv)
    try:
        term.wait_screen(lambda s: "2/2 running" in s, what="both forwards Running")
        status = run_cli("--config", str(config), "status", "--json")
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["instance"]["mode"] == "dashboard" and doc["instance"]["pid"] == term.pid
        refused = run_cli("--config", str(config), "--kubeconfig", str(sim.kubeconfig_path), "run")
        assert refused.returncode == 2 and f"pid {term.pid}" in refused.stderr
        assert run_cli("--config", str(config), "stop", "--instance").returncode == 0
        screen = term.wait_screen(lambda s: "EXIT=" in s, what="the dashboard to quit")
        assert "EXIT=0" in screen
        assert kubectls_of(term.pid) == []
        assert run_cli("--config", str(config), "status").returncode == 3
    finally:
        term.kill_server()
        for pid in (term.pid, term.wrapper):
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
