"""Reclaiming a port from a ``kubectl port-forward`` that an earlier kportforward left behind.

This is the one place in the program allowed to stop a process it did not start in this run, and it
is deliberately narrow. A process is stopped only when **every** test below holds:

- its command line is ``kubectl … port-forward …`` (the gcloud dispatcher execs ``kubectl.1.NN``,
  keeping the pid, so any ``kubectl*`` executable name counts);
- it listens on exactly one local port, the one asked about, on an overlapping address;
- it belongs to the same user as we do;
- its environment carries the marker every kubectl we spawn gets: ``KPORTFORWARD_OWNER_PID`` (the
  kportforward that spawned it) and ``KPORTFORWARD_FORWARD`` (the forward's name, which must equal
  ``forward_name`` when one is given);
- that owner is gone: no process has that pid any more, or the pid now belongs to a process
  that started after the kubectl did (a reused pid, so not the kportforward that spawned it); a
  live owner, including this very process, is never robbed;
- its original parent is gone: it has been reparented (to init, pid 1, or to a subreaper), so its
  parent is no longer the owner.

Anything else that holds the port is left alone, whatever it is. The stop is the same gentle-then-
firm sequence the supervisor uses: SIGINT (kubectl exits 0), wait, SIGTERM, wait, SIGKILL.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import psutil

from kportforward.core.ports import addresses_overlap

OWNER_ENV = "KPORTFORWARD_OWNER_PID"
"""Set on every kubectl we spawn: the pid of the kportforward that spawned it."""
FORWARD_ENV = "KPORTFORWARD_FORWARD"
"""Set on every kubectl we spawn: the name of the forward it serves."""

_KUBECTL_EXE = re.compile(r"^kubectl(\.[0-9.]+)?(\.exe)?$", re.IGNORECASE)
_POLL = 0.05


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


def _owner_alive(owner_pid: int, proc: psutil.Process) -> bool:
    if owner_pid == os.getpid():
        return True
    try:
        owner = psutil.Process(owner_pid)
        # The owner spawned the kubectl, so it started first; a process that started later merely
        # reuses the pid and is not a kportforward of ours.
        return owner.create_time() <= proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # cannot tell: keep our hands off


def _listen_ports(proc: psutil.Process) -> set[int]:
    return {
        c.laddr.port
        for c in proc.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr
    }


def _stale_reason(
    proc: psutil.Process, port: int, address: str, forward_name: str | None
) -> str | None:
    """A description of ``proc`` as a stale kubectl of ours, or None if it is anything else."""
    try:
        if not _is_kubectl_port_forward(proc.cmdline()):
            return None
        if not _same_user(proc):
            return None
        env = proc.environ()
        owner_text, forward = env.get(OWNER_ENV), env.get(FORWARD_ENV)
        if not owner_text or not forward or not owner_text.isdigit():
            return None
        if forward_name is not None and forward != forward_name:
            return None
        owner_pid = int(owner_text)
        if proc.ppid() == owner_pid or _owner_alive(owner_pid, proc):
            return None
        if _listen_ports(proc) != {port}:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
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


def _find(port: int, address: str, forward_name: str | None) -> tuple[psutil.Process, str] | None:
    for pid in _listener_pids(port, address):
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        reason = _stale_reason(proc, port, address, forward_name)
        if reason is not None:
            return proc, reason
    return None


def find_stale_kubectl(
    port: int, address: str = "127.0.0.1", forward_name: str | None = None
) -> psutil.Process | None:
    """The leftover kubectl of ours holding ``address:port`` (see the module rules), or None."""
    found = _find(port, address, forward_name)
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
) -> str | None:
    """Stop the leftover kubectl of ours holding ``address:port``; the message, or None if none.

    Never touches a process that fails any rule in the module docstring.
    """
    found = _find(port, address, forward_name)
    if found is None:
        return None
    proc, reason = found
    if stop_process(proc, grace):
        return f"stopped {reason}"
    return f"could not stop {reason} (still running after SIGKILL)"
