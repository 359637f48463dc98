"""Everything that differs between Linux, macOS and Windows, behind one interface.

``current()`` picks the :class:`Platform` once per process from ``sys.platform``; ``for_name()``
builds any of them (tests inject one: nothing here reads ``sys.platform`` except ``current``).

- processes: ``spawn_options`` (new session/group, Linux's parent-death signal), ``stop_plan`` and
  ``signal`` (SIGINT → SIGTERM → SIGKILL to the group; CTRL_BREAK_EVENT → TerminateProcess),
  ``find_kubectl`` (``kubectl.exe`` on Windows);
- the orphan guard: ``guard.default_guard()`` (the watchdog process, a Job Object on Windows);
- files: ``paths()`` (config, cache, logs, runtime, screenshots, temp);
- the desktop: ``open_url(url)`` and ``copy_text(text)`` in ``desktop.py``;
- ports: ``bind_plan(address)``, used by ``core/ports.py``.

This package depends on nothing else of ours, and importing it loads no third-party module.
"""

from __future__ import annotations

import functools
import sys

from kportforward.platform.base import (
    NO_PDEATHSIG_ENV,
    NO_WATCHDOG_ENV,
    ActionResult,
    BindStep,
    OsName,
    Paths,
    Platform,
    SpawnOptions,
    StopStep,
    ensure_private_dir,
)

__all__ = [
    "NO_PDEATHSIG_ENV",
    "NO_WATCHDOG_ENV",
    "ActionResult",
    "BindStep",
    "OsName",
    "Paths",
    "Platform",
    "SpawnOptions",
    "StopStep",
    "current",
    "ensure_private_dir",
    "for_name",
    "paths",
]


def for_name(name: str, ops: object = None) -> Platform:
    """The implementation for ``linux``, ``darwin`` or ``win32`` (other POSIX systems get the
    macOS one: the BSD socket rules and no parent-death signal are the safe assumptions)."""
    if name == "win32":
        from kportforward.platform.windows import WindowsPlatform

        return WindowsPlatform(ops)
    from kportforward.platform.posix import DarwinPlatform, LinuxPlatform

    if name.startswith("linux"):
        return LinuxPlatform(ops)
    return DarwinPlatform(ops)


@functools.cache
def current() -> Platform:
    """This machine's platform, chosen once."""
    return for_name(sys.platform)


def paths() -> Paths:
    """This machine's directories for the current environment (see :class:`Paths`)."""
    return current().paths()
