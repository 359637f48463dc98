"""The portable orphan guard: ``python -m kportforward.platform.watchdog``, one per manager.

The manager starts it with a pipe on its stdin and writes one line per child it starts or loses:

    + PID PGID START LABEL      a child to stop if we die (PGID "-": no group of its own;
                                START: its psutil create_time, "-" when unknown)
    - PID                       that child has exited or was stopped by the manager

The watchdog does nothing else until the pipe closes. The pipe closes when the manager exits for
*any* reason — a clean exit, a crash, SIGKILL, an OOM kill, TerminateProcess — because the kernel
closes a dead process's descriptors. Then it stops every child still registered: SIGTERM to the
group, a short grace, SIGKILL to what is left (on Windows: TerminateProcess on the tree), and exits.

It never kills a process we did not start: before each signal it checks that the pid still
belongs to the process that started at START (pids are reused). A group whose leader has gone is
signalled only while no other process has taken the leader's pid (the kernel does not reuse a pid
while a group of that id exists, so an unused leader pid means the group is still ours or empty).

It imports nothing of ours beyond this file and psutil, and ignores the terminal's signals (it runs
in its own session; SIGINT/SIGHUP are ignored), so only the pipe decides when it acts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass

import psutil

GRACE = 0.3
"""Seconds between the polite signal and SIGKILL when the manager has died."""
_START_TOLERANCE = 0.05
"""create_time is computed from clock ticks; the same process reads the same value ± this."""


@dataclass(slots=True)
class Child:
    """A registered child: its pid, its group (or None) and when it started."""

    pid: int
    pgid: int | None
    start: float | None
    label: str


def parse(line: str, children: dict[int, Child]) -> None:
    """Apply one protocol line to ``children``; malformed lines are ignored (never fatal)."""
    parts = line.split(None, 4)
    try:
        if parts[0] == "+" and len(parts) >= 4:
            pid = int(parts[1])
            pgid = None if parts[2] == "-" else int(parts[2])
            start = None if parts[3] == "-" else float(parts[3])
            children[pid] = Child(pid, pgid, start, parts[4] if len(parts) > 4 else "")
        elif parts[0] == "-" and len(parts) >= 2:
            children.pop(int(parts[1]), None)
    except (IndexError, ValueError):
        return


def is_ours(child: Child) -> bool | None:
    """True: the pid is still our child's. False: it is gone, or reused by someone else (or a
    zombie). None: no process has that pid any more (its group may live on)."""
    try:
        proc = psutil.Process(child.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if child.start is None:
            return True
        return abs(proc.create_time() - child.start) <= _START_TOLERANCE
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return False  # not ours to judge: another user's process now has that pid


def _group_alive(pgid: int) -> bool:
    if sys.platform == "win32":
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def send(child: Child, sig: int) -> bool:
    """Signal ``child`` (its group when it has one) if it is still ours; True when sent."""
    ours = is_ours(child)
    if ours is False:
        return False
    if sys.platform == "win32":
        if ours is None:
            return False
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(child.pid)
            for proc in [*root.children(recursive=True), root]:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            return True
        return False
    try:
        if child.pgid is not None:
            os.killpg(child.pgid, sig)
        elif ours:
            os.kill(child.pid, sig)
        else:
            return False
    except (ProcessLookupError, PermissionError):
        return False
    return True


def alive(child: Child) -> bool:
    """True while the child (or, for a group, any member of it) still runs."""
    ours = is_ours(child)
    if ours:
        return True
    if ours is None and child.pgid is not None:
        return _group_alive(child.pgid)
    return False


def stop_all(children: list[Child], grace: float = GRACE) -> list[Child]:
    """SIGTERM each child's group, wait up to ``grace``, SIGKILL what is left; returns those
    still alive after SIGKILL had a moment (normally none)."""
    term = getattr(signal, "SIGTERM", 15)
    kill = getattr(signal, "SIGKILL", 9)
    sent = [c for c in children if send(c, term)]
    deadline = time.monotonic() + grace
    while (left := [c for c in sent if alive(c)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    for child in left:
        send(child, kill)
    deadline = time.monotonic() + 1.0
    while (left := [c for c in left if alive(c)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def _ignore_terminal_signals() -> None:
    for name in ("SIGINT", "SIGHUP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGPIPE"):
        sig = getattr(signal, name, None)
        if sig is not None:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    """Read registrations until the pipe closes, then stop every registered child."""
    args = sys.argv[1:] if argv is None else argv
    grace = float(args[args.index("--grace") + 1]) if "--grace" in args else GRACE
    _ignore_terminal_signals()
    children: dict[int, Child] = {}
    stdin = sys.stdin.buffer
    while True:
        try:
            line = stdin.readline()
        except OSError:  # the pipe broke: same as EOF
            line = b""
        if not line:
            break
        parse(line.decode("utf-8", "replace"), children)
    stop_all(list(children.values()), grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
