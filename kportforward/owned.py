"""Who owns a thing we leave on disk or in a child's environment, and whether that owner is gone.

A process is named by three facts, because a pid alone is not an identity: pids are reused, and a
pid means something only inside its PID namespace (a container or sandbox has its own):

- ``pid``;
- ``start``: its start time (Linux: clock ticks since boot from ``/proc/PID/stat``, exact;
  elsewhere psutil's create time);
- ``pidns``: its PID namespace (``/proc/PID/ns/pid``, e.g. ``pid:[4026531836]``; empty where
  there is no such thing).

The owner is *gone* only when we can prove it: we are in the same PID namespace as the one recorded,
and no process has that pid, or the process with that pid started at another time. Anything we
cannot tell is treated as alive, so nothing is removed or killed on a guess.

Owned temporary directories (demo, profile, sim, a materialised kubeconfig) carry an owner file with
these facts; ``sweep_stale_dirs()`` at the next start removes those whose owner is gone (a run
killed with SIGKILL cannot clean up after itself).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DIR_PREFIX = "kportforward-"
OWNER_FILE = ".kportforward-owner"


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """A process as (pid, start time, PID namespace); see the module docstring."""

    pid: int
    start: str
    pidns: str

    def as_dict(self) -> dict[str, object]:
        """The identity as a JSON-able dict."""
        return {"pid": self.pid, "start": self.start, "pidns": self.pidns}


def start_time(pid: int) -> str | None:
    """The start time of ``pid`` as an exact string, or None if there is no such process."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                raw = fh.read(4096)
        except OSError:
            return None
        # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
        fields = raw[raw.rfind(b")") + 2 :].split()
        return fields[19].decode() if len(fields) > 19 else None
    try:
        import psutil

        return f"{psutil.Process(pid).create_time():.3f}"
    except Exception:
        return None


def pid_namespace(pid: int | str = "self") -> str:
    """The PID namespace of ``pid`` (``pid:[N]``); empty when the system has none or hides it."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def me() -> ProcessIdentity:
    """This process's identity."""
    pid = os.getpid()
    return ProcessIdentity(pid, start_time(pid) or "", pid_namespace())


def owner_gone(pid: int, start: str, pidns: str) -> bool:
    """True only when the process (``pid``, ``start``, ``pidns``) provably no longer exists.

    False when it runs, when it is in another PID namespace than ours (its pid means nothing
    here), when the record is incomplete, or when we cannot tell.
    """
    if pid <= 0 or not start:
        return False
    if pidns != pid_namespace():
        return False
    if pid == os.getpid():
        return False
    now = start_time(pid)
    if now is None:
        # No /proc entry: gone, unless /proc itself is unreadable here.
        return os.path.isdir("/proc/self") or not sys.platform.startswith("linux")
    return now != start


def _owner_record() -> str:
    return json.dumps(me().as_dict())


def make_owned_dir(kind: str) -> Path:
    """A new private temporary directory ``kportforward-KIND-…`` carrying our identity.

    Stale ones (owner gone) are removed first.
    """
    sweep_stale_dirs()
    path = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{kind}-"))
    fd = os.open(path / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(_owner_record())
    return path


def _read_owner(directory: Path) -> ProcessIdentity | None:
    try:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(directory / OWNER_FILE, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = json.loads(os.read(fd, 4096))
        return ProcessIdentity(int(data["pid"]), str(data["start"]), str(data["pidns"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    finally:
        os.close(fd)


def sweep_stale_dirs(root: str | Path | None = None) -> list[Path]:
    """Remove ``kportforward-*`` directories in ``root`` (the temp dir) whose owner is gone.

    Only real directories (not symlinks) that belong to us and hold a readable owner file are
    considered; a directory without one (say, from an older version) is left alone. Returns the
    directories removed.
    """
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        if not entry.name.startswith(DIR_PREFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
            continue
        owner = _read_owner(Path(entry.path))
        if owner is None or not owner_gone(owner.pid, owner.start, owner.pidns):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(entry.path)
            removed.append(Path(entry.path))
            log.info("removed %s, left behind by kportforward pid %d", entry.path, owner.pid)
    return removed
