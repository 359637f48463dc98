"""Where a running instance's lock and control socket live, and the lock that makes it the one.

One instance per user and config: the key is a hash of the config files the instance merges
(the user file and ``--config``), resolved to absolute paths, so ``kportforward run`` in two
directories with the same ``--config`` meet, and two different configs run side by side.

The directory is ``$XDG_RUNTIME_DIR/kportforward/`` (per user, 0700 by the spec) or, without it,
``<tempdir>/kportforward-<uid>/``, created 0700 and refused when another user owns it or it is
open to others. The lock is an ``flock`` on ``<key>.lock`` held for the instance's life: the
kernel releases it when the owner dies, however it dies, so a stale lock is simply one nobody holds
and is taken over; a held one is never broken. The lock file carries the owner's pid, start time,
config and socket path as JSON so clients can say who runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SOCKET_PATH_MAX = 104
"""``sun_path`` is 108 bytes on Linux and 104 on macOS; the smaller one, to be portable."""


class RuntimeDirError(OSError):
    """The runtime directory cannot be made private (wrong owner, open to others)."""


def runtime_dir(*, create: bool = True) -> Path:
    """The per-user directory for locks and sockets, created 0700 if needed (``create``; a
    lookup that only asks whether an instance runs creates nothing).

    Windows has no ``XDG_RUNTIME_DIR``; ``%LOCALAPPDATA%\\kportforward\\run`` stands in there
    (the platform helper may replace this function when it lands).
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or tempfile.gettempdir()
        path = Path(base) / "kportforward" / "run"
    elif xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        path = Path(xdg) / "kportforward"
    else:
        path = Path(tempfile.gettempdir()) / f"kportforward-{os.getuid()}"
    if create:
        _ensure_private(path)
    return path


def _ensure_private(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    if sys.platform == "win32":
        return
    st = os.lstat(path)
    import stat

    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise RuntimeDirError(f"{path} belongs to another user (uid {st.st_uid})")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours: make it private again rather than refuse


def config_identity(config_arg: str | None) -> list[str]:
    """The config files an instance started with ``--config config_arg`` merges, absolute."""
    named = os.environ.get("KPORTFORWARD_CONFIG")
    if named:
        user: str | None = os.path.expanduser(named)
    elif sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData")
        user = os.path.join(base, "kportforward", "config.yaml")
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME")
        home = os.path.expanduser("~")
        base = xdg if xdg and os.path.isabs(xdg) else os.path.join(home, ".config")
        no_home = home == "~" and not xdg
        user = None if no_home else os.path.join(base, "kportforward", "config.yaml")
    files = [user] if user else []
    if config_arg:
        files.append(os.path.expanduser(config_arg))
    return [os.path.realpath(f) for f in files]


@dataclass(frozen=True, slots=True)
class InstancePaths:
    """The lock file and socket of the instance for one config."""

    key: str
    lock: Path
    socket: Path
    log: Path
    """Where ``wait --start`` sends a detached instance's output."""


def paths_for(config_arg: str | None, *, create: bool = True) -> InstancePaths:
    """The paths of the instance for ``--config config_arg`` (the runtime dir is created unless
    ``create`` is False: a lookup must leave no trace)."""
    identity = "\0".join(config_identity(config_arg))
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    base = runtime_dir(create=create)
    return InstancePaths(key, base / f"{key}.lock", base / f"{key}.sock", base / f"{key}.log")


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """Who holds a lock: written by the owner into the lock file, read by clients."""

    pid: int
    started: float
    """Wall-clock start time."""
    socket: str
    config: list[str] = field(default_factory=list)
    mode: str = "run"
    """``run`` or ``dashboard``."""
    version: str = ""

    @property
    def since(self) -> str:
        """``HH:MM`` of the start, local time."""
        return time.strftime("%H:%M", time.localtime(self.started))


class InstanceLock:
    """The one-instance lock for one config; ``acquire()`` is non-blocking."""

    def __init__(self, paths: InstancePaths) -> None:
        self.paths = paths
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it (a dead owner holds nothing); False if held."""
        if self._fd is not None:
            return True
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def write_info(self, info: InstanceInfo) -> None:
        """Publish who we are in the lock file (clients read it without taking the lock)."""
        if self._fd is None:
            raise RuntimeError("lock not held")
        data = json.dumps(asdict(info)).encode()
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)

    def release(self) -> None:
        """Give the lock up (the socket file is removed by the server)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor drops the flock


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    else:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def lock_is_held(path: Path) -> bool:
    """True when some process (this one included) holds the lock at ``path``."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        return not _try_lock(fd)  # closing fd below releases a probe lock we got
    finally:
        os.close(fd)


def read_info(path: Path) -> InstanceInfo | None:
    """The owner's info from a held lock file; None when nobody holds it or it is unreadable."""
    if not lock_is_held(path):
        return None
    try:
        raw = json.loads(path.read_bytes() or b"null")
        if isinstance(raw, dict):
            return InstanceInfo(**raw)
    except (OSError, ValueError, TypeError):
        pass
    # Held, but the owner has not written its info yet (it is starting): its socket is known.
    return InstanceInfo(pid=0, started=0.0, socket=str(path.with_suffix(".sock")))


def live_instances() -> list[InstanceInfo]:
    """Every running instance of this user (any config), oldest first."""
    found = []
    for lock in sorted(runtime_dir(create=False).glob("*.lock")):
        info = read_info(lock)
        if info is not None:
            found.append(info)
    return sorted(found, key=lambda i: i.started)


def find_instance(config_arg: str | None) -> InstanceInfo | None:
    """The running instance for ``--config config_arg``.

    Without ``--config``, the instance on the user config, else the only instance running
    (a ``run --config x.yaml`` is found by a bare ``status``); None when none (or several) run.
    """
    info = read_info(paths_for(config_arg, create=False).lock)
    if info is not None or config_arg:
        return info
    running = live_instances()
    return running[0] if len(running) == 1 else None
