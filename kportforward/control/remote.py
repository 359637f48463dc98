"""``RemoteSupervisor``: the supervisor protocol over the control socket.

The dashboard attaches to a running instance through it and cannot tell it from a local
supervisor: ``snapshot()``/``status()``/``clusters()`` answer from a mirror kept current by the
event stream (subscribed in ``start()``), commands are requests, ``events()`` yields the same
records. Differences a caller may rely on:

- ``shutdown()`` *detaches*: the instance and its forwards keep running. ``stop_instance()``
  stops the instance itself.
- ``kill_all()`` kills nothing (the kubectl processes belong to the instance) and returns 0.
- ``reload(config)`` asks the instance to re-read its own config files (the config object is not
  sent: the instance's files are the truth).
- ``log_lines(name)`` returns the lines last fetched and fetches anew in the background (the log
  screen polls it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from kportforward.control import codec
from kportforward.control.client import RemoteError
from kportforward.core.models import ClusterStatus, Config, ForwardStatus, Settings

log = logging.getLogger(__name__)

_END = object()


def config_from_hello(hello: dict[str, Any], statuses: list[ForwardStatus]) -> Config:
    """A Config the UI can render: the instance's forwards and display settings."""
    s = hello.get("settings") or {}
    settings = Settings(
        monitoring_interval=float(s.get("monitoringInterval", 1.0)),
        refresh_rate=float(s.get("refreshRate", 0.25)),
        theme=str(s.get("theme", "dark")),
    )
    return Config(
        forwards=tuple(sorted((st.spec for st in statuses), key=lambda sp: sp.name)),
        settings=settings,
        sources=tuple(hello.get("config") or ()),
    )


class RemoteSupervisor:
    """A running instance, seen through its socket; see the module docstring."""

    def __init__(self, path: str, hello: dict[str, Any], snapshot: dict[str, Any]) -> None:
        self.path = path
        self.hello = hello
        self.pid = int(hello.get("pid") or 0)
        self._statuses = {
            f["name"]: codec.status_from_json(f) for f in snapshot.get("forwards", ())
        }
        self._clusters = {
            c["context"]: codec.cluster_from_json(c) for c in snapshot.get("clusters", ())
        }
        self.config = config_from_hello(hello, list(self._statuses.values()))
        self._logs: dict[str, tuple[str, ...]] = {}
        self._events: asyncio.Queue[Any] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._log_fetch: asyncio.Task[None] | None = None
        self._fetches: dict[str, asyncio.Task[None]] = {}
        self._fetched: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.detached = False
        self.stopped_instance = False
        """True once ``stop_instance()`` asked the instance to stop."""
        self.lost = False
        """True when the instance went away under us (not by our detaching)."""

    @classmethod
    def probe(cls, path: str, timeout: float = 5.0) -> RemoteSupervisor:
        """Say hello and take a first snapshot over a short blocking connection (no loop yet)."""
        from kportforward.control.client import Client

        with Client(path, timeout) as client:
            hello = client.call("hello")
            snap = client.call("snapshot")
        return cls(path, hello, snap)

    # -- connection -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and subscribe: the mirror is refreshed and events start flowing."""
        if self._task is not None:
            return
        if self._events is None:  # events() may have been called first: keep its queue
            self._events = asyncio.Queue()
        if sys.platform == "win32":  # no Unix sockets in Python on Windows (see docs/CONTROL.md)
            raise OSError("no control socket on Windows")
        self._reader, self._writer = await asyncio.open_unix_connection(
            self.path, limit=64 * 1024 * 1024
        )
        self._task = asyncio.get_running_loop().create_task(self._read(), name="remote-reader")
        snap = await self._call("subscribe")
        self._apply_snapshot(snap)

    def _apply_snapshot(self, snap: dict[str, Any]) -> None:
        self._statuses = {f["name"]: codec.status_from_json(f) for f in snap.get("forwards", ())}
        self._clusters = {
            c["context"]: codec.cluster_from_json(c) for c in snap.get("clusters", ())
        }

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                msg = codec.decode_message(line)
                if "event" in msg:
                    try:
                        event = codec.event_from_json(msg["event"])
                    except (codec.ProtocolError, KeyError, TypeError, ValueError) as exc:
                        # A kind this client does not know (a newer instance): skip it, stay.
                        log.debug("remote: skipped an event: %s", exc)
                        continue
                    self._on_event(event)
                    continue
                rid = msg.get("id")
                fut = self._waiting.pop(rid, None) if isinstance(rid, int) else None
                if fut is None or fut.done():
                    continue
                if msg.get("ok"):
                    fut.set_result(msg.get("result"))
                else:
                    err = msg.get("error") or {}
                    fut.set_exception(RemoteError(str(err.get("code")), str(err.get("message"))))
        except (ConnectionError, OSError, codec.ProtocolError, ValueError) as exc:
            log.warning("remote: connection ended: %s", exc)
        finally:
            self.lost = not self.detached
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("the instance went away"))
            self._waiting.clear()
            if self._events is not None:
                self._events.put_nowait(_END)

    def _on_event(self, event: Any) -> None:
        kind = getattr(event, "status", None)
        if kind is not None:
            self._statuses[event.status.name] = event.status
        traffic = getattr(event, "traffic", None)
        if traffic is not None and event.forward in self._statuses:
            from dataclasses import replace

            self._statuses[event.forward] = replace(self._statuses[event.forward], traffic=traffic)
        cluster = getattr(event, "cluster", None)
        if cluster is not None:
            self._clusters[cluster.context] = cluster
        removed = getattr(event, "removed", ())
        for name in removed:
            self._statuses.pop(name, None)
        if self._events is not None:
            self._events.put_nowait(event)

    async def _call(self, op: str, **args: Any) -> Any:
        if self._writer is None:
            raise ConnectionError("not attached")
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        self._writer.write(codec.encode(codec.request(op, rid, **args)))
        await self._writer.drain()
        return await fut

    # -- queries --------------------------------------------------------------------------------

    def snapshot(self) -> tuple[ForwardStatus, ...]:
        """Every forward's status as last reported, sorted by name."""
        return tuple(self._statuses[n] for n in sorted(self._statuses))

    def status(self, name: str) -> ForwardStatus:
        """One forward's status (KeyError if unknown)."""
        return self._statuses[name]

    def clusters(self) -> tuple[ClusterStatus, ...]:
        """The clusters the instance's forwards use."""
        return tuple(self._clusters[c] for c in sorted(self._clusters))

    async def events(self) -> AsyncIterator[Any]:
        """The instance's events, in order, until detached or the instance ends."""
        if self._events is None:
            self._events = asyncio.Queue()
        while True:
            item = await self._events.get()
            if item is _END:
                return
            yield item

    def log_lines(self, name: str) -> tuple[str, ...]:
        """The lines last fetched for ``name``; a fresh fetch starts in the background."""
        if self._writer is not None and (self._log_fetch is None or self._log_fetch.done()):
            with contextlib.suppress(RuntimeError):
                self._log_fetch = asyncio.get_running_loop().create_task(self._fetch_logs(name))
        return self._logs.get(name, ())

    async def _fetch_logs(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self._logs[name] = tuple(await self._call("logs", name=name))

    def http_requests(self, name: str) -> tuple[Any, ...]:
        """The requests last fetched for ``name`` (fresh ones are fetched in the background)."""
        self._background("requests", name)
        return self._fetched.get(("requests", name), ())

    def traffic_history(self, name: str, seconds: int = 60) -> list[tuple[int, int]]:
        """The per-second bytes last fetched for ``name`` (fetched again in the background)."""
        self._background("traffic", name)
        got = self._fetched.get(("traffic", name), ())
        return [(int(a), int(b)) for a, b in got][-seconds:]

    def _background(self, op: str, name: str) -> None:
        task = self._fetches.get(op)
        if self._writer is None or (task is not None and not task.done()):
            return
        with contextlib.suppress(RuntimeError):
            self._fetches[op] = asyncio.get_running_loop().create_task(self._fetch(op, name))

    async def _fetch(self, op: str, name: str) -> None:
        with contextlib.suppress(Exception):
            result = await self._call(op, name=name)
            if op == "requests":
                from kportforward.supervisor.httplog import HttpRequest

                result = tuple(
                    HttpRequest(
                        r["ts"], r["method"], r["path"], r["status"], r["durationMs"] / 1000,
                        r["bytesIn"], r["bytesOut"], r.get("note", ""),
                    )
                    for r in result
                )  # fmt: skip
            self._fetched[(op, name)] = tuple(result)

    # -- commands -------------------------------------------------------------------------------

    async def stop(self, name: str) -> None:
        """Stop one forward of the instance."""
        self._statuses[name] = codec.status_from_json(await self._call("stop", name=name))

    async def start_forward(self, name: str) -> None:
        """Start or retry one forward of the instance."""
        await self._call("start", name=name)

    async def restart(self, name: str) -> None:
        """Restart one forward of the instance."""
        await self._call("restart", name=name)

    async def stop_group(self, group: str) -> None:
        """Stop a group of the instance."""
        await self._call("stop_group", group=group)

    async def start_group(self, group: str) -> None:
        """Start a group of the instance."""
        await self._call("start_group", group=group)

    async def reload(self, config: Config) -> None:
        """Ask the instance to re-read its config files (``config`` is not sent)."""
        await self._call("reload")

    async def shutdown(self) -> None:
        """Detach: the instance and its forwards keep running."""
        self.detached = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 2.0)
        elif self._events is not None:
            self._events.put_nowait(_END)
        self._writer = None

    async def stop_instance(self) -> None:
        """Stop the instance itself (every forward), then detach."""
        with contextlib.suppress(ConnectionError, RemoteError):
            await self._call("shutdown")
            self.stopped_instance = True
        await self.shutdown()

    def kill_all(self) -> int:
        """Nothing to kill here: the kubectl processes are the instance's."""
        return 0
