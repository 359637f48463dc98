"""The front door's sockets: binding the user's port, and relaying one connection with asyncio
Protocols (pause/resume flow control, half-close both ways, resets passed on as resets)."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol

from kportforward.supervisor.httplog import HttpExchange, HttpRequest

log = logging.getLogger(__name__)


class RelayOwner(Protocol):
    """What a relay reports to (the door)."""

    http_log: bool

    def count_bytes(self, n: int, inbound: bool) -> None:
        """``n`` bytes crossed, from the client (inbound) or to it."""

    def relay_ended(self, conn: Relay) -> None:
        """Both sides of ``conn`` are gone (called once)."""

    def log_request(self, request: HttpRequest) -> None:
        """One HTTP request (or "not HTTP" connection) finished."""


BACKLOG = 1024
"""Listen backlog: connections beyond the pending list wait here (the kernel caps it at somaxconn;
past that, SYNs are dropped and retried by the client's kernel — still never refused)."""
WRITE_HIGH = 256 * 1024
"""Per direction: a transport buffering more than this pauses reading the other side."""

_nofile_raised: tuple[int, int] | None = None


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard limit, once per process; returns (before,
    after). 500 forwards need ≈ 1,100 descriptors before any connection (each door and kubectl)."""
    global _nofile_raised
    if sys.platform == "win32":  # no RLIMIT_NOFILE: Windows' socket handles are not limited so
        return (0, 0)
    import resource

    if _nofile_raised is None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        new = soft
        if hard == resource.RLIM_INFINITY or hard > soft:
            # RLIM_INFINITY as a soft limit is refused on some kernels: cap at a large number.
            new = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            except (ValueError, OSError) as exc:
                log.warning("could not raise the open-file limit from %s: %s", soft, exc)
                new = soft
        _nofile_raised = (soft, new)
        if new != soft:
            log.info("open-file limit raised from %s to %s", soft, new)
    return _nofile_raised


def _bind_targets(address: str) -> list[tuple[socket.AddressFamily, str]]:
    """Where to listen for ``address``: ``localhost`` is 127.0.0.1 and ::1, as kubectl does."""
    if address == "localhost":
        return [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        infos = socket.getaddrinfo(address, None, type=socket.SOCK_STREAM)
        seen = dict.fromkeys((socket.AddressFamily(i[0]), str(i[4][0])) for i in infos)
        return list(seen)
    return [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, str(ip))]


def bind_listeners(address: str, port: int) -> list[socket.socket]:
    """Bind and listen on ``address:port`` now (port 0: one ephemeral port for every family).
    Raises OSError (EADDRINUSE…) and leaves nothing bound; for ``localhost`` an IPv6 loopback the
    host does not have is skipped, but an IPv6 port held by someone else is an error (clients that
    resolve localhost to ::1 would reach them)."""
    socks: list[socket.socket] = []
    try:
        for family, host in _bind_targets(address):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                # SO_REUSEADDR on Linux only lets us past TIME_WAIT, never onto a live listener.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                optional = address == "localhost" and family == socket.AF_INET6
                if optional and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    continue
                raise
            sock.listen(BACKLOG)
            sock.setblocking(False)
            socks.append(sock)
            port = port or sock.getsockname()[1]
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


READ_SIZE = 256 * 1024
"""One read (recv_into) at most; the buffer is shared by every relay on a thread."""

_local = threading.local()
_COPY = sys.version_info >= (3, 12)
"""From 3.12 a transport keeps a view of what it could not send at once (3.11 copies it), so a
shared read buffer must be copied before writing."""


def _read_buffer() -> memoryview:
    """This thread's read buffer. Sharing it is safe: a read is written on (or copied into the
    peer transport's own buffer) before the loop reads anything else, and it saves a fresh
    256 KiB allocation — an mmap/munmap pair — per read."""
    buf: memoryview | None = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(READ_SIZE))
    return buf


class RelaySide(asyncio.BufferedProtocol):
    """One end of a relayed connection; writes what it reads into its peer's transport."""

    __slots__ = ("conn", "eof", "is_client", "peer", "transport")

    def __init__(self, conn: Relay, is_client: bool) -> None:
        self.conn = conn
        self.is_client = is_client
        self.transport: asyncio.Transport | None = None
        self.peer: RelaySide | None = None
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(WRITE_HIGH)
        transport.pause_reading()  # until both ends exist (a server may speak first)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            return  # the other side is gone; our own close follows from its connection_lost
        data = _read_buffer()[:nbytes]
        peer.transport.write(bytes(data) if _COPY else data)
        self.conn.door.count_bytes(nbytes, self.is_client)
        http = self.conn.http
        if http is not None:
            if self.is_client:
                http.client_data(bytes(data))
            else:
                http.server_data(bytes(data))

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            if peer.eof:
                peer.transport.close()  # both directions are done: close after flushing
                return False
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
        if not self.is_client:
            self.conn.tunnel_ended = True
        return True  # keep writing the other direction (half-close)

    def pause_writing(self) -> None:
        # Our transport is full: stop reading the side that fills it (bounded memory).
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            if exc is None:
                peer.transport.close()  # flush what is buffered, then FIN
            else:
                peer.transport.abort()  # pass a reset on as a reset
        if not self.is_client and not self.conn.done:
            self.conn.tunnel_ended = True
        self.conn.lost()


def close_cleanly(sock: socket.socket) -> None:
    """Close a held connection with a FIN, not a reset: discard what the client already sent
    (unread bytes at close() make the kernel answer RST)."""
    try:
        for _ in range(64):  # bounded: a client still sending gets its reset
            if not sock.recv(65536):
                break
    except OSError:
        pass
    sock.close()


def side_factory(side: RelaySide) -> Callable[[], RelaySide]:
    """A protocol factory handing out ``side`` (the relay is built before its transports)."""
    return lambda: side


class Relay:
    """A relayed connection: both sides, its tunnel generation, its HTTP exchange."""

    __slots__ = (
        "client", "counted", "done", "door", "generation", "http", "tunnel_ended", "upstream",
    )  # fmt: skip

    def __init__(self, door: RelayOwner, generation: int) -> None:
        self.door = door
        self.generation = generation
        self.client = RelaySide(self, True)
        self.upstream = RelaySide(self, False)
        self.client.peer = self.upstream
        self.upstream.peer = self.client
        self.http: HttpExchange | None = (
            HttpExchange(door.log_request, time.time) if door.http_log else None
        )
        self.done = False
        self.tunnel_ended = False  # kubectl's side closed (normally, or because kubectl died)
        self.counted = False  # already counted as ended with the tunnel (open at hold())

    def start(self) -> None:
        """Both ends exist: let bytes flow."""
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.resume_reading()

    def lost(self) -> None:
        if self.done:
            return
        self.done = True
        if self.http is not None:
            self.http.closed()
        self.door.relay_ended(self)

    def abort(self) -> None:
        """Cut both ends now (the door is closing)."""
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.abort()
