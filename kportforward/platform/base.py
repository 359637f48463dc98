"""The one interface behind which everything platform-specific lives, and its plain records.

A :class:`Platform` is chosen once at start-up (:func:`kportforward.platform.current`); the Linux,
macOS and Windows implementations sit side by side in ``posix.py`` and ``windows.py``. Every method
that decides something (argv, spawn options, the stop plan, paths, open/copy commands, how a port is
probed) is a pure function of its arguments, so a test injects any platform on any machine. The few
methods that act on the OS (``signal``) go through an ``ops`` object that tests replace.

This module imports nothing of ours and nothing heavy: the watchdog process imports it too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

OsName = Literal["linux", "darwin", "win32"]

StopAction = Literal["interrupt", "terminate", "kill"]

NO_PDEATHSIG_ENV = "KPORTFORWARD_NO_PDEATHSIG"
"""Set to 1 to spawn without Linux's parent-death signal (tests of the portable guard use it)."""
NO_WATCHDOG_ENV = "KPORTFORWARD_NO_WATCHDOG"
"""Set to 1 to run without the watchdog process (only to prove, in tests, what it prevents)."""


@dataclass(frozen=True, slots=True)
class StopStep:
    """One step of a stop sequence: what to send, to whom, and how long to wait for the exit."""

    action: StopAction
    """``interrupt`` (kubectl exits 0), ``terminate`` (polite), ``kill`` (cannot be refused)."""
    signal: int | None
    """The POSIX signal or Windows console event number; None for TerminateProcess."""
    signal_name: str
    """``SIGINT``, ``CTRL_BREAK_EVENT``, ``TerminateProcess`` …"""
    wait: float | None
    """Seconds to wait for the exit before the next step; None: wait until it exits."""
    group: bool
    """True: the whole process group (kubectl and any credential plugin it started)."""

    @property
    def label(self) -> str:
        """``SIGINT to the group``, ``TerminateProcess`` … for logs and tests."""
        return f"{self.signal_name} to the group" if self.group else self.signal_name


@dataclass(frozen=True, slots=True)
class BindStep:
    """One socket a port probe binds (and listens on); every step must succeed for "free"."""

    address: str
    reuseaddr: bool = False
    """Set SO_REUSEADDR first (what Go does on POSIX, so TIME_WAIT does not count as busy)."""
    exclusive: bool = False
    """Set SO_EXCLUSIVEADDRUSE first (Windows: see a holder on an overlapping address)."""
    optional: bool = False
    """An "address not available" here (no IPv6 on the machine) does not make the port busy."""


@dataclass(frozen=True, slots=True)
class Paths:
    """Where kportforward keeps things on this platform (nothing is created by computing them)."""

    config_dir: Path
    """The user config directory (the Go tool's location, so its users keep their file)."""
    config_file: Path
    """``config.yaml`` in ``config_dir``."""
    cache_dir: Path
    """Cached remote defaults and other things safe to delete."""
    log_dir: Path
    """The default home of log files."""
    runtime_dir: Path
    """The lock and the control socket; created 0700 by :func:`ensure_private_dir`."""
    screenshots_dir: Path
    """Where the dashboard saves screenshots by default."""
    temp_dir: Path
    """Scratch space (the demo's kubeconfig and certificates)."""


@dataclass(frozen=True, slots=True)
class SpawnOptions:
    """Keyword arguments for ``subprocess``/``asyncio`` process creation, and the argv to run."""

    argv: list[str]
    kwargs: dict[str, Any] = field(default_factory=dict)
    """``start_new_session``/``preexec_fn`` on POSIX, ``creationflags`` on Windows."""
    pdeathsig: bool = False
    """True when Linux will SIGKILL the child if our spawning thread dies."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The outcome of opening a URL or copying text: ok, or a reason a person can act on."""

    ok: bool
    reason: str
    """``opened with xdg-open``, ``no clipboard tool: install wl-clipboard or xclip`` …"""
    command: tuple[str, ...] = ()
    """The argv that was run (empty when none was)."""


Env = Mapping[str, str]
Which = Callable[[str, str | None], str | None]
"""``shutil.which``-shaped: (name, PATH) → full path or None."""


class Platform:
    """Everything that differs between Linux, macOS and Windows, behind one small interface."""

    name: OsName = "linux"
    exe_suffix: str = ""
    """``.exe`` on Windows: how kubectl and the other tools are named on disk."""

    def __init__(self, ops: Any = None) -> None:
        self.ops = ops
        """What acts on the OS (signals, job objects); None: the real one for this platform."""

    # -- processes ----------------------------------------------------------------------------

    def spawn_options(self, argv: list[str], env: Env | None = None) -> SpawnOptions:
        """The argv to run and the process-creation keywords: a new process group/session, plus
        the parent-death signal where the OS has one (unless ``KPORTFORWARD_NO_PDEATHSIG=1``)."""
        raise NotImplementedError

    def group_kwargs(self) -> dict[str, Any]:
        """Process-creation keywords for a child in a process group of its own (POSIX: a new
        session; Windows: a new process group), without anything else ``spawn_options`` adds.
        For helpers we start (credential plugins, browsers, the watchdog)."""
        raise NotImplementedError

    def stop_plan(
        self, interrupt_wait: float = 1.0, term_wait: float = 0.5
    ) -> tuple[StopStep, ...]:
        """The stop sequence for a child spawned with :meth:`spawn_options`, gentlest first."""
        raise NotImplementedError

    def signal(self, pid: int, step: StopStep) -> None:
        """Carry out one :class:`StopStep` on ``pid`` (the group leader); a gone process is fine."""
        raise NotImplementedError

    def kubectl_names(self) -> tuple[str, ...]:
        """The file names kubectl has on this platform, in lookup order."""
        return ("kubectl" + self.exe_suffix,)

    def find_kubectl(self, env: Env | None = None, which: Which | None = None) -> str | None:
        """kubectl's full path from ``PATH`` in ``env`` (``kubectl.exe`` on Windows), or None."""
        import shutil

        env = os.environ if env is None else env
        which = which or (lambda name, path: shutil.which(name, path=path))
        for name in self.kubectl_names():
            found = which(name, env.get("PATH"))
            if found:
                return found
        return None

    # -- files --------------------------------------------------------------------------------

    def paths(self, env: Env | None = None, home: str | None = None) -> Paths:
        """Config, cache, log, runtime, screenshot and temp directories for ``env``/``home``."""
        raise NotImplementedError

    # -- the desktop --------------------------------------------------------------------------

    def open_url_commands(self, url: str) -> list[list[str]]:
        """Candidate argvs that open ``url`` in the default browser, first available wins."""
        raise NotImplementedError

    def copy_commands(self, env: Env | None = None) -> list[list[str]]:
        """Candidate argvs that copy their stdin to the clipboard, first available wins."""
        raise NotImplementedError

    def missing_tool_hint(self, what: Literal["open", "copy"]) -> str:
        """What to install when no candidate tool exists."""
        raise NotImplementedError

    def copy_input(self, text: str) -> bytes:
        """The bytes a copy command reads on stdin."""
        return text.encode("utf-8")

    # -- ports --------------------------------------------------------------------------------

    def bind_plan(self, address: str) -> tuple[BindStep, ...]:
        """The binds that tell, before kubectl tries, whether its listener on ``address`` will
        succeed *and* not share the port with another program's listener."""
        raise NotImplementedError


def env_flag(env: Env, name: str) -> bool:
    """True when ``env[name]`` is set to something other than empty, 0, false or no."""
    return env.get(name, "").strip().lower() not in ("", "0", "false", "no")


def home_from(env: Env, home: str | None, *names: str) -> str:
    """The home directory: ``home`` if given, else the first of ``names`` set in ``env``, else
    ``os.path.expanduser("~")``."""
    if home:
        return home
    for name in names:
        if env.get(name):
            return env[name]
    return os.path.expanduser("~")


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700; refuse one owned by another user.

    The runtime directory holds the control socket: anyone who can reach it controls our
    port-forwards, so a world-writable or foreign directory there is an error, not a warning.
    """
    if path.is_symlink():  # someone else may have planted it (in a shared /tmp)
        raise PermissionError(f"{path} is a symbolic link; remove it or set XDG_RUNTIME_DIR")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if hasattr(os, "getuid"):
        st = path.stat()
        if st.st_uid != os.getuid():
            raise PermissionError(f"{path} belongs to another user (uid {st.st_uid})")
        if st.st_mode & 0o077:
            path.chmod(0o700)
    return path
