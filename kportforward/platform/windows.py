"""Windows: process groups and CTRL_BREAK_EVENT, TerminateProcess, %APPDATA%, exclusive binds.

Windows has no sessions or POSIX signals: ``start_new_session`` does nothing and ``os.killpg`` does
not exist. kubectl is started with ``CREATE_NEW_PROCESS_GROUP`` so that ``CTRL_BREAK_EVENT`` can be
sent to it alone (Go delivers it as os.Interrupt, so kubectl exits as it does on SIGINT), and the
forced step is TerminateProcess on kubectl and its children. The orphan guard here is a Job Object
with kill-on-close (``jobobject.py``), besides the portable watchdog.
"""

from __future__ import annotations

import contextlib
import ntpath
import os
import sys
from pathlib import Path
from typing import Any, Literal

from kportforward.platform.base import (
    BindStep,
    Env,
    Paths,
    Platform,
    SpawnOptions,
    StopStep,
    home_from,
)

APP = "kportforward"

# Win32 constants as numbers, so the plan is built (and tested) on any OS.
CREATE_NEW_PROCESS_GROUP = 0x00000200
CTRL_BREAK_EVENT = 1


class WindowsOps:
    """The real calls (tests pass a recorder instead)."""

    def ctrl_break(self, pid: int) -> None:
        """GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pid): the group ``pid`` leads."""
        if sys.platform == "win32":
            import signal

            os.kill(pid, signal.CTRL_BREAK_EVENT)

    def terminate_tree(self, pid: int) -> None:
        """TerminateProcess on ``pid`` and its descendants (psutil checks pid reuse)."""
        import psutil

        try:
            root = psutil.Process(pid)
            family = [*root.children(recursive=True), root]
        except psutil.NoSuchProcess:
            return
        for proc in family:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                proc.kill()


def _win_join(*parts: str) -> Path:
    # ntpath, not pathlib: the plan is also built (and tested) on POSIX, where Path would use "/".
    return Path(ntpath.join(*parts))


class WindowsPlatform(Platform):
    """Windows 10 and later."""

    name = "win32"
    exe_suffix = ".exe"

    def spawn_options(self, argv: list[str], env: Env | None = None) -> SpawnOptions:
        """A new process group (so CTRL_BREAK_EVENT reaches only kubectl). No console flags: a
        child without our console could not receive the break event."""
        return SpawnOptions(list(argv), {"creationflags": CREATE_NEW_PROCESS_GROUP})

    def group_kwargs(self) -> dict[str, Any]:
        """A new process group: a Ctrl-C in our console does not reach it."""
        return {"creationflags": CREATE_NEW_PROCESS_GROUP}

    def stop_plan(
        self, interrupt_wait: float = 1.0, term_wait: float = 0.5
    ) -> tuple[StopStep, ...]:
        """CTRL_BREAK_EVENT to the group, wait, then TerminateProcess on kubectl and its
        children (Windows has no polite middle step for a console program)."""
        return (
            StopStep("interrupt", CTRL_BREAK_EVENT, "CTRL_BREAK_EVENT", interrupt_wait, True),
            StopStep("kill", None, "TerminateProcess", None, True),
        )

    def signal(self, pid: int, step: StopStep) -> None:
        """Send the break event, or terminate the tree; a gone process is fine."""
        ops = self.ops or WindowsOps()
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            if step.signal == CTRL_BREAK_EVENT:
                ops.ctrl_break(pid)
            else:
                ops.terminate_tree(pid)

    def paths(self, env: Env | None = None, home: str | None = None) -> Paths:
        """``%APPDATA%\\kportforward`` for the config (the Go tool's ``os.UserConfigDir``), and
        ``%LOCALAPPDATA%\\kportforward\\{Cache,Logs,run}`` for what stays on this machine."""
        env = os.environ if env is None else env
        h = home_from(env, home, "USERPROFILE", "HOME")
        roaming = env.get("APPDATA") or ntpath.join(h, "AppData", "Roaming")
        local = env.get("LOCALAPPDATA") or ntpath.join(h, "AppData", "Local")
        temp = env.get("TEMP") or env.get("TMP") or ntpath.join(local, "Temp")
        return Paths(
            config_dir=_win_join(roaming, APP),
            config_file=_win_join(roaming, APP, "config.yaml"),
            cache_dir=_win_join(local, APP, "Cache"),
            log_dir=_win_join(local, APP, "Logs"),
            runtime_dir=_win_join(local, APP, "run"),
            screenshots_dir=_win_join(h, "Pictures", APP),
            temp_dir=Path(temp),
        )

    def open_url_commands(self, url: str) -> list[list[str]]:
        """``rundll32 url.dll,FileProtocolHandler URL``: the shell's URL handler without cmd.exe
        (``start`` is a cmd built-in, and cmd would split a URL at ``&``)."""
        return [["rundll32.exe", "url.dll,FileProtocolHandler", url]]

    def copy_commands(self, env: Env | None = None) -> list[list[str]]:
        """``clip.exe`` (reads UTF-16 with a BOM, see :meth:`copy_input`)."""
        return [["clip.exe"]]

    def copy_input(self, text: str) -> bytes:
        """clip.exe reads the console code page unless the input starts with a UTF-16 BOM."""
        return "\ufeff".encode("utf-16-le") + text.encode("utf-16-le")

    def missing_tool_hint(self, what: Literal["open", "copy"]) -> str:
        """Both ship with Windows."""
        return "rundll32.exe is missing" if what == "open" else "clip.exe is missing"

    def bind_plan(self, address: str) -> tuple[BindStep, ...]:
        """SO_EXCLUSIVEADDRUSE: without it Windows lets our bind succeed beside another socket on
        an overlapping address (and one with SO_REUSEADDR could even take the port from us)."""
        return (BindStep(address, exclusive=True),)
