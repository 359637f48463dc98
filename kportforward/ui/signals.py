"""SIGINT, SIGTERM and SIGHUP as a quit request, even when the event loop is stuck.

The handlers are plain ``signal.signal`` handlers rather than ``loop.add_signal_handler``: when the
terminal goes away (SIGHUP), Textual's output thread dies and the UI thread can block on a full
write queue, so a callback queued on the loop would never run. A Python-level handler still runs
(lock waits are interruptible), hands the request to the loop thread-safely, and tells the CLI's
deadline hook, which ends the process if the polite quit cannot finish in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

if sys.platform == "win32":  # no SIGHUP: a closed console ends the process by itself
    QUIT_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
    _HANGUP: int | None = None
else:
    QUIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    _HANGUP = signal.SIGHUP


class QuitSignals:
    """Installs the quit handlers; ``on_signal(count)`` runs on the loop for every signal."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_signal: Callable[[int], Any],
        on_deadline: Callable[[int], None] | None = None,
    ) -> None:
        self._loop = loop
        self._on_signal = on_signal
        self._on_deadline = on_deadline
        self._previous: dict[int, Any] = {}
        self.count = 0

    def install(self) -> None:
        """Take over the three signals (main thread only; elsewhere this does nothing)."""
        for sig in QUIT_SIGNALS:
            with contextlib.suppress(ValueError, OSError):  # not the main thread
                self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        """Give the signals back to whoever had them."""
        for sig, previous in self._previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if signum == _HANGUP and terminal_gone():
            detach_from_terminal()
        if self._on_deadline is not None:
            self._on_deadline(self.count)
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing to tell
            self._loop.call_soon_threadsafe(self._on_signal, self.count)


def detach_from_terminal() -> None:
    """Point stdout and stderr at /dev/null: the terminal is gone (SIGHUP), and writes to it would
    fail or block Textual's teardown; to /dev/null they succeed and the quit stays polite."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
        os.close(null)


def terminal_gone() -> bool:
    """True when stdout is a terminal that has hung up (a SIGHUP can also come from ``kill``)."""
    if sys.platform == "win32":  # no termios; a closed console ends the process anyway
        return False
    import termios

    try:
        termios.tcgetattr(1)
    except (OSError, termios.error):  # EIO: the terminal is gone; ENOTTY: never was one
        return os.isatty(1) or True
    return False
