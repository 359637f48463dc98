"""A listener that accepts every connection and closes it at once: an app whose port is open but
which hangs up before reading anything (kubectl relays the EOF: the client sees ``b''`` at once).

One per simulator, bound lazily by the EOF fault (``Simulator.eof_backend``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket


class _HangUp(asyncio.Protocol):
    """Closes the connection the moment it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class HangUpListener:
    """Bound at construction (the port is known at once); serving starts on the running loop."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self._sock.setblocking(False)
        self.address: tuple[str, int] = ("127.0.0.1", self._sock.getsockname()[1])
        self._server: asyncio.Server | None = None
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(_HangUp, sock=self._sock)

    def close(self) -> None:
        """Stop listening."""
        self._task.cancel()
        if self._server is not None:
            self._server.close()
        else:
            with contextlib.suppress(OSError):
                self._sock.close()
