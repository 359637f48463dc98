"""Reclaim stops only a kubectl that is provably ours (issue #18, item 7).

- Another PID namespace (a container, a sandbox): its kubectl's owner pid means nothing here. The
  test runs a real kubectl, orphaned by a dead "kportforward", inside ``unshare --pid --fork
  --mount-proc``; from the host it is left alone, while a reclaim run *inside* that namespace stops
  the very same kubectl (so the marker itself is fine and the namespace rule is what protects it).
  CI runs as root, so this runs there; it must not skip.
- A process merely *named* kubectl, with the markers, is left alone; the same process is stopped
  when it really is the kubectl we would run (``kubectl=``), so the executable check is what
  protects it.
- A marked kubectl whose owner is gone but whose real parent is alive is left alone until that
  parent exits too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from kportforward.owned import pid_namespace, start_time
from kportforward.sim import Simulator
from kportforward.supervisor.reclaim import (
    FORWARD_ENV,
    OWNER_ENV,
    OWNER_PIDNS_ENV,
    OWNER_START_ENV,
    find_stale_kubectl,
    reclaim_stale_kubectl,
)

from .conftest import echo_through, small_world

pytestmark = pytest.mark.integration

# Starts ARGV with our owner marker (or the one given) in its own session, prints its pid; then
# exits ("exit"), orphaning it, or waits for stdin to close ("stay").
_SPAWN = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from kportforward.supervisor.reclaim import FORWARD_ENV, owner_marker
    argv, log, mode, marker = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    env = {**os.environ, **(json.loads(marker) or owner_marker()), FORWARD_ENV: "api"}
    with open(log, "w") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=env, start_new_session=True)
    print(p.pid, flush=True)
    if mode == "stay":
        sys.stdin.read()
    """
)

# PID 1 of a new PID namespace: orphans kubectl through _SPAWN, reaps, and runs reclaim on request.
_NS_INIT = textwrap.dedent(
    """
    import json, os, subprocess, sys
    spawn, argv, log = sys.argv[1], sys.argv[2], sys.argv[3]
    inter = subprocess.Popen([sys.executable, "-c", spawn, argv, log, "exit", "null"],
                             stdout=subprocess.PIPE, text=True)
    kubectl = int(inter.stdout.readline())
    inter.wait()
    print(json.dumps({"pid": kubectl, "pidns": os.readlink("/proc/self/ns/pid")}), flush=True)
    for line in sys.stdin:
        from kportforward.supervisor.reclaim import reclaim_stale_kubectl
        port = json.loads(line)["reclaim"]
        print(json.dumps({"message": reclaim_stale_kubectl(port, forward_name="api")}), flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(cond: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _listener(port: int) -> psutil.Process:
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            return psutil.Process(c.pid)
    raise AssertionError(f"nothing listens on {port}")


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def echo_sim(sim_factory) -> Simulator:
    return sim_factory(small_world())


def _kubectl_argv(kubectl: str, sim: Simulator, port: int) -> list[str]:
    return [kubectl, "port-forward", "--address", "127.0.0.1", "--kubeconfig",
            str(sim.kubeconfig_path), "-n", "default", "service/echo", f"{port}:7000"]  # fmt: skip


def test_a_kubectl_in_another_pid_namespace_is_left_alone(kubectl, echo_sim, tmp_path) -> None:
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux unshare is required (CI runs as root)"
    port = _free_port()
    log = tmp_path / "kubectl.log"
    ns = subprocess.Popen(
        [unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-c", _NS_INIT, _SPAWN,
         json.dumps(_kubectl_argv(kubectl, echo_sim, port)), str(log)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert ns.stdin is not None and ns.stdout is not None
    try:
        inside = json.loads(ns.stdout.readline())
        _wait_for(lambda: "Forwarding from 127.0.0.1" in log.read_text(), "kubectl to forward")
        proc = _listener(port)
        assert pid_namespace(proc.pid) == inside["pidns"] != pid_namespace()
        env = proc.environ()
        assert env[OWNER_PIDNS_ENV] == inside["pidns"] and env[FORWARD_ENV] == "api"
        # From here: its owner pid is relative to another namespace. Never touched.
        assert find_stale_kubectl(port, forward_name="api") is None
        assert reclaim_stale_kubectl(port, forward_name="api") is None
        assert _alive(proc)
        assert echo_through(port, b"still theirs") == b"still theirs"
        # Inside its own namespace the same kubectl is provably an orphan of a dead owner.
        ns.stdin.write(json.dumps({"reclaim": port}) + "\n")
        ns.stdin.flush()
        message = json.loads(ns.stdout.readline())["message"]
        assert message and message.startswith(f"stopped kubectl port-forward (pid {inside['pid']})")
        _wait_for(lambda: not _alive(proc), "the reclaimed kubectl to be gone")
    finally:
        with contextlib.suppress(Exception):
            ns.stdin.close()
        ns.wait(15)  # pid 1 exits: the kernel kills everything left in its namespace
        ns.stdout.close()


class Spawned:
    """A process started through an intermediate, and that intermediate."""

    def __init__(self, proc: psutil.Process, parent: subprocess.Popen) -> None:
        self.proc, self.parent = proc, parent

    def release(self) -> None:
        assert self.parent.stdin is not None
        self.parent.stdin.close()
        self.parent.wait(30)
        _wait_for(lambda: self.proc.ppid() != self.parent.pid, "reparenting")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    started: list[Spawned] = []

    def start(argv: list[str], mode: str, marker: dict[str, str] | None = None) -> Spawned:
        log = tmp_path / f"spawned-{len(started)}.log"
        parent = subprocess.Popen(
            [sys.executable, "-c", _SPAWN, json.dumps(argv), str(log), mode, json.dumps(marker)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert parent.stdout is not None
        spawned = Spawned(psutil.Process(int(parent.stdout.readline())), parent)
        started.append(spawned)
        _wait_for(lambda: "Forwarding from" in log.read_text() or not _alive(spawned.proc), "ready")
        assert _alive(spawned.proc), log.read_text()
        if mode == "exit":
            parent.wait(30)
            _wait_for(lambda: spawned.proc.ppid() != parent.pid, "reparenting")
        return spawned

    yield start
    for s in started:
        if _alive(s.proc):
            s.proc.kill()  # psutil checks the start time: the very process this test started
        if s.parent.poll() is None:
            s.parent.kill()
        s.parent.wait(10)
        for stream in (s.parent.stdin, s.parent.stdout):
            if stream:
                with contextlib.suppress(Exception):
                    stream.close()


_FAKE = textwrap.dedent(
    """
    import socket, sys, time
    local = int(sys.argv[-1].split(":")[0])
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", local)); s.listen(8)
    print(f"Forwarding from 127.0.0.1:{local} -> 80", flush=True)
    time.sleep(300)
    """
)


def test_a_process_merely_named_kubectl_is_left_alone(spawn, tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.symlink_to(sys.executable)  # argv[0] says kubectl; the executable is Python
    port = _free_port()
    s = spawn([str(fake), "-c", _FAKE, "port-forward", f"{port}:80"], "exit")
    assert os.path.basename(s.proc.cmdline()[0]) == "kubectl"
    assert s.proc.environ()[FORWARD_ENV] == "api"  # every marker is there, owner gone
    assert reclaim_stale_kubectl(port, forward_name="api") is None
    assert _alive(s.proc)
    # Had it been the kubectl we run, every other rule holds: it would be stopped.
    assert reclaim_stale_kubectl(port, forward_name="api", kubectl=str(fake)) is not None
    _wait_for(lambda: not _alive(s.proc), "the process to be gone")


def test_a_marked_kubectl_whose_real_parent_lives_is_left_alone(kubectl, echo_sim, spawn) -> None:
    dead = subprocess.Popen(["true"])
    dead_start = start_time(dead.pid) or ""  # readable while it is an unreaped zombie
    dead.wait()
    forged = {OWNER_ENV: str(dead.pid), OWNER_START_ENV: dead_start,
              OWNER_PIDNS_ENV: pid_namespace()}  # fmt: skip
    port = _free_port()
    s = spawn(_kubectl_argv(kubectl, echo_sim, port), "stay", forged)
    assert s.proc.ppid() == s.parent.pid  # its real parent is alive
    assert reclaim_stale_kubectl(port, forward_name="api") is None
    assert _alive(s.proc)
    s.release()  # now nobody holds it: an orphan of a dead owner, ours to stop
    assert reclaim_stale_kubectl(port, forward_name="api") is not None
    _wait_for(lambda: not _alive(s.proc), "kubectl to be gone")
