"""A small blocking client of the control socket, for ``status``, ``wait``, ``start``… and MCP.

Blocking sockets, no asyncio and nothing of the supervisor: these commands must answer within a
few tens of milliseconds including interpreter start.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import deque
from typing import Any

from kportforward.control import codec
from kportforward.control.codec import ProtocolError
from kportforward.control.paths import InstanceInfo, find_instance
from kportforward.errors import KPortForwardError

MAX_LINE = 64 * 1024 * 1024
"""A reply this long is not from a kportforward (a snapshot of 10 000 forwards is ~10 MB)."""


class RemoteError(Exception):
    """The instance answered a request with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InstanceGone(ConnectionError):
    """The connection to the instance ended."""


class Client:
    """One connection to a running instance."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        family = getattr(socket, "AF_UNIX", None)  # none in Python on Windows (docs/CONTROL.md)
        if family is None:
            raise OSError("no control socket on this platform")
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError:
            self._sock.close()
            raise
        self._buf = bytearray()
        self._next_id = 0
        self.pending_events: deque[dict[str, Any]] = deque()

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_line(self, deadline: float | None) -> bytes | None:
        """The next line, or None when ``deadline`` (monotonic) passes first."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[: nl + 1])
                del self._buf[: nl + 1]
                return line
            if len(self._buf) > MAX_LINE:
                raise ProtocolError("bad_reply", "reply too long")
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._sock.settimeout(left)
            else:
                self._sock.settimeout(self.timeout)
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                if deadline is None:
                    raise
                return None
            if not chunk:
                raise InstanceGone("the instance closed the connection")
            self._buf += chunk

    def call(self, op: str, **args: Any) -> Any:
        """Send one request and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        rid = self._next_id
        self._sock.sendall(codec.encode(codec.request(op, rid, **args)))
        deadline = time.monotonic() + self.timeout
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise TimeoutError(f"no answer to {op} in {self.timeout:.0f}s")
            msg = codec.decode_message(line)
            if "event" in msg:
                self.pending_events.append(msg["event"])
                continue
            if msg.get("id") not in (rid, None):
                continue
            if not msg.get("ok"):
                err = msg.get("error") or {}
                raise RemoteError(str(err.get("code", "error")), str(err.get("message", "")))
            return msg.get("result")

    def next_event(self, deadline: float) -> dict[str, Any] | None:
        """The next pushed event (after ``subscribe``), or None when ``deadline`` passes."""
        if self.pending_events:
            return self.pending_events.popleft()
        while True:
            line = self._read_line(deadline)
            if line is None:
                return None
            msg = codec.decode_message(line)
            if "event" in msg:
                return dict(msg["event"])
            if msg.get("ok") is False:
                err = msg.get("error") or {}
                raise RemoteError(str(err.get("code", "error")), str(err.get("message", "")))


STARTING_GRACE = 10.0
"""How long a client waits for an instance that holds the lock but serves no socket yet (it
is checking credentials, which has its own 10 s bound)."""


def connect(
    config_arg: str | None, timeout: float = 10.0, grace: float = STARTING_GRACE
) -> tuple[Client, InstanceInfo] | None:
    """A connection to the instance for ``config_arg``; None when none runs (or it ended)."""
    info = find_instance(config_arg)
    deadline = time.monotonic() + grace
    while info is not None:
        try:
            return Client(info.socket, timeout), info
        except (FileNotFoundError, ConnectionRefusedError):
            # Locked but not serving yet (starting) or any more (stopping): look again.
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
            info = find_instance(config_arg)
    return None


class NotRunningError(KPortForwardError):
    """No instance runs on this config (exit 3, so scripts can tell it from a failure)."""

    exit_code = 3


def connect_or_raise(config_arg: str | None, timeout: float = 10.0) -> tuple[Client, InstanceInfo]:
    """Like :func:`connect`, raising :class:`NotRunningError` when none runs."""
    found = connect(config_arg, timeout)
    if found is None:
        raise NotRunningError(*not_running_message(config_arg))
    return found


def not_running_message(config_arg: str | None) -> tuple[str, str]:
    """What to say when no instance runs on this config, naming the ones that run on others."""
    from kportforward.control.paths import live_instances

    others = live_instances()
    if not others:
        return (
            "no kportforward is running on this config",
            "start one with `kportforward run` (or `kportforward wait --start`)",
        )
    configs = "; ".join(f"pid {i.pid}: {i.config[-1] if i.config else '?'}" for i in others)
    return (
        f"no kportforward is running on this config ({len(others)} on others: {configs})",
        "pass the same --config as the instance",
    )
