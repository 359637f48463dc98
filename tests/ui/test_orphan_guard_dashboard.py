"""The portable orphan guard under the real dashboard: SIGKILL it with Linux's parent-death signal
turned off (as on macOS), and the watchdog must take every kubectl down within 1 s.

The ``run`` variant, the control run that shows the kubectls survive without the watchdog, and
the registered non-kubectl children are in tests/integration/test_orphan_guard.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil
import pytest

from tests.ui.test_tmux import dashboard, gone, kubectls_using  # noqa: F401 - the fixture

GONE_WITHIN = 1.0


def _watchdogs_of(pid: int) -> list[psutil.Process]:
    found = []
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                if any(part.endswith("watchdog.py") for part in child.cmdline()):
                    found.append(child)
    return found


def test_sigkilled_dashboard_without_pdeathsig_leaves_no_kubectl(
    dashboard,  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KPORTFORWARD_NO_PDEATHSIG", "1")  # the tmux server passes it on
    monkeypatch.delenv("KPORTFORWARD_NO_WATCHDOG", raising=False)
    term, sim = dashboard()
    term.wait_screen(lambda s: "2/2 running" in s, what="both forwards Running")
    pids = [p.pid for p in kubectls_using(sim.kubeconfig_path)]
    assert len(pids) == 2
    assert psutil.Process(term.pid).environ().get("KPORTFORWARD_NO_PDEATHSIG") == "1"
    assert len(_watchdogs_of(term.pid)) == 1
    os.kill(term.pid, signal.SIGKILL)
    deadline = time.monotonic() + GONE_WITHIN
    while (left := [p for p in pids if not gone(p)]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert left == [], "kubectl outlived the SIGKILLed dashboard"
