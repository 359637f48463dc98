"""One port-forward connection from kubectl: SPDY streams paired into (error, data) per request,
each data stream joined to a real TCP backend (the kubelet's job in a real cluster).

Built on asyncio protocols, not streams: frames are parsed straight out of each received buffer
and payloads handed to the other transport without an await per frame, which is what lets 50 MB go
through kubectl at over 100 MB/s. Backpressure is transport pausing in both directions.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from kportforward.sim import spdy
from kportforward.sim.transport import WebSocketDeframer, ws_frame

# Resolves a container port to a backend address, or raises OSError with the dial error text.
Resolver = Callable[[int], tuple[str, int]]
_HEAD = struct.Struct(">II")
_MAX = spdy.MAX_DATA


@dataclass(eq=False)
class _Request:
    """The two streams kubectl opens for one local connection, and the backend behind them."""

    port: int
    key: str
    error_sid: int = 0
    data_sid: int = 0
    backend: asyncio.Transport | None = None
    pending: list[bytes] = field(default_factory=list)
    pending_fin: bool = False
    finished: bool = False
    held: list[bytes] = field(default_factory=list)  # backend bytes held back while hung


class _BackendProtocol(asyncio.Protocol):
    """The dialled backend connection of one request."""

    def __init__(self, session: PortForwardSession, req: _Request) -> None:
        self.session = session
        self.req = req
        self.slow = False  # our write buffer is full: kubectl is not read meanwhile

    def data_received(self, data: bytes) -> None:
        self.session._backend_data(self.req, data)

    def eof_received(self) -> bool:
        self.session._finish(self.req)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.resume_writing()  # a backend that died while slow must not stall the others
        self.session._finish(self.req)

    def pause_writing(self) -> None:
        if not self.slow:
            self.slow = True
            self.session._backend_slow(+1)

    def resume_writing(self) -> None:
        if self.slow:
            self.slow = False
            self.session._backend_slow(-1)


class PortForwardSession(asyncio.Protocol):
    """Serves one upgraded connection (raw SPDY, or SPDY inside WebSocket messages) until kubectl
    leaves or the simulator cuts it. Takes over the connection's transport with :meth:`attach`."""

    def __init__(
        self,
        pod: str,
        resolve: Resolver,
        *,
        websocket: bool,
        hung: bool,
        idle_timeout: float | None = None,
    ) -> None:
        self.pod = pod
        self._resolve = resolve
        self._codec = spdy.HeaderCodec()
        self._requests: dict[str, _Request] = {}
        self._by_stream: dict[int, _Request] = {}
        self._buf = b""
        self._hung = hung
        self._slow_backends = 0
        self._out_paused = False
        self._closed = False
        self._transport: asyncio.Transport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = loop.create_future()
        self._ws = WebSocketDeframer(self._spdy_bytes, self._send_raw) if websocket else None
        # A kubelet's streaming-connection-idle-timeout (or a load balancer's): the connection is
        # cut once no stream has been opened or carried data for this long; PINGs do not count.
        self._idle_timeout = idle_timeout
        self._active = loop.time()
        self._idle_timer = loop.call_later(idle_timeout, self._idle_check) if idle_timeout else None

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self._closed or not self._idle_timeout:
            return
        loop = asyncio.get_running_loop()
        if self._requests:
            self._active = loop.time()  # a stream is open: not idle
        idle = loop.time() - self._active
        if idle >= self._idle_timeout:
            self.abort()
            return
        self._idle_timer = loop.call_later(self._idle_timeout - idle, self._idle_check)

    # -- the kubectl side ------------------------------------------------------------------
    def attach(self, transport: asyncio.Transport, buffered: bytes = b"") -> None:
        """Take over ``transport`` (after the 101) and process bytes that already arrived."""
        self._transport = transport
        transport.set_protocol(self)
        if buffered:
            self.data_received(buffered)
        self._sync_reading()

    def data_received(self, data: bytes) -> None:
        if self._ws is not None:
            self._ws.feed(data)
            if self._ws.closed:
                self.close()
        else:
            self._spdy_bytes(data)

    def eof_received(self) -> bool:
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def pause_writing(self) -> None:
        self._out_paused = True
        self._sync_reading()

    def resume_writing(self) -> None:
        self._out_paused = False
        self._sync_reading()

    def _send_raw(self, data: bytes) -> None:
        if self._transport is not None and not self._closed:
            self._transport.write(data)

    def _send(self, data: bytes) -> None:
        self._send_raw(ws_frame(data) if self._ws is not None else data)

    # -- faults ----------------------------------------------------------------------------
    def set_hung(self, hung: bool) -> None:
        """Stall (or resume) everything: no frame is read, answered or forwarded while hung."""
        self._hung = hung
        self._sync_reading()
        if not hung:
            for req in list(self._requests.values()):
                held, req.held = req.held, []
                for chunk in held:
                    self._backend_data(req, chunk)
            if self._buf:
                self._spdy_bytes(b"")

    def abort(self) -> None:
        """Cut the connection as a dying node would; kubectl reports `lost connection to pod`."""
        if self._transport is not None:
            self._transport.abort()
        self.close()

    def close(self) -> None:
        """Release backends and the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        for task in self._tasks:
            task.cancel()
        for req in self._requests.values():
            if req.backend is not None:
                req.backend.abort()
        if self._transport is not None:
            self._transport.abort()
        if not self.done.done():
            self.done.set_result(None)

    def _sync_reading(self) -> None:
        # kubectl is read unless hung or a backend cannot keep up; backends are read unless hung
        # or kubectl cannot keep up.
        if self._closed:
            return
        if self._transport is not None:
            if self._hung or self._slow_backends > 0:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()
        stop = self._hung or self._out_paused
        for req in self._requests.values():
            if req.backend is not None and not req.backend.is_closing():
                if stop:
                    req.backend.pause_reading()
                else:
                    req.backend.resume_reading()

    def _backend_slow(self, delta: int) -> None:
        self._slow_backends += delta
        self._sync_reading()

    # -- SPDY ------------------------------------------------------------------------------
    def _spdy_bytes(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        if self._hung:
            self._buf = buf
            return
        pos, n = 0, len(buf)
        while n - pos >= 8 and not self._closed and not self._hung:
            first, second = _HEAD.unpack_from(buf, pos)
            end = pos + 8 + (second & 0xFFFFFF)
            if end > n:
                break
            if first & 0x80000000:
                self._control(first & 0xFFFF, buf[pos:end])
            else:
                self._data(first, second >> 24, buf[pos + 8 : end])
            pos = end
        self._buf = buf[pos:]

    def _control(self, ftype: int, frame: bytes) -> None:
        if ftype == spdy.SYN_STREAM:
            self._syn_stream(frame[8:])
        elif ftype == spdy.PING:
            self._send(frame)
        elif ftype == spdy.RST_STREAM:
            req = self._by_stream.get(spdy.u32(frame, 8) & 0x7FFFFFFF)
            if req is not None:
                self._forget(req)
                if req.backend is not None:
                    req.backend.abort()
        elif ftype == spdy.GOAWAY:
            # kubectl is leaving: drop the connection (a graceful TLS close racing kubectl's own
            # close only produced "cannot switch state" errors).
            self.close()

    def _syn_stream(self, payload: bytes) -> None:
        self._active = asyncio.get_running_loop().time()
        sid = spdy.u32(payload) & 0x7FFFFFFF
        headers = self._codec.decode(payload[10:])
        port = int(headers.get("port", "0") or 0)
        key = headers.get("requestid") or f"port-{port}"
        req = self._requests.get(key)
        if req is None:
            req = self._requests[key] = _Request(port, key)
        self._by_stream[sid] = req
        if headers.get("streamtype") == "error":
            req.error_sid = sid
            self._send(spdy.syn_reply(self._codec, sid))
        else:
            req.data_sid = sid
            # Dial first, reply after: kubectl sends data as soon as it sees the reply.
            task = asyncio.get_running_loop().create_task(self._connect(req))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _data(self, sid: int, flags: int, payload: bytes) -> None:
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
        if flags & spdy.FLAG_FIN and backend.can_write_eof() and not backend.is_closing():
            backend.write_eof()

    async def _connect(self, req: _Request) -> None:
        try:
            host, port = self._resolve(req.port)
            transport, _ = await asyncio.get_running_loop().create_connection(
                lambda: _BackendProtocol(self, req), host, port
            )
        except OSError as exc:
            self._fail(req, exc)
            return
        if self._closed:
            transport.abort()
            return
        req.backend = transport
        self._send(spdy.syn_reply(self._codec, req.data_sid))
        if req.pending:
            transport.write(b"".join(req.pending))
            req.pending.clear()
        if req.pending_fin and transport.can_write_eof():
            transport.write_eof()
        self._sync_reading()

    def _backend_data(self, req: _Request, data: bytes) -> None:
        if self._hung:
            req.held.append(data)
            if req.backend is not None:
                req.backend.pause_reading()
            return
        head = spdy.data_header
        if len(data) <= _MAX:
            self._send(head(req.data_sid, 0, len(data)) + data)
            return
        view = memoryview(data)
        for i in range(0, len(data), _MAX):
            part = view[i : i + _MAX]
            self._send(head(req.data_sid, 0, len(part)) + part)

    def _finish(self, req: _Request) -> None:
        # kubectl closes the local socket only once the error stream is closed too.
        if req.finished or self._closed:
            return
        req.finished = True
        self._send(
            spdy.data_header(req.data_sid, spdy.FLAG_FIN, 0)
            + spdy.data_header(req.error_sid, spdy.FLAG_FIN, 0)
        )
        self._forget(req)

    def _forget(self, req: _Request) -> None:
        req.finished = True
        self._active = asyncio.get_running_loop().time()
        self._requests.pop(req.key, None)
        self._by_stream.pop(req.data_sid, None)
        self._by_stream.pop(req.error_sid, None)

    def _fail(self, req: _Request, exc: OSError) -> None:
        # Anything on the error stream makes kubectl give up the whole forward (its own design).
        text = (
            f"error forwarding port {req.port} to pod {self.pod}, uid : failed to connect to "
            f"localhost:{req.port} inside namespace: {exc}"
        ).encode()
        self._send(
            spdy.syn_reply(self._codec, req.data_sid)
            + spdy.data_header(req.error_sid, 0, len(text))
            + text
            + spdy.data_header(req.error_sid, spdy.FLAG_FIN, 0)
            + spdy.data_header(req.data_sid, spdy.FLAG_FIN, 0)
        )
        self._forget(req)
