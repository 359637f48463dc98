"""The front door: kportforward owns a forward's local port and relays each connection to kubectl.

kubectl listens on a port of its own choosing (``LOCAL`` 0, read from its ``Forwarding from``
line); the door binds the user's port once and keeps it for the life of the forward, so restarts
never answer "connection refused":

- **held** (:meth:`FrontDoor.hold`, and at birth until the first :meth:`~FrontDoor.set_target`):
  new connections are accepted into a bounded pending list (then left in the kernel's accept queue)
  and released when the tunnel is ready; one waiting longer than ``hold_timeout`` is closed, with
  the reason logged and counted as failed;
- **closed** (:meth:`~FrontDoor.close_listener`, for Stopped/Failed): the listener is gone, so a
  client gets "refused" — the honest answer; :meth:`~FrontDoor.reopen` binds again;
- connections open on a dying tunnel end as they must and are counted (``ended_with_tunnel``).

Relaying uses asyncio Protocols with pause/resume flow control (no task per chunk): about 3 KiB
per open connection, and a client that never reads stops the tunnel's side from being read, so
memory stays bounded by the transports' high-water marks. Half-closes pass through both ways.
Probes must not come through here: they go to kubectl's own port, so they never count as traffic.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections import deque
from collections.abc import Callable

from kportforward.core.models import Traffic
from kportforward.supervisor.doorio import (
    BACKLOG,
    Relay,
    bind_listeners,
    close_cleanly,
    raise_nofile_limit,
    side_factory,
)
from kportforward.supervisor.httplog import HttpRequest

__all__ = ["FrontDoor", "HttpRequest", "Traffic", "raise_nofile_limit"]

log = logging.getLogger(__name__)

MAX_PENDING = 256
"""Connections accepted and held while the tunnel restarts; more stay in the accept queue."""
REQUEST_LOG = 500
"""Requests kept per door (a ring)."""
RETRY_CONNECT = 0.05
"""Seconds between attempts when kubectl's port refuses while the door is open (it is dying and
the engine's hold() is on its way; until then the connection waits like a held one)."""
DYING_GRACE = 0.2
"""Connections whose tunnel side closed this long before hold() count as ended with the tunnel.
The engine calls hold() within milliseconds of kubectl's exit; a dying kubectl's connections all
close at that instant, and nothing at the socket level tells them from one that completed
normally just before, so the count is "open at the moment the tunnel died", give or take those."""


class FrontDoor:
    """One forward's listener on the user's port, relaying to the current kubectl.

    The listening sockets are bound by the constructor (OSError such as EADDRINUSE is raised
    there, so the port allocator can move the forward); accepting starts with :meth:`start`.
    All methods must be called on the loop the door was started on.
    """

    __slots__ = (
        "_accepting", "_bytes_in", "_bytes_out", "_closed", "_conns", "_ended_with_tunnel",
        "_failed", "_generation", "_history", "_hold_reason", "_hold_timer", "_loop",
        "_notified_at", "_notify", "_on_traffic", "_opened", "_pending", "_recent_cuts",
        "_requests", "_sec", "_sec_in", "_sec_out", "_socks", "_target", "_tasks", "address",
        "hold_timeout", "http_log", "max_pending", "name", "port",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        address: str = "127.0.0.1",
        port: int = 0,
        *,
        hold_timeout: float = 10.0,
        http_log: bool = False,
        on_traffic: Callable[[Traffic], None] | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.name = name
        self.address = address
        self.hold_timeout = hold_timeout
        self.http_log = http_log
        self.max_pending = max_pending
        self._on_traffic = on_traffic
        self._socks = bind_listeners(address, port)
        self.port: int = self._socks[0].getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False
        self._target: tuple[str, int] | None = None
        self._hold_reason = "waiting for the tunnel"
        self._generation = 0
        self._pending: deque[tuple[socket.socket, float]] = deque()
        self._hold_timer: asyncio.TimerHandle | None = None
        self._conns: set[Relay] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Created on first use: an idle door should cost little (500 forwards, most idle).
        self._requests: deque[HttpRequest] | None = None
        self._recent_cuts: deque[float] | None = None
        self._closed = False
        # counters
        self._opened = self._failed = self._ended_with_tunnel = 0
        self._bytes_in = self._bytes_out = 0
        self._sec = 0
        self._sec_in = self._sec_out = 0  # bytes in the current second
        self._history: deque[tuple[int, int, int]] | None = None  # (second, in, out)
        self._notify: asyncio.TimerHandle | None = None
        self._notified_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin accepting (connections wait until :meth:`set_target`)."""
        self._loop = asyncio.get_running_loop()
        self._resume_accepting()

    @property
    def listening(self) -> bool:
        """Whether the user's port is bound (False after :meth:`close_listener`)."""
        return bool(self._socks)

    @property
    def target(self) -> tuple[str, int] | None:
        """kubectl's (host, port) connections go to, or None while held."""
        return self._target

    def set_target(self, target: tuple[str, int]) -> None:
        """The tunnel is ready at ``target`` (kubectl's own listener): release held connections
        and relay new ones there."""
        if target != self._target:
            self._generation += 1
        self._target = target
        self._cancel_hold_timer()
        while self._pending:
            sock, since = self._pending.popleft()
            self._relay(sock, since)
        self._resume_accepting()
        self._changed()

    def hold(self, reason: str = "the tunnel is restarting") -> None:
        """The tunnel is going away (any cause): new connections wait, up to ``hold_timeout``.
        Connections still open on the old tunnel, and those it cut just now, count as ended
        with the tunnel."""
        if self._target is not None:
            self._generation += 1
            now = time.monotonic()
            cuts = self._recent_cuts or ()
            self._ended_with_tunnel += sum(1 for t in cuts if now - t <= DYING_GRACE)
            for conn in self._conns:  # still open: they end with it
                conn.counted = True
            self._ended_with_tunnel += len(self._conns)
        self._recent_cuts = None
        self._target = None
        self._hold_reason = reason
        self._changed()

    def close_listener(self, reason: str = "the forward stopped") -> None:
        """Stop listening (Stopped/Failed): new clients are refused; held ones are closed."""
        self._pause_accepting()
        for sock in self._socks:
            sock.close()
        self._socks = []
        self._drop_pending(f"{reason}; closed")
        self.hold(reason)

    def reopen(self) -> None:
        """Listen on the same port again (raises OSError if someone else took it meanwhile)."""
        if not self._socks:
            self._socks = bind_listeners(self.address, self.port)
            self._resume_accepting()

    async def close(self) -> None:
        """Release the port and cut everything (the forward is removed or we are shutting down)."""
        self._closed = True
        self.close_listener("kportforward is shutting down")
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._conns):
            conn.abort()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let the transports' connection_lost run
        if self._notify is not None:
            self._notify.cancel()
            self._notify = None

    # -- what it saw ----------------------------------------------------------------------------

    def stats(self) -> Traffic:
        """The counters now."""
        self._roll(int(time.monotonic()))
        last = self._history[-1] if self._history else None
        recent = last is not None and last[0] == self._sec - 1
        return Traffic(
            opened=self._opened,
            active=len(self._conns),
            waiting=len(self._pending),
            failed=self._failed,
            ended_with_tunnel=self._ended_with_tunnel,
            bytes_in=self._bytes_in,
            bytes_out=self._bytes_out,
            rate_in=float(last[1]) if recent and last else 0.0,
            rate_out=float(last[2]) if recent and last else 0.0,
        )

    def history(self, seconds: int = 60) -> list[tuple[int, int]]:
        """Bytes (in, out) per second for the last ``seconds`` complete seconds, oldest first
        (the Details sparkline)."""
        self._roll(int(time.monotonic()))
        by_sec = {s: (i, o) for s, i, o in self._history or ()}
        return [by_sec.get(s, (0, 0)) for s in range(self._sec - seconds, self._sec)]

    def log_request(self, request: HttpRequest) -> None:
        """Keep one finished request in the ring (from a relay's HTTP exchange)."""
        if self._requests is None:
            self._requests = deque(maxlen=REQUEST_LOG)
        self._requests.append(request)

    def buffered(self) -> int:
        """Bytes waiting in the door's write buffers now (bounded by back-pressure)."""
        total = 0
        for conn in self._conns:
            for side in (conn.client, conn.upstream):
                if side.transport is not None:
                    total += side.transport.get_write_buffer_size()
        return total

    def requests(self) -> tuple[HttpRequest, ...]:
        """The HTTP request log, oldest first (empty unless ``http_log``)."""
        return tuple(self._requests or ())

    # -- accepting ------------------------------------------------------------------------------

    def _resume_accepting(self) -> None:
        if self._loop is None or self._accepting or self._closed:
            return
        self._accepting = True
        for sock in self._socks:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _pause_accepting(self) -> None:
        if self._loop is not None and self._accepting:
            for sock in self._socks:
                self._loop.remove_reader(sock.fileno())
        self._accepting = False

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(BACKLOG):
            if self._target is None and len(self._pending) >= self.max_pending:
                self._pause_accepting()  # the rest wait in the kernel's accept queue
                return
            try:
                sock, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: stop for a moment rather than spin on a readable socket.
                    log.warning("%s: cannot accept on port %s: %s", self.name, self.port, exc)
                    self._pause_accepting()
                    assert self._loop is not None
                    self._loop.call_later(1.0, self._resume_accepting)
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                raise
            sock.setblocking(False)
            now = time.monotonic()
            if self._target is None:
                self._hold(sock, now)
            else:
                self._relay(sock, now)

    def _hold(self, sock: socket.socket, since: float) -> None:
        self._pending.append((sock, since))
        if self._hold_timer is None:
            self._arm_hold_timer()
        self._changed()

    def _arm_hold_timer(self) -> None:
        if self._pending and self._loop is not None:
            due = self._pending[0][1] + self.hold_timeout
            self._hold_timer = self._loop.call_at(
                self._loop.time() + max(0.0, due - time.monotonic()), self._hold_expired
            )
        else:
            self._hold_timer = None

    def _cancel_hold_timer(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

    def _hold_expired(self) -> None:
        self._hold_timer = None
        now = time.monotonic()
        expired = 0
        while self._pending and now - self._pending[0][1] >= self.hold_timeout - 1e-3:
            close_cleanly(self._pending.popleft()[0])
            expired += 1
        if expired:
            self._failed += expired
            log.warning(
                "%s: closed %d connection%s on port %s that waited %g s for the tunnel (%s)",
                self.name, expired, "" if expired == 1 else "s", self.port, self.hold_timeout,
                self._hold_reason,
            )  # fmt: skip
            self._resume_accepting()
            self._changed()
        self._arm_hold_timer()

    def _drop_pending(self, why: str) -> None:
        self._cancel_hold_timer()
        if self._pending:
            n = len(self._pending)
            for sock, _ in self._pending:
                close_cleanly(sock)
            self._pending.clear()
            self._failed += n
            log.warning("%s: %d waiting connection%s: %s", self.name, n, "s"[: n - 1], why)
            self._changed()

    # -- relaying -------------------------------------------------------------------------------

    def _relay(self, sock: socket.socket, since: float) -> None:
        task = asyncio.ensure_future(self._connect(sock, since))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, sock: socket.socket, since: float) -> None:
        assert self._loop is not None
        loop = self._loop
        while True:
            target, generation = self._target, self._generation
            if target is None:
                self._hold(sock, since)
                return
            conn = Relay(self, generation)
            try:
                await loop.create_connection(side_factory(conn.upstream), target[0], target[1])
            except OSError as exc:
                if self._target is None or self._generation != generation:
                    continue  # the tunnel moved on meanwhile: follow it
                if time.monotonic() - since >= self.hold_timeout:
                    sock.close()
                    self._failed += 1
                    log.warning("%s: a connection on port %s could not reach kubectl at %s:%s "
                                "for %.0f s (%s); closed", self.name, self.port, *target,
                                self.hold_timeout, exc)  # fmt: skip
                    self._changed()
                    return
                await asyncio.sleep(RETRY_CONNECT)
                continue
            except BaseException:
                sock.close()
                raise
            try:
                await loop.connect_accepted_socket(side_factory(conn.client), sock)
            except BaseException:
                sock.close()
                if conn.upstream.transport is not None:
                    conn.upstream.transport.abort()
                raise
            self._opened += 1
            self._conns.add(conn)
            if conn.done:  # the tunnel side hung up before the client side was set up
                if conn.client.transport is not None:
                    conn.client.transport.close()
                conn.done = False
                conn.lost()
            else:
                conn.start()
            self._changed()
            return

    def relay_ended(self, conn: Relay) -> None:
        """A relay is over: count how it ended (from the relay)."""
        if conn not in self._conns:
            return  # the other side's loss already counted it
        self._conns.discard(conn)
        if conn.tunnel_ended and not conn.counted:
            if conn.generation != self._generation or not self._target:
                # Its kubectl was already declared gone (a relay that was still being set up
                # when hold() came).
                self._ended_with_tunnel += 1
            else:
                # Closed from kubectl's side: if hold() follows within DYING_GRACE, kubectl
                # died under it.
                if self._recent_cuts is None:
                    self._recent_cuts = deque(maxlen=4096)
                self._recent_cuts.append(time.monotonic())
        self._changed()

    # -- counters -------------------------------------------------------------------------------

    def count_bytes(self, n: int, inbound: bool) -> None:
        """Count ``n`` bytes relayed (from a relay)."""
        sec = int(time.monotonic())
        if sec != self._sec:
            self._roll(sec)
        if inbound:
            self._bytes_in += n
            self._sec_in += n
        else:
            self._bytes_out += n
            self._sec_out += n
        if self._on_traffic is not None and self._notify is None:
            self._changed()

    def _roll(self, sec: int) -> None:
        if sec != self._sec:
            if self._sec_in or self._sec_out:
                if self._history is None:
                    self._history = deque(maxlen=61)
                self._history.append((self._sec, self._sec_in, self._sec_out))
            self._sec, self._sec_in, self._sec_out = sec, 0, 0

    def _changed(self) -> None:
        """Report the counters to ``on_traffic`` at most once a second (the last change always
        reaches it, one second late at most)."""
        if self._on_traffic is None or self._notify is not None or self._loop is None:
            return
        delay = max(0.0, self._notified_at + 1.0 - time.monotonic())
        self._notify = self._loop.call_later(delay, self._report)

    def _report(self) -> None:
        self._notify = None
        self._notified_at = time.monotonic()
        if self._on_traffic is None:
            return
        stats = self.stats()
        try:
            self._on_traffic(stats)
        except Exception:
            log.exception("%s: traffic callback failed", self.name)
        if stats.rate_in or stats.rate_out or self._sec_in or self._sec_out:
            self._changed()  # one more report a second later, so a rate falls back to 0
