"""The control socket a running instance serves: requests in, replies and events out.

Security: the socket is created 0600 (under a umask, so there is no moment it is open) inside a
0700 directory, and on Linux each connection's peer uid is checked with ``SO_PEERCRED``; another
user is told no and disconnected. Replies hold forward statuses, cluster names and kubectl's own
lines — never credentials, kubeconfig contents or the environment. A malformed request gets an
error reply and the connection stays usable; one over :data:`MAX_REQUEST_BYTES` gets an error and
is closed (the stream cannot be resynchronised); nothing a client sends can end the instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kportforward.control import codec
from kportforward.control.codec import MAX_REQUEST_BYTES, ProtocolError
from kportforward.control.fanout import SharedSupervisor
from kportforward.control.paths import InstanceInfo

log = logging.getLogger(__name__)

MAX_CLIENTS = 128
SUBSCRIBER_BACKLOG = 10_000
"""Events a subscriber may fall behind by before it is dropped."""


def peer_uid(sock: socket.socket | None) -> int | None:
    """The connecting process's uid (Linux ``SO_PEERCRED``); None where the OS cannot say."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    fmt = "3i"
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt))
    _pid, uid, _gid = struct.unpack(fmt, raw)
    return int(uid)


class ControlServer:
    """Serves one instance's supervisor on a Unix socket; see the module docstring."""

    def __init__(
        self,
        shared: SharedSupervisor,
        path: Path,
        info: InstanceInfo,
        reload: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.shared = shared
        self.path = path
        self.info = info
        self._reload = reload
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Bind the socket (a stale file from a dead owner is replaced) and accept clients."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # only the lock holder gets here, so the file is a dead owner's
        old = os.umask(0o177)
        try:
            if sys.platform == "win32":  # serve() does not start a server there
                raise OSError("no control socket on Windows")
            self._server = await asyncio.start_unix_server(
                self._accept, path=str(self.path), limit=MAX_REQUEST_BYTES + 1
            )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        log.info("control: serving %s", self.path)

    async def close(self) -> None:
        """Stop accepting, end every connection, remove the socket file."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=2.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- connections ----------------------------------------------------------------------------

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._clients.add(task)
        task.add_done_callback(self._clients.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        pump: asyncio.Task[None] | None = None
        sub = None
        try:
            uid = peer_uid(writer.get_extra_info("socket"))
            if uid is not None and sys.platform != "win32" and uid != os.getuid():
                log.warning("control: refused a connection from uid %d", uid)
                await _send(writer, codec.error_reply(None, "forbidden", "not the owning user"))
                return
            if len(self._clients) > MAX_CLIENTS:
                await _send(writer, codec.error_reply(None, "busy", "too many clients"))
                return
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():  # a last request without its newline
                        await self._answer(writer, exc.partial)
                    return
                except asyncio.LimitOverrunError:
                    await _send(writer, codec.error_reply(
                        None, "too_large", f"request over {MAX_REQUEST_BYTES} bytes"))  # fmt: skip
                    return
                if not line.strip():
                    continue
                subscribe, rid = await self._answer(writer, line)
                if subscribe:
                    if pump is None:
                        sub = self.shared.subscribe(SUBSCRIBER_BACKLOG)
                        pump = asyncio.get_running_loop().create_task(self._stream(sub, writer))
                    # Written before the pump first runs: the snapshot precedes every event.
                    await _send(writer, codec.reply(rid, self._snapshot()))
        except (ConnectionError, OSError):
            pass  # the client went away
        finally:
            if sub is not None:
                self.shared.unsubscribe(sub)
            if pump is not None:
                pump.cancel()
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, line: bytes) -> tuple[bool, Any]:
        """Reply to one request line; (True, id) when the client asked to subscribe."""
        try:
            req = codec.decode_request(line)
        except ProtocolError as exc:
            await _send(writer, codec.error_reply(exc.request_id, exc.code, exc.message))
            return False, None
        rid = req.get("id")
        op = req["op"]
        if op == "subscribe":
            return True, rid  # the snapshot reply is sent once the subscription exists
        try:
            result = await self._dispatch(op, req)
        except KeyError as exc:
            known = ", ".join(s.name for s in self.shared.snapshot()) or "none"
            message = f"no {exc.args[0]}; known forwards: {known}"
            await _send(writer, codec.error_reply(rid, "unknown_forward", message))
            return False, rid
        except Exception as exc:  # never let one request end the instance
            log.exception("control: %s failed", op)
            await _send(writer, codec.error_reply(rid, "internal", f"{type(exc).__name__}: {exc}"))
            return False, rid
        await _send(writer, codec.reply(rid, result))
        return False, rid

    def _snapshot(self) -> dict[str, Any]:
        return {
            "forwards": [codec.status_to_json(s) for s in self.shared.snapshot()],
            "clusters": [codec.cluster_to_json(c) for c in self.shared.clusters()],
            "now": time.time(),
        }

    async def _dispatch(self, op: str, req: dict[str, Any]) -> Any:
        shared = self.shared
        name = req.get("name", "")
        if name and name not in {s.name for s in shared.snapshot()}:
            raise KeyError(f"forward '{name}'")
        if op == "hello":
            settings = shared.config.settings
            return {
                **asdict(self.info),
                "protocol": codec.PROTOCOL_VERSION,
                "settings": {
                    "monitoringInterval": settings.monitoring_interval,
                    "refreshRate": settings.refresh_rate,
                    "theme": settings.theme,
                },
                "warnings": [str(w) for w in shared.config.warnings],
            }
        if op == "snapshot":
            return self._snapshot()
        if op == "status":
            return codec.status_to_json(shared.status(name))
        if op == "clusters":
            return [codec.cluster_to_json(c) for c in shared.clusters()]
        if op == "logs":
            return list(shared.log_lines(name))
        if op == "requests":  # the front door's HTTP request log (rest/web forwards)
            return [r.as_json() for r in shared.http_requests(name)]
        if op == "traffic":  # bytes (in, out) per second through the door, oldest first
            return [list(pair) for pair in shared.traffic_history(name)]
        if op in ("start", "stop", "restart"):
            verb = {"start": shared.start_forward, "stop": shared.stop, "restart": shared.restart}
            await verb[op](name)
            return codec.status_to_json(shared.status(name))
        if op in ("start_group", "stop_group"):
            group = req["group"]
            members = [s.name for s in shared.snapshot() if s.spec.group == group]
            if not members:
                raise KeyError(f"group '{group}'")
            await (shared.start_group if op == "start_group" else shared.stop_group)(group)
            return members
        if op == "reload":
            if self._reload is None:
                raise RuntimeError("this instance cannot reload")
            return {"message": await self._reload()}
        if op == "shutdown":
            if not shared.request_stop():
                raise RuntimeError("this instance cannot be stopped from a client")
            return {"stopping": True, "pid": os.getpid()}
        raise AssertionError(op)  # pragma: no cover - decode_request checked the op

    async def _stream(self, sub: Any, writer: asyncio.StreamWriter) -> None:
        try:
            async for event in sub:
                await _send(writer, codec.event_message(codec.event_to_json(event)))
            if sub.overflowed:
                await _send(writer, codec.error_reply(None, "overflow", "fell behind; resubscribe"))
            with contextlib.suppress(Exception):
                writer.close()
        except (ConnectionError, OSError):
            pass


async def _send(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(codec.encode(obj))
    await writer.drain()


def control_supported() -> bool:
    """True where this Python has Unix sockets (not on Windows today)."""
    return hasattr(socket, "AF_UNIX") and sys.platform != "win32"
