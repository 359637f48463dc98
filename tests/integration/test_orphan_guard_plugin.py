"""An exec credential plugin must not outlive a SIGKILLed manager either: kube/client.py registers
it with the orphan guard. Without the watchdog (the control) it survives, so this can fail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

# A manager that asks a credential plugin for a token in a worker thread (as the kube client does);
# the plugin writes its pid to a file and then hangs, like one waiting for a browser login.
_MANAGER = textwrap.dedent(
    """
    import sys, threading, time
    from kportforward.kube.execplugin import run_exec_plugin as _run_exec_plugin
    plugin = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    cfg = {"command": sys.executable, "args": ["-c", plugin, sys.argv[1]]}
    threading.Thread(
        target=_run_exec_plugin, args=(cfg, "", "u", "kubeconfig", time.monotonic() + 60),
        daemon=True,
    ).start()
    time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _plugin_pid(pidfile: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text():
            return int(pidfile.read_text())
        time.sleep(0.02)
    raise AssertionError("the plugin never started")


@pytest.mark.parametrize("watchdog", [True, False], ids=["guarded", "control"])
def test_a_hanging_credential_plugin_dies_with_its_manager(tmp_path, monkeypatch, watchdog):
    monkeypatch.setenv("KPORTFORWARD_NO_PDEATHSIG", "1")
    if watchdog:
        monkeypatch.delenv("KPORTFORWARD_NO_WATCHDOG", raising=False)
    else:
        monkeypatch.setenv("KPORTFORWARD_NO_WATCHDOG", "1")
    pidfile = tmp_path / "plugin.pid"
    manager = subprocess.Popen([sys.executable, "-c", _MANAGER, str(pidfile)], env=dict(os.environ))
    plugin = None
    try:
        plugin = _plugin_pid(pidfile)
        time.sleep(0.2)  # registered right after Popen returned in the manager's thread
        manager.kill()
        manager.wait(10)
        deadline = time.monotonic() + (1.0 if watchdog else 1.5)
        while _alive(plugin) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _alive(plugin) is not watchdog
    finally:
        if manager.poll() is None:
            manager.kill()
            manager.wait(10)
        if plugin is not None and _alive(plugin):
            os.kill(plugin, signal.SIGKILL)  # the plugin our manager started
