"""Reclaiming a port from a real, orphaned ``kubectl port-forward`` — and leaving everything else.

Each kubectl here is started by an intermediate Python process (in its own session, output to a
file) that then exits, so kubectl is reparented exactly as it would be after a kportforward crash.
Every kubectl started is killed at teardown by pid, whatever the test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from kportforward.core.conflicts import resolve_conflicts
from kportforward.core.models import ForwardSpec
from kportforward.core.ports import PortChecker, probe_port
from kportforward.owned import owner_gone, pid_namespace, start_time
from kportforward.sim import Simulator
from kportforward.supervisor.reclaim import (
    FORWARD_ENV,
    OWNER_ENV,
    OWNER_PIDNS_ENV,
    OWNER_START_ENV,
    find_stale_kubectl,
    owner_marker,
    reclaim_stale_kubectl,
)

from .conftest import echo_through, small_world

# Starts kubectl with extra env ("{self}", "{start}", "{pidns}" become the intermediate's pid,
# start time and PID namespace), prints kubectl's pid, then either exits at once ("exit") or waits
# for its stdin to close ("stay").
_SPAWNER = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from kportforward.owned import me
    argv, log, mode = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    extra = json.loads(sys.argv[4])
    env = dict(os.environ)
    ident = me()
    for k, v in extra.items():
        v = v.replace("{self}", str(ident.pid)).replace("{start}", ident.start)
        env[k] = v.replace("{pidns}", ident.pidns)
    with open(log, "w") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=env, start_new_session=True)
    print(p.pid, flush=True)
    if mode == "stay":
        sys.stdin.read()
    """
)


def _wait_for(cond: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Spawned:
    """One kubectl started through an intermediate process, and that intermediate."""

    def __init__(self, kubectl: psutil.Process, parent: subprocess.Popen, port: int, log: Path):
        self.kubectl = kubectl
        self.parent = parent
        self.port = port
        self.log = log

    def alive(self) -> bool:
        """True while this very kubectl runs (psutil checks the start time against pid reuse)."""
        try:
            return self.kubectl.is_running() and self.kubectl.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def release_parent(self) -> None:
        """Let a ``stay`` intermediate exit, orphaning kubectl."""
        if self.parent.stdin:
            self.parent.stdin.close()
        self.parent.wait(30)
        _wait_for(lambda: self.kubectl.ppid() != self.parent.pid, "kubectl to be reparented")


@pytest.fixture
def echo_sim(sim_factory) -> Simulator:
    return sim_factory(small_world())


@pytest.fixture
def spawn(kubectl: str, echo_sim: Simulator, tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    """``spawn(marker: dict, mode="exit")`` → a forwarding kubectl on a fresh local port."""
    started: list[Spawned] = []

    def start(marker: dict[str, str], mode: str = "exit") -> Spawned:
        port = _free_port()
        argv = [
            kubectl, "port-forward", "--address", "127.0.0.1",
            "--kubeconfig", str(echo_sim.kubeconfig_path),
            "-n", "default", "service/echo", f"{port}:7000",
        ]  # fmt: skip
        log = tmp_path / f"kubectl-{port}.log"
        parent = subprocess.Popen(
            [sys.executable, "-c", _SPAWNER, json.dumps(argv), str(log), mode, json.dumps(marker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        spawned = Spawned(psutil.Process(pid), parent, port, log)
        started.append(spawned)
        _wait_for(
            lambda: "Forwarding from 127.0.0.1" in log.read_text() or not spawned.alive(),
            "kubectl to forward",
        )
        assert spawned.alive(), log.read_text()
        if mode == "exit":
            parent.wait(30)
            _wait_for(lambda: spawned.kubectl.ppid() != parent.pid, "kubectl to be reparented")
        return spawned

    yield start
    for s in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            if s.alive():
                s.kubectl.kill()  # this pid is a kubectl this test started (start time checked)
        with contextlib.suppress(Exception):
            if s.parent.stdin:
                s.parent.stdin.close()
        if s.parent.poll() is None:
            s.parent.kill()
        s.parent.wait(10)
        if s.parent.stdout:
            s.parent.stdout.close()


OURS = {
    OWNER_ENV: "{self}",
    OWNER_START_ENV: "{start}",
    OWNER_PIDNS_ENV: "{pidns}",
    FORWARD_ENV: "api",
}


def test_an_orphaned_kubectl_of_ours_is_reclaimed(spawn):
    s = spawn(OURS)
    assert echo_through(s.port, b"still forwarding") == b"still forwarding"
    assert s.kubectl.ppid() != s.parent.pid
    assert not psutil.pid_exists(s.parent.pid) or s.parent.poll() is not None

    found = find_stale_kubectl(s.port, forward_name="api")
    assert found is not None and found.pid == s.kubectl.pid
    message = reclaim_stale_kubectl(s.port, forward_name="api")
    assert message is not None
    assert message.startswith(f"stopped kubectl port-forward (pid {s.kubectl.pid}) for api")
    assert f"owner pid {s.parent.pid} is gone" in message and f"127.0.0.1:{s.port}" in message
    assert not s.alive()
    _wait_for(lambda: probe_port(s.port).available, "the port to be free again")


def test_the_reclaimed_port_lets_the_forward_keep_its_configured_port(spawn):
    s = spawn(OURS)
    spec = ForwardSpec("api", "service/echo", 7000, s.port)
    checker = PortChecker()
    assert not checker.is_available(s.port)
    assert reclaim_stale_kubectl(s.port, forward_name="api") is not None
    checker.invalidate(s.port)
    _wait_for(lambda: probe_port(s.port).available, "the port to be free again")
    res = resolve_conflicts([spec], checker)
    assert res.ports["api"] == s.port and not res.moves


def test_a_kubectl_without_the_marker_is_never_touched(spawn):
    s = spawn({})
    assert find_stale_kubectl(s.port) is None
    assert reclaim_stale_kubectl(s.port) is None
    assert reclaim_stale_kubectl(s.port, forward_name="api") is None
    # The resolver moves our forward instead, naming the holder.
    res = resolve_conflicts([ForwardSpec("api", "service/echo", 7000, s.port)], PortChecker())
    assert res.ports["api"] != s.port
    assert f"(pid {s.kubectl.pid}); api moved to" in res.moves["api"].reason
    assert s.alive()
    assert echo_through(s.port, b"untouched") == b"untouched"


def test_a_kubectl_for_another_forward_is_left_alone(spawn):
    s = spawn({**OURS, FORWARD_ENV: "web"})
    assert reclaim_stale_kubectl(s.port, forward_name="api") is None
    assert s.alive()


def test_a_kubectl_whose_owner_is_alive_is_left_alone(spawn):
    s = spawn(OURS, mode="stay")  # the owner (its parent) is still running
    assert find_stale_kubectl(s.port, forward_name="api") is None
    assert reclaim_stale_kubectl(s.port, forward_name="api") is None
    assert s.alive()
    s.release_parent()  # now the owner is gone: the same kubectl becomes reclaimable
    assert reclaim_stale_kubectl(s.port, forward_name="api") is not None
    assert not s.alive()


def test_an_orphan_whose_owner_pid_is_a_live_kportforward_is_left_alone(spawn):
    # Orphaned, but the marker names this test process: a live owner, never robbed.
    s = spawn({**owner_marker(), FORWARD_ENV: "api"})
    assert s.kubectl.ppid() != os.getpid()
    assert reclaim_stale_kubectl(s.port, forward_name="api") is None
    assert s.alive()


def test_a_marker_on_the_wrong_port_is_not_enough(spawn):
    s = spawn(OURS)
    assert reclaim_stale_kubectl(s.port + 1 if s.port < 65535 else s.port - 1) is None
    assert s.alive()


def test_an_owner_pid_now_held_by_another_process_counts_as_gone():
    """Pid reuse: the marker records the owner's start time, so a process that holds the pid but
    started at another time is someone else, and the owner is gone."""
    ns = pid_namespace()
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)  # fmt: skip
    try:
        real = start_time(other.pid)
        assert real is not None
        assert owner_gone(other.pid, real, ns) is False  # alive, same start: the owner
        assert owner_gone(other.pid, str(int(real) + 1), ns) is True  # same pid, another start
        assert owner_gone(other.pid, real, "pid:[1]") is False  # another namespace: cannot tell
        assert owner_gone(other.pid, "", ns) is False  # an old marker: never trusted
        assert owner_gone(os.getpid(), start_time(os.getpid()) or "", ns) is False  # ourselves
    finally:
        other.kill()
        other.wait(10)
        if other.stdin:
            other.stdin.close()
    assert owner_gone(other.pid, real, ns) is True  # no such process any more


def test_a_marker_without_the_owner_start_time_is_not_trusted(spawn):
    s = spawn({OWNER_ENV: "{self}", FORWARD_ENV: "api"})  # the format before start times
    assert reclaim_stale_kubectl(s.port, forward_name="api") is None
    assert s.alive()
