"""The portable orphan guard (the watchdog), proven on Linux with the parent-death signal off.

``KPORTFORWARD_NO_PDEATHSIG=1`` takes away Linux's own guarantee, so what is left is exactly what
macOS has: the watchdog. SIGKILL of the manager must then take every kubectl, and any other child
registered with the guard, down within 1 s (a behaviour bound, polled with a deadline). A control
run with the watchdog off too shows the kubectls survive — so these tests can fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from kportforward.platform.guard import watchdog_argv
from kportforward.sim import generated_world
from tests.integration.supervisor_helpers import kubectls_of
from tests.integration.test_run_cmd import Run, running, write_config

pytestmark = pytest.mark.integration

GONE_WITHIN = 1.0
"""The bound the issue sets: every child gone within 1 s of the manager's SIGKILL."""


def _alive(pids: list[int]) -> list[int]:
    left = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
    return left


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return left


def _watchdogs_of(pid: int) -> list[psutil.Process]:
    found = []
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                if any(part.endswith("watchdog.py") for part in child.cmdline()):
                    found.append(child)
    return found


def _kill_ours(pids: list[int]) -> None:
    for pid in _alive(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


def _start_run(sim, tmp_path: Path, n: int = 3) -> Run:
    """``kportforward run --json`` over ``n`` forwards, with this test's environment."""
    config = tmp_path / "kpf.yaml"
    write_config(config, n)
    return Run("--json", "--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Undo any environment change a test makes for its ``kportforward run``."""
    for name in ("KPORTFORWARD_NO_PDEATHSIG", "KPORTFORWARD_NO_WATCHDOG"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_sigkilled_run_without_pdeathsig_leaves_no_kubectl(
    kubectl, sim_factory, tmp_path, clean_env
):
    sim = sim_factory(generated_world(3))
    clean_env.setenv("KPORTFORWARD_NO_PDEATHSIG", "1")
    run = _start_run(sim, tmp_path)
    pids: list[int] = []
    try:
        run.wait_for(running(3))
        pids = [p.pid for p in kubectls_of(run.proc.pid)]
        assert len(pids) == 3
        # No setpriv wrapper was used: kubectl's parent-death signal is really off.
        assert all("setpriv" not in " ".join(psutil.Process(p).cmdline()) for p in pids)
        assert len(_watchdogs_of(run.proc.pid)) == 1, "one watchdog per manager"
        run.proc.kill()
        assert _wait_gone(pids, GONE_WITHIN) == []
    finally:
        run.kill()
        _kill_ours(pids)


def test_control_without_pdeathsig_or_watchdog_the_kubectls_survive(
    kubectl, sim_factory, tmp_path, clean_env
):
    sim = sim_factory(generated_world(2))
    clean_env.setenv("KPORTFORWARD_NO_PDEATHSIG", "1")
    clean_env.setenv("KPORTFORWARD_NO_WATCHDOG", "1")
    run = _start_run(sim, tmp_path, n=2)
    pids: list[int] = []
    try:
        run.wait_for(running(2))
        pids = [p.pid for p in kubectls_of(run.proc.pid)]
        assert len(pids) == 2 and _watchdogs_of(run.proc.pid) == []
        run.proc.kill()
        run.finish()
        time.sleep(GONE_WITHIN + 0.5)
        assert sorted(_alive(pids)) == sorted(pids), "nothing else may be what kills them"
    finally:
        run.kill()
        _kill_ours(pids)  # we started them (through the manager we started)


# A stand-in manager: registers a credential-plugin-like child (a process group of two sleeps)
# and a grpcui-like child (one sleep, no group) with the default guard, prints their pids, waits.
_MANAGER = textwrap.dedent(
    """
    import subprocess, sys, time
    from kportforward.platform.guard import default_guard
    guard = default_guard()
    plugin = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60"], start_new_session=True)
    grpcui = subprocess.Popen(["sleep", "60"])
    guard.register(plugin.pid, group=True, label="credential-plugin")
    guard.register(grpcui.pid, group=False, label="grpcui")
    time.sleep(0.2)  # sh has started its background sleep
    import psutil
    kids = [c.pid for c in psutil.Process(plugin.pid).children()]
    print(plugin.pid, grpcui.pid, *kids, guard.watchdog_pid, flush=True)
    time.sleep(60)
    """
)


def test_sigkilled_manager_takes_registered_children_down(clean_env):
    clean_env.setenv("KPORTFORWARD_NO_PDEATHSIG", "1")
    manager = subprocess.Popen(
        [sys.executable, "-c", _MANAGER], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    pids: list[int] = []
    try:
        assert manager.stdout is not None
        fields = [int(x) for x in manager.stdout.readline().split()]
        *pids, watchdog = fields
        assert len(pids) >= 3, "the plugin (sh), the sleeps it started, and grpcui"
        assert _alive(pids) == pids and _alive([watchdog]) == [watchdog]
        manager.kill()
        manager.wait(10)
        assert _wait_gone(pids, GONE_WITHIN) == []
        assert _wait_gone([watchdog], 5) == [], "the watchdog exits once its work is done"
    finally:
        if manager.poll() is None:
            manager.kill()
            manager.wait(10)
        _kill_ours(pids)


def _watchdog() -> subprocess.Popen[bytes]:
    return subprocess.Popen(watchdog_argv(grace=0.2), stdin=subprocess.PIPE, start_new_session=True)


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_the_watchdog_never_kills_a_reused_pid():
    """A registration whose start time does not match the process now holding that pid (pid
    reuse) is left alone; the matching one is killed."""
    reused, ours = _sleeper(), _sleeper()
    dog = _watchdog()
    try:
        start = psutil.Process(ours.pid).create_time()
        stale = psutil.Process(reused.pid).create_time() - 30  # "started before": another process
        assert dog.stdin is not None
        dog.stdin.write(f"+ {reused.pid} {reused.pid} {stale!r} old\n".encode())
        dog.stdin.write(f"+ {ours.pid} {ours.pid} {start!r} ours\n".encode())
        dog.stdin.close()
        assert dog.wait(10) == 0
        assert ours.wait(5) == -signal.SIGTERM
        assert reused.poll() is None, "a process we did not register was killed"
    finally:
        for p in (reused, ours, dog):
            if p.poll() is None:
                p.kill()
            p.wait(10)


def test_the_watchdog_forgets_unregistered_children_and_kills_stubborn_ones():
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
         "print(1, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    forgotten = _sleeper()
    dog = _watchdog()
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline()  # SIGTERM ignored now
        assert dog.stdin is not None
        for p in (stubborn, forgotten):
            start = psutil.Process(p.pid).create_time()
            dog.stdin.write(f"+ {p.pid} {p.pid} {start!r} x\n".encode())
        dog.stdin.write(f"- {forgotten.pid}\n".encode())
        dog.stdin.close()
        assert dog.wait(10) == 0
        assert stubborn.wait(5) == -signal.SIGKILL, "SIGTERM ignored, so SIGKILL after the grace"
        assert forgotten.poll() is None, "an unregistered child is not the watchdog's business"
    finally:
        for p in (stubborn, forgotten, dog):
            if p.poll() is None:
                p.kill()
            p.wait(10)
        if stubborn.stdout:
            stubborn.stdout.close()
