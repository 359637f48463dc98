"""One supervisor event stream, many readers: the local UI or printer and every socket client.

The supervisor's ``events()`` has exactly one consumer. :class:`SharedSupervisor` is that
consumer: it wraps a supervisor, implements the same protocol, and copies each event into one
queue per subscriber. The local subscriber (``events()`` of the wrapper) is unbounded, as the
supervisor's own queue is; a remote subscriber is bounded, and one that stops reading is
dropped (``overflowed``) instead of growing memory or slowing anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

_END = object()


class Subscription:
    """One reader's copy of the event stream."""

    def __init__(self, maxsize: int = 0) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.overflowed = False
        """True once events were dropped because the reader fell behind; the stream has ended."""

    def put(self, item: Any) -> None:
        """Queue one event (or the end); a full queue ends this subscription."""
        if self.overflowed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            while not self._queue.empty():  # the reader may be waiting on this very queue
                self._queue.get_nowait()
            self._queue.put_nowait(_END)

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            yield item


class SharedSupervisor:
    """A supervisor whose events any number of readers get, plus a control-socket hook.

    ``on_start``/``on_close`` run after the wrapped supervisor's ``start()``/``shutdown()``
    (the control server starts once every forward exists, and closes after the forwards stopped
    so clients see the final Stopped events).
    """

    def __init__(self, supervisor: Any) -> None:
        self.inner = supervisor
        self._subs: set[Subscription] = set()
        self._ended = False
        self._local = self.subscribe()
        self._pump: asyncio.Task[None] | None = None
        self.on_start: Callable[[], Awaitable[None]] | None = None
        self.on_close: Callable[[], Awaitable[None]] | None = None
        self._stop_handler: Callable[[], None] | None = None

    # -- fan-out --------------------------------------------------------------------------------

    def subscribe(self, maxsize: int = 0) -> Subscription:
        """A new reader of every event from now on (ended at once if the stream has ended)."""
        sub = Subscription(maxsize)
        if self._ended:
            sub.put(_END)
        else:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop copying events to ``sub``."""
        self._subs.discard(sub)

    def _ensure_pump(self) -> None:
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run_pump(), name="fanout")

    async def _run_pump(self) -> None:
        try:
            async for event in self.inner.events():
                for sub in list(self._subs):
                    sub.put(event)
                    if sub.overflowed:
                        log.warning("control: a client fell behind the event stream; dropped")
                        self._subs.discard(sub)
        finally:
            self._ended = True
            for sub in list(self._subs):
                sub.put(_END)
            self._subs.clear()

    # -- stop requests (``kportforward stop`` of the instance, ``run --replace``, ``Q``) -------

    def set_stop_handler(self, handler: Callable[[], None]) -> None:
        """What a client's ``shutdown`` request calls: end the run or quit the dashboard."""
        self._stop_handler = handler

    def request_stop(self) -> bool:
        """Ask the owner to stop the instance; False when nobody registered how."""
        if self._stop_handler is None:
            return False
        self._stop_handler()
        return True

    # -- the supervisor protocol ----------------------------------------------------------------

    @property
    def config(self) -> Any:
        """The wrapped supervisor's config."""
        return self.inner.config

    async def start(self) -> None:
        """Start the fan-out and the forwards, then the control server.

        The server comes up once the supervisor knows every forward, so a client's first snapshot
        is never empty; a client that arrives earlier waits for the socket (``STARTING_GRACE``).
        """
        self._ensure_pump()
        await self.inner.start()
        if self.on_start is not None:
            await self.on_start()

    def events(self) -> AsyncIterator[Any]:
        """The local reader's stream (the UI or ``run``'s printer)."""
        self._ensure_pump()
        return self._local.__aiter__()

    def snapshot(self) -> Any:
        """Every forward's status."""
        return self.inner.snapshot()

    def status(self, name: str) -> Any:
        """One forward's status (KeyError if unknown)."""
        return self.inner.status(name)

    def clusters(self) -> Any:
        """The clusters the forwards use."""
        return self.inner.clusters()

    def log_lines(self, name: str) -> tuple[str, ...]:
        """What kubectl printed for ``name``."""
        return tuple(self.inner.log_lines(name))

    def http_requests(self, name: str) -> Any:
        """The HTTP requests through ``name``'s front door."""
        return self.inner.http_requests(name)

    def traffic_history(self, name: str, seconds: int = 60) -> list[tuple[int, int]]:
        """Bytes (in, out) per second through ``name``'s front door."""
        return list(self.inner.traffic_history(name, seconds))

    async def stop(self, name: str) -> None:
        """Stop one forward."""
        await self.inner.stop(name)

    async def start_forward(self, name: str) -> None:
        """Start or retry one forward."""
        await self.inner.start_forward(name)

    async def restart(self, name: str) -> None:
        """Restart one forward."""
        await self.inner.restart(name)

    async def stop_group(self, group: str) -> None:
        """Stop a group."""
        await self.inner.stop_group(group)

    async def start_group(self, group: str) -> None:
        """Start a group."""
        await self.inner.start_group(group)

    async def reload(self, config: Any) -> None:
        """Apply a config."""
        await self.inner.reload(config)

    async def shutdown(self) -> None:
        """Stop every forward, then close the control server."""
        try:
            await self.inner.shutdown()
            if self._pump is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    async with asyncio.timeout(2.0):
                        await asyncio.shield(self._pump)
        finally:
            if self.on_close is not None:
                await self.on_close()

    def kill_all(self) -> int:
        """SIGKILL every kubectl now."""
        return int(self.inner.kill_all())
