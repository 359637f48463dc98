"""Real TCP servers on 127.0.0.1 that play a pod's container ports: echo; a small HTTP server
that answers with the pod's name (so `curl localhost:PORT` shows which pod served it); a REST API
with an OpenAPI document (``openapi``, see sim/openapi.py); or a real gRPC server with reflection
and health (``grpc``, see sim/grpcsim.py; needs grpcio, imported only when such a backend
starts)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from kportforward.sim import openapi
from kportforward.sim.http import read_request

BACKEND_KINDS = ("echo", "http", "openapi", "grpc")
BACKLOG = 256
"""Listen backlog of every backend. asyncio re-listens a socket it is given (``sock=``) with its
own ``backlog`` argument (default 100), so it is passed to every server below too: 200 concurrent
connections otherwise overflow the queue and stall ≈ 1 s on SYN retransmits."""
GRPC_MISSING = (
    "the grpc backend needs grpcio and grpcio-reflection: pip install 'kportforward[grpc]'"
)


def grpc_available() -> bool:
    """Whether the ``grpc`` backend can run here (grpcio and grpcio-reflection installed)."""
    try:
        import grpc  # noqa: F401
        import grpc_reflection  # noqa: F401
    except ImportError:
        return False
    return True


class Backend:
    """One container port's server. The socket is bound at construction (the port is known at once,
    from any thread); serving starts when :meth:`start` runs on the loop."""

    def __init__(self, kind: str, namespace: str, pod: str, container_port: int) -> None:
        if kind not in BACKEND_KINDS:
            raise ValueError(f"unknown backend kind {kind!r} (use one of {BACKEND_KINDS})")
        if kind == "grpc" and not grpc_available():
            raise ValueError(GRPC_MISSING)
        self.kind = kind
        self.namespace = namespace
        self.pod = pod
        self.container_port = container_port
        self.refusing = False  # set by the refuse fault: dials fail as if nothing listened
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(BACKLOG)
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._echoes: set[asyncio.Transport] = set()
        self._closed = False
        self._grpc: Any = None  # sim.grpcsim.GrpcServer behind a grpc backend

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to dial."""
        return ("127.0.0.1", self.port)

    async def start(self) -> None:
        """Begin serving on the bound socket."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        if self.kind == "echo":
            self._server = await loop.create_server(
                lambda: _Echo(self._echoes), sock=self._sock, backlog=BACKLOG
            )
        elif self.kind == "grpc":
            from kportforward.sim.grpcsim import GrpcServer

            # grpcio cannot serve on a socket we bound, so the bound socket (whose port the world
            # already knows) relays to the gRPC server's own ephemeral port.
            self._grpc = GrpcServer(self.pod, self.namespace, self.container_port)
            self._server = await asyncio.start_server(self._relay, sock=self._sock, backlog=BACKLOG)
        elif self.kind == "openapi":
            self._server = await asyncio.start_server(
                self._openapi, sock=self._sock, backlog=BACKLOG
            )
        else:
            self._server = await asyncio.start_server(self._http, sock=self._sock, backlog=BACKLOG)

    def close(self) -> None:
        """Stop listening and cut every client (the pod is gone)."""
        self._closed = True
        if self._server is not None:
            self._server.close()
        else:
            self._sock.close()
        for writer in list(self._clients):
            writer.transport.abort()
        for transport in list(self._echoes):
            transport.abort()
        if self._grpc is not None:
            self._grpc.stop()

    async def _openapi(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while request := await read_request(reader):
                writer.write(openapi.answer(request, self.pod, self.namespace, self.container_port))
                await writer.drain()
                if not request.keep_alive:
                    break
        except (ConnectionError, OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self._grpc.port)
            self._clients.add(upstream)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self._clients.discard(w)
                    with contextlib.suppress(Exception):
                        w.close()

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        body = f"pod {self.pod} namespace {self.namespace} port {self.container_port}\n".encode()
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    break
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                close = headers.get("connection", "").lower() == "close" or lines[0].endswith(
                    "HTTP/1.0"
                )
                method = lines[0].split(" ", 1)[0]
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    + f"Content-Length: {len(body)}\r\nX-Pod: {self.pod}\r\n".encode()
                    + (b"Connection: close\r\n" if close else b"")
                    + b"\r\n"
                    + (b"" if method == "HEAD" else body)
                )
                await writer.drain()
                if close:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self._clients.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the half-close on."""
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except (ConnectionError, OSError):
        dst.transport.abort()


class _Echo(asyncio.Protocol):
    """Echoes every byte (a protocol, not a stream: no await per chunk); half-close aware."""

    def __init__(self, registry: set[asyncio.Transport]) -> None:
        self._registry = registry
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._registry.add(transport)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    def eof_received(self) -> bool:
        # The client's EOF becomes ours once everything is echoed (write_eof flushes first); with
        # both directions finished the transport closes (after flushing), so no socket lingers.
        assert self._transport is not None
        if self._transport.can_write_eof():
            self._transport.write_eof()
        return False

    def pause_writing(self) -> None:
        assert self._transport is not None
        self._transport.pause_reading()

    def resume_writing(self) -> None:
        assert self._transport is not None
        self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._registry.discard(self._transport)
