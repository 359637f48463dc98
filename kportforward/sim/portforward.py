"""One port-forward connection from kubectl: SPDY streams paired into (error, data) per request,
each data stream joined to a real TCP backend (the kubelet's job in a real cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from kportforward.sim import spdy
from kportforward.sim.transport import RawTransport

log = logging.getLogger(__name__)

# Resolves a container port to a backend address, or raises OSError with the dial error text.
Resolver = Callable[[int], tuple[str, int]]


@dataclass
class _Request:
    """The two streams kubectl opens for one local connection."""

    port: int
    error_sid: int = 0
    data_sid: int = 0
    backend: asyncio.StreamWriter | None = None
    pending: list[bytes] = field(default_factory=list)
    pending_fin: bool = False
    finished: bool = False
    task: asyncio.Task[None] | None = None


class PortForwardSession:
    """Serves one upgraded connection until kubectl leaves or the simulator cuts it."""

    def __init__(
        self,
        conn: RawTransport,
        pod: str,
        resolve: Resolver,
        gate: asyncio.Event,
    ) -> None:
        self.conn = conn
        self.pod = pod
        self._resolve = resolve
        self._gate = gate  # cleared while the simulator "hangs": every frame waits
        self._codec = spdy.HeaderCodec()
        self._requests: dict[str, _Request] = {}
        self._by_stream: dict[int, _Request] = {}
        self._closed = False

    async def run(self) -> None:
        """Read frames until EOF, GOAWAY or an abort; then release every backend."""
        conn, gate = self.conn, self._gate
        try:
            while True:
                head = await conn.readexactly(8)
                is_control, kind, flags, length = spdy.parse_head(head)
                payload = await conn.readexactly(length) if length else b""
                if not gate.is_set():
                    await gate.wait()
                if is_control:
                    if not self._control(kind, flags, head, payload):
                        break
                else:
                    await self._data(kind, flags, payload)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.close()

    def abort(self) -> None:
        """Cut the connection as a dying node would; kubectl reports `lost connection to pod`."""
        self.conn.abort()
        self.close()

    def close(self) -> None:
        """Release backends and pumps (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for req in self._requests.values():
            if req.task is not None:
                req.task.cancel()
            if req.backend is not None:
                req.backend.transport.abort()
        self.conn.abort()

    def _control(self, ftype: int, flags: int, head: bytes, payload: bytes) -> bool:
        if ftype == spdy.SYN_STREAM:
            self._syn_stream(payload)
        elif ftype == spdy.PING:
            self.conn.write(head + payload)
        elif ftype == spdy.RST_STREAM:
            req = self._by_stream.get(spdy.u32(payload) & 0x7FFFFFFF)
            if req is not None and req.backend is not None:
                req.backend.transport.abort()
        elif ftype == spdy.GOAWAY:
            return False
        return True

    def _syn_stream(self, payload: bytes) -> None:
        sid = spdy.u32(payload) & 0x7FFFFFFF
        headers = self._codec.decode(payload[10:])
        port = int(headers.get("port", "0") or 0)
        key = headers.get("requestid") or f"port-{port}"
        req = self._requests.get(key)
        if req is None:
            req = self._requests[key] = _Request(port)
        self._by_stream[sid] = req
        if headers.get("streamtype") == "error":
            req.error_sid = sid
            self.conn.write(spdy.syn_reply(self._codec, sid))
        else:
            req.data_sid = sid
            # Dial first, reply after: kubectl sends data as soon as it sees the reply.
            req.task = asyncio.get_running_loop().create_task(self._connect(req))

    async def _data(self, sid: int, flags: int, payload: bytes) -> None:
        req = self._by_stream.get(sid)
        if req is None or sid != req.data_sid:
            return  # the error stream carries only kubectl's empty FIN
        backend = req.backend
        if backend is None:
            if payload:
                req.pending.append(payload)
            req.pending_fin = req.pending_fin or bool(flags & spdy.FLAG_FIN)
            return
        if payload:
            backend.write(payload)
        if flags & spdy.FLAG_FIN and backend.can_write_eof():
            with contextlib.suppress(OSError):
                backend.write_eof()
        if payload:
            with contextlib.suppress(ConnectionError):
                await backend.drain()

    async def _connect(self, req: _Request) -> None:
        conn, gate = self.conn, self._gate
        try:
            host, port = self._resolve(req.port)
            reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        except OSError as exc:
            self._fail(req, exc)
            return
        req.backend = writer
        conn.write(spdy.syn_reply(self._codec, req.data_sid))
        if req.pending:
            writer.write(b"".join(req.pending))
            req.pending.clear()
        if req.pending_fin and writer.can_write_eof():
            writer.write_eof()
        sid = req.data_sid
        try:
            while True:
                chunk = await reader.read(spdy.MAX_DATA)
                if not gate.is_set():
                    await gate.wait()
                if not chunk:
                    break
                conn.write(spdy.data_header(sid, 0, len(chunk)) + chunk)
                await conn.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
        self._finish(req)

    def _finish(self, req: _Request) -> None:
        # kubectl closes the local socket only once the error stream is closed too.
        if req.finished or self._closed:
            return
        req.finished = True
        self.conn.write(
            spdy.data_header(req.data_sid, spdy.FLAG_FIN, 0)
            + spdy.data_header(req.error_sid, spdy.FLAG_FIN, 0)
        )

    def _fail(self, req: _Request, exc: OSError) -> None:
        # Anything on the error stream makes kubectl give up the whole forward (its own design).
        text = (
            f"error forwarding port {req.port} to pod {self.pod}, uid : failed to connect to "
            f"localhost:{req.port} inside namespace: {exc}"
        ).encode()
        req.finished = True
        self.conn.write(
            spdy.syn_reply(self._codec, req.data_sid)
            + spdy.data_header(req.error_sid, 0, len(text))
            + text
            + spdy.data_header(req.error_sid, spdy.FLAG_FIN, 0)
            + spdy.data_header(req.data_sid, spdy.FLAG_FIN, 0)
        )
