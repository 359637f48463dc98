"""An event loop in its own thread for front doors, so bulk relaying never shares the dashboard's
loop (docs/PERFORMANCE.md and benchmarks/e2e_frontdoor.py measure when that matters).

Doors are created and driven on this loop; the engine calls them through :meth:`DoorLoop.call`
(from its own loop: ``await door_loop.run(fn, *args)``). Nothing here spawns processes, so the
rule that kubectl is spawned from the main loop's thread (parent-death signal) is untouched.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


class DoorLoop:
    """A daemon thread running an asyncio loop until :meth:`stop`."""

    def __init__(self, name: str = "kportforward-doors") -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> DoorLoop:
        """Start the thread and wait until its loop runs; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
            self._thread.start()
            self._ready.wait(10)
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args)`` on the door loop (awaited there if it returns an awaitable)."""
        assert self.loop is not None, "DoorLoop not started"

        async def run() -> Any:
            result = fn(*args)
            if isinstance(result, Awaitable):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop)

    @overload
    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float = ...) -> T: ...
    @overload
    def call(self, fn: Callable[..., T], *args: Any, timeout: float = ...) -> T: ...
    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30) -> Any:
        """Blocking: ``fn(*args)`` on the door loop, its result (or exception) here."""
        return self.submit(fn, *args).result(timeout)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """From another loop: ``fn(*args)`` on the door loop, awaited without blocking."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def stop(self, timeout: float = 10) -> None:
        """Stop the loop (pending tasks are cancelled) and join the thread."""
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
