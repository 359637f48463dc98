"""The manager's side of the orphan guard: tell the watchdog (and on Windows the job) every child.

``default_guard().register(pid, group=True, label=...)`` right after a child starts,
``unregister(pid)`` once it has exited. :class:`KubectlProcess` does both for every kubectl;
anything else we start that must not outlive us (a credential plugin, grpcui) does the same.

The watchdog process (``watchdog.py``) is started on the first registration and told to stop —
by closing its pipe — when the last child is gone, so an idle manager runs no extra process and a
finished supervisor leaves no descriptor open. On Windows every registered child is also put in a
kill-on-close Job Object, which the kernel enforces even if the watchdog itself is killed.

Nothing here may break a spawn: a guard that cannot start logs one warning and the child runs
unguarded (Linux still has its parent-death signal).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from kportforward.platform.base import NO_WATCHDOG_ENV, Env, Platform, env_flag

log = logging.getLogger(__name__)

WATCHDOG_SCRIPT = Path(__file__).with_name("watchdog.py")


def watchdog_argv(python: str = sys.executable, grace: float | None = None) -> list[str]:
    """The watchdog's argv: ``python -I .../watchdog.py`` (isolated: it depends on neither the
    current directory nor how kportforward was installed; it imports only stdlib and psutil)."""
    argv = [python, "-I", str(WATCHDOG_SCRIPT)]
    if grace is not None:
        argv += ["--grace", str(grace)]
    return argv


def create_time(pid: int) -> float | None:
    """The process's start time as psutil sees it (the watchdog checks it before killing)."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


class OrphanGuard:
    """Registers children with one watchdog process (and a Job Object on Windows).

    Thread-safe: children may be registered from any thread. ``popen``, ``job_factory`` and
    ``start_time`` are injectable for tests.
    """

    def __init__(
        self,
        platform: Platform | None = None,
        *,
        env: Env | None = None,
        popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
        job_factory: Callable[[], Any] | None = None,
        start_time: Callable[[int], float | None] = create_time,
        grace: float | None = None,
    ) -> None:
        if platform is None:
            from kportforward.platform import current

            platform = current()
        self.platform = platform
        env = os.environ if env is None else env
        self.enabled = not env_flag(env, NO_WATCHDOG_ENV)
        self._off_reason = NO_WATCHDOG_ENV
        self._popen = popen
        self._job_factory = job_factory
        self._job: Any = None
        self._job_failed = False
        self._start_time = start_time
        self._grace = grace
        self._lock = threading.Lock()
        self._children: dict[int, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._retired: list[subprocess.Popen[bytes]] = []
        self._warned = False
        self._crashes = 0
        self.starts = 0
        """How many watchdog processes were started (one per busy period)."""

    # -- the public side ----------------------------------------------------------------------

    @property
    def watchdog_pid(self) -> int | None:
        """The running watchdog's pid, or None while no child is registered."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def children(self) -> list[int]:
        """The pids registered now."""
        with self._lock:
            return list(self._children)

    def register(self, pid: int, *, group: bool = True, label: str = "") -> bool:
        """Guard ``pid`` (and, with ``group``, the process group it leads). True when the
        watchdog (or the Job Object) now knows it; False when the guard is off or failed."""
        start = self._start_time(pid)
        if start is None:
            return False  # already gone (and reaped): nothing to guard
        pgid = pid if group and self.platform.name != "win32" else None
        label = "".join(ch if ch.isprintable() and not ch.isspace() else "_" for ch in label)
        line = f"+ {pid} {'-' if pgid is None else pgid} {start!r} {label[:80]}\n"
        with self._lock:
            self._children[pid] = line
            ok = self._assign_job(pid)
            if self.enabled:
                ok = self._send(line) or ok
            return ok

    def unregister(self, pid: int) -> None:
        """``pid`` has exited (or was stopped by us): forget it; stop the watchdog when idle."""
        with self._lock:
            if self._children.pop(pid, None) is None:
                return
            if self.enabled and (self._children or self._proc is not None):
                # With children left, a watchdog that died since the last registration is
                # replaced here, so they are guarded again.
                self._send(f"- {pid}\n", restart=bool(self._children))
            if not self._children:
                self._retire()

    def close(self, timeout: float = 2.0) -> None:
        """Close the pipe (the watchdog then stops any child still registered) and reap it."""
        with self._lock:
            self._children.clear()
            self._retire()
            retired, self._retired = self._retired, []
        for proc in retired:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)

    def describe(self) -> str:
        """One line for logs and the details screen."""
        n = len(self._children)
        parts = []
        if not self.enabled:
            parts.append(f"watchdog off ({self._off_reason})")
        elif self.watchdog_pid:
            parts.append(f"watchdog pid {self.watchdog_pid}")
        if self._job is not None:
            parts.append("kill-on-close job")
        return f"orphan guard: {', '.join(parts) or 'idle'}; {n} children"

    # -- internals (called with the lock held) -------------------------------------------------

    def _assign_job(self, pid: int) -> bool:
        if self.platform.name != "win32" or self._job_failed:
            return False
        try:
            if self._job is None:
                if self._job_factory is not None:
                    self._job = self._job_factory()
                else:
                    from kportforward.platform.jobobject import KillOnCloseJob

                    self._job = KillOnCloseJob()
            self._job.assign(pid)
            return True
        except OSError as exc:
            if self._job is None:
                self._job_failed = True  # cannot create one: do not retry per child
            self._warn(f"Job Object: {exc}")
            return False

    def _send(self, line: str, *, restart: bool = True) -> bool:
        for _ in range(2):
            proc = self._proc
            if proc is None or proc.poll() is not None:
                if proc is not None and not self._survivable(proc):
                    return False
                if not restart:
                    return False
                proc = self._start()
                if proc is None:
                    return False
                line = "".join(self._children.values())  # the new watchdog needs them all
            stdin: IO[bytes] | None = proc.stdin
            try:
                assert stdin is not None
                stdin.write(line.encode())
                stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                # It died (someone killed it): start another, which gets every child again.
                self._warn("the watchdog process died; starting another")
                self._discard(proc)
                if proc.poll() is not None and not self._survivable(proc):
                    return False
        return False

    def _survivable(self, proc: subprocess.Popen[bytes]) -> bool:
        """False (and the watchdog turned off) once it has *exited* with an error three times:
        it cannot start here (e.g. psutil missing for this interpreter), and starting it on
        every spawn would cost an interpreter each time. Being killed is not counted."""
        code = proc.returncode
        if code is None or code <= 0:
            return True
        self._crashes += 1
        self._discard(proc)
        if self._crashes < 3:
            return True
        self.enabled = False
        self._off_reason = f"it exited with code {code} three times"
        self._warned = False  # this one must be seen
        self._warn(
            f"the watchdog exits with code {code} at start (is psutil installed for "
            f"{sys.executable}?); running without it"
        )
        return False

    def _start(self) -> subprocess.Popen[bytes] | None:
        self._reap()
        kwargs: dict[str, Any] = {
            "stdin": subprocess.PIPE,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
            "close_fds": True,
        }
        # Its own session/group: a Ctrl-C (or SIGHUP) for our terminal must not reach it.
        kwargs.update(self.platform.group_kwargs())
        try:
            self._proc = self._popen(watchdog_argv(grace=self._grace), **kwargs)
        except OSError as exc:
            self._warn(f"cannot start the watchdog: {exc}")
            self._proc = None
            return None
        self.starts += 1
        return self._proc

    def _retire(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            self._discard(proc)

    def _discard(self, proc: subprocess.Popen[bytes]) -> None:
        if self._proc is proc:
            self._proc = None
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        self._retired.append(proc)
        self._reap()

    def _reap(self) -> None:
        self._retired = [p for p in self._retired if p.poll() is None]

    def _warn(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("orphan guard: %s", text)
        else:
            log.debug("orphan guard: %s", text)


_default: OrphanGuard | None = None
_default_lock = threading.Lock()


def default_guard() -> OrphanGuard:
    """The process-wide guard, created on first use; closed (and its watchdog reaped) at exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = OrphanGuard()
            atexit.register(_default.close, 1.0)
        return _default
