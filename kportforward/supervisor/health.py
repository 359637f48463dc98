"""Liveness through the tunnel: is kubectl still carrying bytes to the pod?

kubectl stays alive when the API server hangs, and it accepts local connections it can no
longer serve. So the probe goes through the tunnel: connect to the local port, half-close our
side, and wait for the far end to answer. A healthy tunnel relays the EOF to the backend, the
backend closes, and kubectl closes our socket (or the backend greets us first). A refused
connect, or no answer within the timeout, means the tunnel is dead — for a backend that has
answered a probe before: one that never closes on EOF cannot be told from a hung tunnel this way,
so a timeout counts as a failure from readiness on (a hung API server right after readiness is
found by the first probe).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's outcome."""

    ok: bool
    latency: float
    """Seconds from connect to the answer (or to the failure)."""
    reason: str = ""
    timed_out: bool = False
    """The connection was accepted but nothing came back in time (the hung-server signature)."""
    hung_up: bool = False
    """The far end closed the connection before we said anything (EOF right after connect)."""


PROBE_SETTLE = 0.05
"""Seconds a probe listens after connecting before it half-closes: an EOF in that time is the far
end hanging up on its own (nothing usable listens in the pod), not an answer to our EOF."""


class _Probe:
    """One probe in flight, driven by loop callbacks (no task): connect, listen a moment,
    half-close, read."""

    __slots__ = (
        "_asked", "_callback", "_half", "_loop", "_settle", "_sock", "_start", "_timeout", "_timer",
    )  # fmt: skip

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        address: str,
        port: int,
        timeout: float,
        callback: Callable[[ProbeResult], None],
        settle: float = PROBE_SETTLE,
    ) -> None:
        self._loop, self._callback, self._timeout = loop, callback, timeout
        self._settle: asyncio.TimerHandle | float | None = settle
        self._half = False
        self._start = time.monotonic()
        self._asked: float | None = None
        """When we half-closed: the latency is the answer to that (the settle is ours)."""
        host = "127.0.0.1" if address in ("localhost", "0.0.0.0") else address
        self._sock: socket.socket | None = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM
        )
        self._sock.setblocking(False)
        self._timer: asyncio.TimerHandle | None = loop.call_later(timeout + settle, self._timed_out)
        err = self._sock.connect_ex((host, port))
        if err == 0:
            self._connected()
        elif err in (errno.EINPROGRESS, errno.EAGAIN):
            loop.add_writer(self._sock.fileno(), self._connect_done)
        else:
            self._finish(False, _refused(err))

    def _connect_done(self) -> None:
        if self._sock is None:
            return
        self._loop.remove_writer(self._sock.fileno())
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._finish(False, _refused(err))
        else:
            self._connected()

    def _connected(self) -> None:
        assert self._sock is not None
        self._loop.add_reader(self._sock.fileno(), self._readable)
        settle = self._settle
        if isinstance(settle, float | int) and settle > 0:
            self._settle = self._loop.call_later(settle, self._half_close)
        else:
            self._half_close()

    def _half_close(self) -> None:
        self._settle = None
        if self._sock is None:
            return
        try:
            # Half-close: kubectl passes the EOF through; the backend closes; kubectl closes us.
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._finish(False, f"probe failed: {exc.strerror or exc}")
            return
        self._half = True
        self._asked = time.monotonic()

    def _readable(self) -> None:
        if self._sock is None:
            return
        try:
            data = self._sock.recv(1)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            data = b""  # a reset proves the far side answered — if we had asked anything
        except OSError as exc:
            self._finish(False, f"probe failed: {exc.strerror or exc}")
            return
        if not data and not self._half:
            self._finish(False, "the far end closed the connection at once", hung_up=True)
            return
        self._finish(True, "")  # data (a greeting) or the answer to our EOF

    def _timed_out(self) -> None:
        self._timer = None
        self._finish(False, f"no answer through the tunnel in {self._timeout:g}s", timed_out=True)

    def cancel(self) -> None:
        """Abandon the probe; its callback is never called."""
        self._callback = _ignore
        self._finish(False, "cancelled")

    def _finish(
        self, ok: bool, reason: str, *, timed_out: bool = False, hung_up: bool = False
    ) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if isinstance(self._settle, asyncio.TimerHandle):
            self._settle.cancel()
            self._settle = None
        fd = sock.fileno()
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        # Close with a reset: no TIME_WAIT left per probe (thousands of them would make every
        # later connect() search longer for a free ephemeral port).
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        sock.close()
        self._callback(
            ProbeResult(
                ok, time.monotonic() - (self._asked or self._start), reason, timed_out, hung_up
            )
        )


_LINGER_RESET = struct.pack("ii", 1, 0)


def _ignore(_result: ProbeResult) -> None:
    pass


def _refused(err: int) -> str:
    if err == errno.ECONNREFUSED:
        return "local port refused the connection"
    return f"probe failed: {os.strerror(err)}"


def start_probe(
    address: str, port: int, timeout: float, callback: Callable[[ProbeResult], None]
) -> _Probe:
    """Start a tunnel probe driven by loop callbacks; ``callback(result)`` runs once, in the loop.

    No task, no coroutine, one timer — so probing a hundred tunnels a second costs little.
    Returns a handle whose ``cancel()`` abandons the probe.
    """
    return _Probe(asyncio.get_running_loop(), address, port, timeout, callback)


class TunnelProber:
    """Decides which Running forwards get a tunnel probe, so the cost stays flat as forwards grow.

    Every ``monitoringInterval`` (one timer, aligned so the probes and their answers share a few
    loop wake-ups) it probes up to ``budget × interval`` forwards, round-robin: with up to that
    many forwards each is probed every interval; with more, each every few intervals. When a
    probe fails, every Running forward of the same cluster is probed at once (``escalate``), so a
    hung API server is seen by all of its forwards within one probe timeout.
    """

    def __init__(
        self,
        interval: Callable[[], float],
        key: Callable[[Any], Any],
        budget: float = 20.0,
        keep_alive: Callable[[], float] = lambda: 60.0,
    ) -> None:
        self._interval = lambda: min(interval(), keep_alive())
        self._keep_alive = keep_alive
        self._key = key
        self.budget = budget
        """Probes per second, at most, in the steady state."""
        self._members: dict[Any, None] = {}
        self._pos = 0
        self._timer: asyncio.TimerHandle | None = None
        self.ticks = 0

    def add(self, runner: Any) -> None:
        """``runner`` is Running: include it in the rotation (idempotent)."""
        if runner not in self._members:
            self._members[runner] = None
            if self._timer is None:
                self._arm()

    def remove(self, runner: Any) -> None:
        """``runner`` left Running (or is probing on its own while Degraded)."""
        self._members.pop(runner, None)
        if not self._members and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def escalate(self, runner: Any) -> None:
        """A probe of ``runner`` failed: probe every other member of its cluster now."""
        key = self._key(runner)
        for other in list(self._members):
            if other is not runner and self._key(other) == key:
                other.probe_now()

    def close(self) -> None:
        """Stop the timer and forget every member."""
        self._members.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        interval = max(0.01, self._interval())
        self._timer = loop.call_at((loop.time() // interval + 1) * interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.ticks += 1
        members = list(self._members)
        if not members:
            return
        # The budget bounds the steady cost; the keep-alive guarantee overrides it: every member
        # gets a probe (a fresh stream through its tunnel) at least once per keep_alive.
        tick = self._interval()
        quota = max(1, int(self.budget * tick), math.ceil(len(members) * tick / self._keep_alive()))
        if len(members) <= quota:
            due = members
        else:
            start = self._pos % len(members)
            due = (members[start:] + members[:start])[:quota]
            self._pos = start + quota
        for runner in due:
            runner.probe_now()
        self._arm()
