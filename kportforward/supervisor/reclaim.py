"""Reclaiming a port from a ``kubectl port-forward`` that an earlier kportforward left behind.

This is the one place in the program allowed to stop a process it did not start in this run, and it
is deliberately narrow. A process is stopped only when **every** test below holds:

- its command line is ``kubectl … port-forward …`` (the gcloud dispatcher execs ``kubectl.1.NN``,
  keeping the pid, so any ``kubectl*`` executable name counts);
- it listens on exactly one local port, the one asked about, on an overlapping address;
- it belongs to the same user as we do;
- it is the kubectl we would run: its executable (``/proc/PID/exe``) is that kubectl, or a
  ``kubectl.N.NN`` beside it (the gcloud dispatcher's clients) — not merely a program so named;
- it runs in our PID namespace (its pid and its owner's pid mean what they say here);
- its environment carries the marker every kubectl we spawn gets (``owner_marker()``):
  ``KPORTFORWARD_OWNER_PID``, ``KPORTFORWARD_OWNER_START`` (the owner's start time) and
  ``KPORTFORWARD_OWNER_PIDNS`` (the owner's PID namespace, which must be ours), plus
  ``KPORTFORWARD_FORWARD`` (the forward's name, which must equal ``forward_name`` when given);
- that owner is provably gone (``owned.owner_gone``): no process has that pid, or the process
  with that pid started at another time; a live owner, including this very process, is never
  robbed, and an old marker without a start time is never trusted;
- it has been orphaned: its parent is pid 1, or a known reaper (``systemd --user``, a container
  init such as tini) that adopted it. A marked kubectl whose real parent is some other live
  process is not ours to stop.

Anything else that holds the port is left alone, whatever it is. The stop is the same gentle-then-
firm sequence the supervisor uses: SIGINT (kubectl exits 0), wait, SIGTERM, wait, SIGKILL.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time

import psutil

from kportforward.core.ports import addresses_overlap
from kportforward.owned import me, owner_gone, pid_namespace

OWNER_ENV = "KPORTFORWARD_OWNER_PID"
"""Set on every kubectl we spawn: the pid of the kportforward that spawned it."""
OWNER_START_ENV = "KPORTFORWARD_OWNER_START"
"""Set on every kubectl we spawn: that kportforward's start time (``owned.start_time``)."""
OWNER_PIDNS_ENV = "KPORTFORWARD_OWNER_PIDNS"
"""Set on every kubectl we spawn: that kportforward's PID namespace (``owned.pid_namespace``)."""
FORWARD_ENV = "KPORTFORWARD_FORWARD"
"""Set on every kubectl we spawn: the name of the forward it serves."""


def owner_marker() -> dict[str, str]:
    """The environment that marks a kubectl as spawned by this process (add ``FORWARD_ENV``)."""
    ident = me()
    return {OWNER_ENV: str(ident.pid), OWNER_START_ENV: ident.start, OWNER_PIDNS_ENV: ident.pidns}


_KUBECTL_EXE = re.compile(r"^kubectl(\.[0-9.]+)?(\.exe)?$", re.IGNORECASE)
_POLL = 0.05
# Processes that adopt orphans: init systems and container inits (subreapers).
_REAPERS = frozenset(
    {"systemd", "init", "tini", "docker-init", "catatonit", "dumb-init", "s6-svscan", "launchd"}
)


def _is_kubectl_port_forward(cmdline: list[str]) -> bool:
    if not cmdline:
        return False
    exe = os.path.basename(cmdline[0])
    return bool(_KUBECTL_EXE.match(exe)) and "port-forward" in cmdline[1:]


def _same_user(proc: psutil.Process) -> bool:
    if sys.platform != "win32":
        return proc.uids().real == os.getuid()
    import getpass

    return proc.username().split("\\")[-1] == getpass.getuser()


def _kubectl_dirs(kubectl: str | None) -> tuple[set[str], set[str]]:
    """(exact executables, directories whose ``kubectl*`` executables count) for ``kubectl``."""
    path = kubectl or shutil.which("kubectl")
    if not path:
        return set(), set()
    real = os.path.realpath(path)
    return {real}, {os.path.dirname(real)}


def is_our_kubectl(exe: str, kubectl: str | None) -> bool:
    """True when ``exe`` (a process's executable) is the kubectl we would run, or one of the
    versioned clients in the same directory that a dispatcher execs (``kubectl.1.30``)."""
    if not exe or exe.endswith(" (deleted)"):
        return False
    exact, dirs = _kubectl_dirs(kubectl)
    real = os.path.realpath(exe)
    if real in exact:
        return True
    return os.path.dirname(real) in dirs and bool(_KUBECTL_EXE.match(os.path.basename(real)))


def _orphaned(proc: psutil.Process) -> bool:
    """Adopted by init (pid 1 in our namespace) or by a known reaper (``systemd --user``, tini …),
    as happens when its owner dies; a kubectl whose parent is any other live process is that
    process's business, whatever its environment says."""
    ppid = proc.ppid()
    if ppid in (0, 1):
        return True
    try:
        return psutil.Process(ppid).name() in _REAPERS
    except psutil.Error:
        return False


def _listen_ports(proc: psutil.Process) -> set[int]:
    return {
        c.laddr.port
        for c in proc.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr
    }


def _stale_reason(
    proc: psutil.Process,
    port: int,
    address: str,
    forward_name: str | None,
    kubectl: str | None = None,
) -> str | None:
    """A description of ``proc`` as a stale kubectl of ours, or None if it is anything else."""
    try:
        if not _is_kubectl_port_forward(proc.cmdline()):
            return None
        if not _same_user(proc):
            return None
        if not is_our_kubectl(proc.exe(), kubectl):
            return None
        if pid_namespace(proc.pid) != pid_namespace():
            return None
        env = proc.environ()
        owner_text, forward = env.get(OWNER_ENV, ""), env.get(FORWARD_ENV)
        owner_start, owner_ns = env.get(OWNER_START_ENV, ""), env.get(OWNER_PIDNS_ENV)
        if not owner_text.isdigit() or not forward or not owner_start or owner_ns is None:
            return None
        if forward_name is not None and forward != forward_name:
            return None
        owner_pid = int(owner_text)
        if proc.ppid() == owner_pid or not owner_gone(owner_pid, owner_start, owner_ns):
            return None
        if not _orphaned(proc):
            return None
        if _listen_ports(proc) != {port}:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
        return None
    return (
        f"kubectl port-forward (pid {proc.pid}) for {forward} left over from an earlier "
        f"kportforward run (owner pid {owner_pid} is gone) holds {address}:{port}"
    )


def _listener_pids(port: int, address: str) -> list[int]:
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return []
    pids = {
        c.pid
        for c in conns
        if c.pid is not None
        and c.status == psutil.CONN_LISTEN
        and c.laddr
        and c.laddr.port == port
        and addresses_overlap(c.laddr.ip, address)
    }
    return sorted(pids)


def _find(
    port: int, address: str, forward_name: str | None, kubectl: str | None
) -> tuple[psutil.Process, str] | None:
    for pid in _listener_pids(port, address):
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        reason = _stale_reason(proc, port, address, forward_name, kubectl)
        if reason is not None:
            return proc, reason
    return None


def find_stale_kubectl(
    port: int,
    address: str = "127.0.0.1",
    forward_name: str | None = None,
    *,
    kubectl: str | None = None,
) -> psutil.Process | None:
    """The leftover kubectl of ours holding ``address:port`` (see the module rules), or None.

    ``kubectl`` is the executable we run (default: ``kubectl`` on PATH).
    """
    found = _find(port, address, forward_name, kubectl)
    return found[0] if found else None


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if _gone(proc):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)


def stop_process(proc: psutil.Process, grace: float = 2.0) -> bool:
    """SIGINT, wait, SIGTERM, wait, SIGKILL (terminate then kill on Windows); True once gone."""
    if sys.platform == "win32":
        steps = [proc.terminate, proc.kill]
    else:
        steps = [
            lambda: proc.send_signal(signal.SIGINT),
            lambda: proc.send_signal(signal.SIGTERM),
            proc.kill,
        ]
    for step in steps:
        try:
            # psutil refuses to signal a pid that now belongs to another process.
            step()
        except psutil.NoSuchProcess:
            return True
        if _wait_gone(proc, grace):
            return True
    return _gone(proc)


def reclaim_stale_kubectl(
    port: int,
    address: str = "127.0.0.1",
    forward_name: str | None = None,
    *,
    grace: float = 2.0,
    kubectl: str | None = None,
) -> str | None:
    """Stop the leftover kubectl of ours holding ``address:port``; the message, or None if none.

    Never touches a process that fails any rule in the module docstring. ``kubectl`` is the
    executable we run (default: ``kubectl`` on PATH).
    """
    found = _find(port, address, forward_name, kubectl)
    if found is None:
        return None
    proc, reason = found
    if stop_process(proc, grace):
        return f"stopped {reason}"
    return f"could not stop {reason} (still running after SIGKILL)"
