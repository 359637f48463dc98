"""The manager side of the orphan guard, and KubectlProcess driven through an injected platform.

Real processes throughout (``sleep`` children, a real watchdog, a Python stand-in for kubectl);
the only thing injected is which platform's stop plan and OS calls KubectlProcess follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from kportforward.platform import SpawnOptions, for_name
from kportforward.platform.base import Env
from kportforward.platform.guard import OrphanGuard
from kportforward.platform.windows import WindowsPlatform
from kportforward.supervisor.kubectl import KubectlProcess


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def children():
    made: list[subprocess.Popen[bytes]] = []

    def make() -> subprocess.Popen[bytes]:
        made.append(_sleeper())
        return made[-1]

    yield make
    for p in made:
        if p.poll() is None:
            p.kill()
        p.wait(10)


@pytest.fixture
def guard():
    g = OrphanGuard(for_name("linux"), env={}, grace=0.2)
    yield g
    g.close()


def test_the_watchdog_runs_only_while_children_are_registered(guard, children):
    assert guard.watchdog_pid is None
    child = children()
    assert guard.register(child.pid, label="a")
    dog = guard.watchdog_pid
    assert dog is not None and guard.children == [child.pid]
    guard.unregister(child.pid)
    assert guard.watchdog_pid is None
    assert _gone(dog), "an idle guard leaves no process behind"
    assert child.poll() is None, "an unregistered child is not stopped"
    assert guard.register(children().pid) and guard.starts == 2


def test_a_killed_watchdog_is_replaced_and_told_every_child(guard, children):
    a, b, c = children(), children(), children()
    guard.register(a.pid)
    guard.register(b.pid)
    first = guard.watchdog_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)  # we started it (through the guard)
    assert _gone(first)
    assert guard.register(c.pid)
    second = guard.watchdog_pid
    assert second is not None and second != first and guard.starts == 2
    guard.close()  # the pipe closes with children still registered: the watchdog stops them all
    for p in (a, b, c):
        assert p.wait(5) == -signal.SIGTERM
    assert _gone(second)


def test_a_child_already_gone_is_not_registered(guard):
    p = subprocess.Popen(["true"])
    p.wait(5)
    assert not guard.register(p.pid)
    assert guard.watchdog_pid is None


def test_the_switch_turns_the_watchdog_off(children):
    g = OrphanGuard(for_name("linux"), env={"KPORTFORWARD_NO_WATCHDOG": "1"})
    assert not g.register(children().pid)
    assert g.watchdog_pid is None and "watchdog off" in g.describe()


STUBBORN_KUBECTL = r"""
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("Forwarding from 127.0.0.1:5555 -> 80", flush=True)
time.sleep(60)
"""


class WindowsOpsOnLinux:
    """Windows's two OS calls, recorded, and carried out with what Linux has so the real child
    really ends: the break event is ignored by the stand-in (it ignores SIGINT), terminate
    SIGKILLs it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, float]] = []

    def ctrl_break(self, pid: int) -> None:
        self.calls.append(("ctrl_break", pid, time.monotonic()))
        os.kill(pid, signal.SIGINT)

    def terminate_tree(self, pid: int) -> None:
        self.calls.append(("terminate_tree", pid, time.monotonic()))
        os.kill(pid, signal.SIGKILL)


class WindowsStopOnLinux(WindowsPlatform):
    """Windows's stop plan and OS calls; the spawn must be Linux's (Popen refuses
    ``creationflags`` here), which the spawn-options tests cover separately."""

    def spawn_options(self, argv: list[str], env: Env | None = None) -> SpawnOptions:
        return for_name("darwin").spawn_options(argv, env)


async def test_kubectl_stop_follows_the_windows_plan(tmp_path, guard):
    script = tmp_path / "kubectl.py"
    script.write_text(STUBBORN_KUBECTL)
    ops = WindowsOpsOnLinux()
    win = WindowsStopOnLinux(ops)
    proc = await KubectlProcess.spawn(
        [sys.executable, str(script)], forward="api", platform=win, guard=guard
    )
    await asyncio.wait_for(proc.ready.wait(), 10)
    assert guard.children == [proc.pid]
    code = await asyncio.wait_for(proc.stop(0.3, 5.0), 10)
    assert [c[:2] for c in ops.calls] == [("ctrl_break", proc.pid), ("terminate_tree", proc.pid)]
    assert ops.calls[1][2] - ops.calls[0][2] >= 0.25, "the break event is given its wait"
    assert code == -signal.SIGKILL
    assert guard.children == [] and guard.watchdog_pid is None


async def test_kubectl_kill_is_the_plans_forced_step(tmp_path, guard):
    script = tmp_path / "kubectl.py"
    script.write_text(STUBBORN_KUBECTL)
    ops = WindowsOpsOnLinux()
    proc = await KubectlProcess.spawn(
        [sys.executable, str(script)], forward="api", platform=WindowsStopOnLinux(ops), guard=guard
    )
    await asyncio.wait_for(proc.ready.wait(), 10)
    proc.kill()
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
    assert [c[0] for c in ops.calls] == ["terminate_tree"]
    proc.kill()  # after the exit: nothing more is sent
    assert len(ops.calls) == 1


async def test_kubectl_is_registered_with_its_group_and_forgotten_on_exit(tmp_path, guard):
    script = tmp_path / "kubectl.py"
    script.write_text("import time; print('Forwarding from 127.0.0.1:1 -> 1', flush=True)\n"
                      "time.sleep(60)\n")  # fmt: skip
    proc = await KubectlProcess.spawn([sys.executable, str(script)], forward="db", guard=guard)
    await asyncio.wait_for(proc.ready.wait(), 10)
    assert proc.pid is not None and guard.children == [proc.pid]
    assert os.getpgid(proc.pid) == proc.pid, "its own group, which the watchdog signals"
    dog = guard.watchdog_pid
    assert dog is not None
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(dog).ppid() == os.getpid()
    assert await asyncio.wait_for(proc.stop(2.0, 1.0), 10) == -signal.SIGINT
    assert guard.children == []
    assert _gone(dog)


def test_a_watchdog_lost_between_registrations_is_replaced_on_the_next_unregister(guard, children):
    a, b = children(), children()
    guard.register(a.pid)
    guard.register(b.pid)
    first = guard.watchdog_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert _gone(first)
    guard.unregister(a.pid)  # b is still running: it must be guarded again
    assert guard.watchdog_pid not in (None, first) and guard.starts == 2
    guard.close()
    assert b.wait(5) == -signal.SIGTERM
    assert a.poll() is None, "a was unregistered: the new watchdog never heard of it"


def test_a_watchdog_that_cannot_start_is_given_up_after_three_tries(caplog):
    """E.g. psutil missing for this interpreter: it exits with an error at once. The guard must
    not start an interpreter per spawn forever."""

    def broken_popen(argv, **kwargs):
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"], **kwargs)

    g = OrphanGuard(for_name("linux"), env={}, popen=broken_popen, start_time=lambda pid: 1.0)
    try:
        for pid in range(100_001, 100_008):
            g.register(pid)
            deadline = time.monotonic() + 10
            while g._proc is not None and g._proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        assert g.starts == 3
        assert not g.enabled
        assert "exits with code 3 at start" in caplog.text
        assert "watchdog off" in g.describe()
    finally:
        g.close()
