"""Local port availability, found out by binding the way kubectl will, and cached for a few seconds.

kubectl's listener is Go's ``net.Listen("tcp4", "127.0.0.1:P")``. The platform layer says how to
find out, before kubectl tries, whether that listen will succeed *and* leave no other program's
listener on an overlapping address (``Platform.bind_plan``):

- Linux: one bind+listen with ``SO_REUSEADDR``, as Go does (a port whose old connections linger in
  TIME_WAIT is free to it); Linux refuses it beside any overlapping listener.
- macOS/BSD: the same, plus the BSD caveat: there ``SO_REUSEADDR`` lets ``127.0.0.1:P`` bind beside
  another program's ``*:P``, so we also bind the family's wildcard (or loopback, for a wildcard).
- Windows: ``SO_EXCLUSIVEADDRUSE`` (Go sets no option there; Windows's default would let our bind
  succeed beside another socket on an overlapping address).

``localhost`` is both families: kubectl listens on 127.0.0.1 *and* [::1] for it, and keeps running
on one alone if the other is taken, so a browser resolving ``localhost`` to ::1 first would reach
another program. It is available only when both are (an ::1 the machine does not have is ignored).

Binding costs a few system calls; a dashboard that asks about the same ports every refresh should
not pay them each time. Answers are kept in a ``cachetools.TTLCache`` whose clock is injectable, so
tests drive expiry with a fake timer. Who holds a busy port (psutil) is only looked up when a
message needs it, because ``psutil.net_connections`` walks every process's file descriptors.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, Final, Literal, NamedTuple

import cachetools

from kportforward.platform import BindStep, Platform, current

Reason = Literal["free", "in_use", "permission_denied", "address_not_available", "invalid"]

MIN_PORT: Final = 1
MAX_PORT: Final = 65535
FIRST_UNPRIVILEGED_PORT: Final = 1024
WILDCARD_ADDRESSES: Final = frozenset({"0.0.0.0", "::"})

# Below this many uncached ports a thread pool costs more than it saves (a bind is ~15 µs).
_PARALLEL_THRESHOLD: Final = 32

LOCALHOST: Final = "localhost"
LOCALHOST_ADDRESSES: Final = ("127.0.0.1", "::1")
"""What kubectl's ``--address localhost`` listens on."""

_EXCLUSIVEADDRUSE: int | None = None
if sys.platform == "win32":
    _EXCLUSIVEADDRUSE = socket.SO_EXCLUSIVEADDRUSE
_NOT_AVAILABLE_ERRNOS = frozenset(
    code for code in (errno.EADDRNOTAVAIL, getattr(errno, "WSAEADDRNOTAVAIL", None)) if code
)
_IN_USE_ERRNOS = frozenset(
    code for code in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", None)) if code
)
_PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM})


class PortCheck(NamedTuple):
    """What binding ``address:port`` told us, with a reason code and a human message.

    A named tuple rather than a dataclass: it is immutable all the same and is built for every
    probe, where a frozen dataclass's ``__init__`` costs several times more.
    """

    port: int
    address: str
    available: bool
    reason: Reason
    """``free | in_use | permission_denied | address_not_available | invalid``."""
    detail: str = ""
    """The OS error text, or why the input is invalid."""
    holder_pid: int | None = None
    """The process holding a busy port when psutil can see it (``check(holder=True)`` fills it)."""
    holder_name: str | None = None
    holder_checked: bool = False
    """True once psutil was asked, so a holder the OS hides is not searched for again."""

    @property
    def holder(self) -> str | None:
        """``python3 (pid 4121)`` when the holder is known, else None."""
        if self.holder_pid is None:
            return None
        return f"{self.holder_name or 'unknown'} (pid {self.holder_pid})"

    @property
    def message(self) -> str:
        """One line for a person: ``8080 is held by python3 (pid 4121)``, ``80 is privileged`` …"""
        if self.reason == "free":
            return f"{self.port} is free on {self.address}"
        if self.reason == "in_use":
            who = self.holder
            if who:
                return f"{self.port} is held by {who}"
            return f"{self.port} is in use on {self.address}"
        if self.reason == "permission_denied":
            return f"{self.port} is a privileged port (permission denied on {self.address})"
        if self.reason == "address_not_available":
            return f"address {self.address} is not configured on this machine"
        return f"{self.address}:{self.port} is not a usable port ({self.detail or 'invalid'})"


class CacheInfo(NamedTuple):
    """Counters for ``profile`` and the details screen (a named tuple, like ``functools``')."""

    hits: int
    misses: int
    size: int
    maxsize: int
    ttl: float

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups; 0.0 before the first lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def normalize_address(address: str) -> str:
    """The address to bind: ``localhost`` means 127.0.0.1, as kubectl's IPv4 listener uses."""
    return "127.0.0.1" if address == "localhost" else address


def addresses_overlap(a: str, b: str) -> bool:
    """True when listeners on ``a`` and ``b`` with the same port would collide (``localhost``
    is 127.0.0.1 and ::1, as kubectl listens on both for it)."""
    if LOCALHOST in (a, b):
        other = b if a == LOCALHOST else a
        return other == LOCALHOST or any(addresses_overlap(x, other) for x in LOCALHOST_ADDRESSES)
    a, b = normalize_address(a), normalize_address(b)
    return a == b or a in WILDCARD_ADDRESSES or b in WILDCARD_ADDRESSES


@lru_cache(maxsize=64)
def _family(address: str) -> socket.AddressFamily | None:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    except ValueError:
        return None


def probe_port(
    port: int, address: str = "127.0.0.1", *, platform: Platform | None = None
) -> PortCheck:
    """Bind and listen on ``address:port`` the way this platform's kubectl will, once, uncached,
    and say what happened. ``localhost`` checks 127.0.0.1 and then ::1."""
    if address == LOCALHOST:
        first = probe_port(port, LOCALHOST_ADDRESSES[0], platform=platform)
        if not first.available:
            return first
        return _dual_stack(first, probe_port(port, LOCALHOST_ADDRESSES[1], platform=platform))
    address = normalize_address(address)
    if not isinstance(port, int) or isinstance(port, bool) or not MIN_PORT <= port <= MAX_PORT:
        return PortCheck(port, address, False, "invalid", f"port must be {MIN_PORT}–{MAX_PORT}")
    if _family(address) is None:
        return PortCheck(port, address, False, "invalid", f"{address!r} is not an IP address")
    for step in _plan(platform or current(), address):
        failed = _bind(step, port)
        if failed is None:
            continue
        reason, detail = failed
        if step.address == address:
            return PortCheck(port, address, False, reason, detail)
        if reason == "in_use":  # the BSD caveat: another program holds an overlapping address
            detail = f"another program listens on {step.address}:{port}"
            return PortCheck(port, address, False, reason, detail)
        if not step.optional:
            return PortCheck(port, address, False, reason, detail)
    return PortCheck(port, address, True, "free")


@lru_cache(maxsize=256)
def _plan(platform: Platform, address: str) -> tuple[BindStep, ...]:
    return platform.bind_plan(address)


def _dual_stack(v4: PortCheck, v6: PortCheck) -> PortCheck:
    """``localhost``'s answer from its two halves; an ::1 this machine lacks does not count."""
    if v6.available or v6.reason == "address_not_available":
        return v4
    return v6


def _bind(step: BindStep, port: int) -> tuple[Reason, str] | None:
    """Bind and listen once as ``step`` says; None on success, else (reason, OS text)."""
    family = _family(step.address)
    if family is None:
        return "invalid", f"{step.address!r} is not an IP address"
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:  # e.g. IPv6 disabled in the kernel
        return "address_not_available", str(exc)
    try:
        if step.reuseaddr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if step.exclusive and _EXCLUSIVEADDRUSE is not None:
            sock.setsockopt(socket.SOL_SOCKET, _EXCLUSIVEADDRUSE, 1)
        # listen() too: on Linux a bound-but-not-listening SO_REUSEADDR socket lets bind() pass
        # while the listen that kubectl does would still fail.
        sock.bind((step.address, port))
        sock.listen(1)
    except OSError as exc:
        code = exc.errno
        if code in _IN_USE_ERRNOS:
            reason: Reason = "in_use"
        elif code in _PERMISSION_ERRNOS:
            reason = "permission_denied"
        elif code in _NOT_AVAILABLE_ERRNOS or code == errno.EAFNOSUPPORT:
            reason = "address_not_available"
        else:
            reason = "invalid"
        return reason, exc.strerror or str(exc)
    finally:
        sock.close()
    return None


def find_listeners(ports: Iterable[int], address: str = "127.0.0.1") -> dict[int, tuple[int, str]]:
    """``{port: (pid, process name)}`` for listeners that overlap ``address``, in one psutil scan.

    Ports whose holder the OS hides from us (another user's process without privileges) are absent.
    """
    import psutil  # imported here: only messages need it, and it is not free to import

    wanted = set(ports)
    found: dict[int, tuple[int, str]] = {}
    if not wanted:
        return found
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return found
    address = normalize_address(address)
    for conn in conns:
        laddr = conn.laddr
        if not laddr or laddr.port not in wanted or conn.pid is None:
            continue
        if conn.status != psutil.CONN_LISTEN or not addresses_overlap(laddr.ip, address):
            continue
        if laddr.port in found:
            continue
        try:
            name = psutil.Process(conn.pid).name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            name = "unknown"
        found[laddr.port] = (conn.pid, name)
    return found


class _IndexedTTLCache(cachetools.TTLCache):
    """A ``TTLCache`` that mirrors every live entry, with its expiry time, into a plain dict.

    A hit then costs one dict lookup and one clock read. Going through the TTLCache costs
    0.5–1.7 µs of Python-level bookkeeping, which is most of what a cached check is for. The
    TTLCache stays the authority: whatever it evicts or expires is dropped from the index too.
    """

    def __init__(self, maxsize: int, ttl: float, timer: Callable[[], float]) -> None:
        super().__init__(maxsize=maxsize, ttl=ttl, timer=timer)
        self.index: dict[Any, tuple[float, Any]] = {}

    def __setitem__(self, key: Any, value: Any) -> None:
        # Read the clock first: the index entry then never outlives the TTLCache's own.
        expires = self.timer() + self.ttl
        super().__setitem__(key, value)
        self.index[key] = (expires, value)

    def __delitem__(self, key: Any) -> None:
        self.index.pop(key, None)
        super().__delitem__(key)

    def expire(self, time: float | None = None) -> list[tuple[Any, Any]]:
        expired = list(super().expire(time))
        for key, _ in expired:
            self.index.pop(key, None)
        return expired

    def clear(self) -> None:
        super().clear()
        self.index.clear()

    def annotate(self, key: Any, old: Any, new: Any) -> None:
        """Swap the value under ``key`` for ``new`` if it is still ``old``, keeping its expiry
        (a holder's name is not a fresher answer, so it must not extend the entry's life)."""
        entry = self.index.get(key)
        if entry is not None and entry[1] is old:
            cachetools.Cache.__setitem__(self, key, new)
            self.index[key] = (entry[0], new)


class PortChecker:
    """TTL-cached port availability with batch checks and hit/miss counters.

    Safe to share between threads: writes to the cache hold a lock, binds happen outside it, and
    cache hits read a plain dict without the lock. ``hits``/``misses`` are exact for one calling
    thread; callers racing on ``is_available`` may lose an increment.
    """

    def __init__(
        self,
        ttl: float = 5.0,
        timer: Callable[[], float] = time.monotonic,
        max_workers: int = 32,
        maxsize: int = 65536,
        *,
        platform: Platform | None = None,
    ) -> None:
        self.ttl = ttl
        self.platform = platform or current()
        """Whose bind rules the probes follow (injected in tests; this machine's otherwise)."""
        self.max_workers = max(1, max_workers)
        self._timer = timer
        self._cache = _IndexedTTLCache(maxsize=maxsize, ttl=ttl, timer=timer)
        self._index = self._cache.index
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.hits = 0
        self.misses = 0

    # -- single ports -------------------------------------------------------------------------

    def is_available(self, port: int, address: str = "127.0.0.1") -> bool:
        """True when kubectl could listen on ``address:port`` now (cached for ``ttl`` seconds)."""
        entry = self._index.get((address, port))
        if entry is not None and self._timer() < entry[0]:
            self.hits += 1
            return entry[1].available
        if address == LOCALHOST:
            return self._lookup_localhost(port).available
        return self._lookup(port, normalize_address(address)).available

    def check(self, port: int, address: str = "127.0.0.1", *, holder: bool = False) -> PortCheck:
        """The cached record for ``address:port``; ``holder=True`` also names who holds it."""
        if address == LOCALHOST:
            result = self._lookup_localhost(port)
        else:
            result = self._lookup(port, normalize_address(address))
        if holder and result.reason == "in_use" and not result.holder_checked:
            result = self.with_holders([result])[0]
        return result

    def _cached(self, key: tuple[str, int]) -> PortCheck | None:
        entry = self._index.get(key)
        if entry is not None and self._timer() < entry[0]:
            return entry[1]
        return None

    def _lookup(self, port: int, address: str) -> PortCheck:
        cached = self._cached((address, port))
        if cached is not None:
            self.hits += 1
            return cached
        result = probe_port(port, address, platform=self.platform)
        with self._lock:
            self.misses += 1
            self._cache[(address, port)] = result
        return result

    def _lookup_localhost(self, port: int) -> PortCheck:
        # Two entries, 127.0.0.1 then ::1; ::1 only when 127.0.0.1 is free (it decides alone
        # otherwise), so a busy IPv4 port costs one lookup, as for an explicit 127.0.0.1.
        v4 = self._lookup(port, LOCALHOST_ADDRESSES[0])
        if not v4.available:
            return v4
        return _dual_stack(v4, self._lookup(port, LOCALHOST_ADDRESSES[1]))

    # -- batches ------------------------------------------------------------------------------

    def check_many(self, ports: Iterable[int], address: str = "127.0.0.1") -> dict[int, bool]:
        """``{port: available}`` for every port, probing the uncached ones concurrently."""
        records = self.check_many_records(ports, address)
        return {port: rec.available for port, rec in records.items()}

    def check_many_records(
        self, ports: Iterable[int], address: str = "127.0.0.1"
    ) -> dict[int, PortCheck]:
        """``{port: PortCheck}`` for every port; uncached ones are probed in a thread pool."""
        if address == LOCALHOST:
            v4 = self.check_many_records(ports, LOCALHOST_ADDRESSES[0])
            free = [port for port, rec in v4.items() if rec.available]
            v6 = self.check_many_records(free, LOCALHOST_ADDRESSES[1]) if free else {}
            return {p: _dual_stack(rec, v6[p]) if p in v6 else rec for p, rec in v4.items()}
        address = normalize_address(address)
        index_get, now = self._index.get, self._timer()
        results: dict[int, PortCheck] = {}
        missing: list[int] = []
        for port in ports:
            entry = index_get((address, port))
            if entry is not None and now < entry[0]:
                results[port] = entry[1]
            elif port not in results:
                missing.append(port)
        missing = list(dict.fromkeys(missing))
        self.hits += len(results)
        if not missing:
            return results
        probed = self._probe_all(missing, address)
        with self._lock:
            self.misses += len(probed)
            for rec in probed:
                self._cache[(address, rec.port)] = rec
        for rec in probed:
            results[rec.port] = rec
        return results

    def _probe_all(self, ports: list[int], address: str) -> list[PortCheck]:
        if len(ports) < _PARALLEL_THRESHOLD or self.max_workers == 1:
            return _probe_chunk(ports, address, self.platform)
        # One task per chunk, not per port: a future costs more than the bind it would wrap. No
        # more threads than CPUs: the Python half of a probe holds the GIL, so extra threads only
        # queue for it (docs/PERFORMANCE.md has the measurements).
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = max(1, min(self.max_workers, cpus or 1, len(ports) // (_PARALLEL_THRESHOLD // 2)))
        if workers == 1:
            return _probe_chunk(ports, address, self.platform)
        chunks = [ports[i::workers] for i in range(workers)]
        pool = self._executor()
        futures = [pool.submit(_probe_chunk, chunk, address, self.platform) for chunk in chunks]
        out: list[PortCheck] = []
        for future in futures:
            out.extend(future.result())
        return out

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_workers, thread_name_prefix="port-check"
                )
            return self._pool

    def with_holders(self, records: Iterable[PortCheck]) -> list[PortCheck]:
        """The records with ``holder_pid``/``holder_name`` filled for busy ports (one psutil scan
        per address), and the cache updated so the next message costs nothing."""
        records = list(records)
        busy: dict[str, set[int]] = {}
        for rec in records:
            if rec.reason == "in_use" and not rec.holder_checked:
                busy.setdefault(rec.address, set()).add(rec.port)
        if not busy:
            return records
        holders = {addr: find_listeners(ports, addr) for addr, ports in busy.items()}
        out: list[PortCheck] = []
        for rec in records:
            if rec.address in holders and rec.reason == "in_use" and not rec.holder_checked:
                found = holders[rec.address].get(rec.port)
                pid, name = found if found else (None, None)
                named = rec._replace(holder_pid=pid, holder_name=name, holder_checked=True)
                with self._lock:
                    self._cache.annotate((rec.address, rec.port), rec, named)
                rec = named
            out.append(rec)
        return out

    # -- maintenance --------------------------------------------------------------------------

    def invalidate(self, port: int | None = None, address: str | None = None) -> None:
        """Forget ``port`` (on ``address``, or on every address); no arguments forget everything.

        Call it for ports we just took or released so the next answer is fresh.
        """
        if address == LOCALHOST:
            for half in LOCALHOST_ADDRESSES:
                self.invalidate(port, half)
            return
        with self._lock:
            if port is None and address is None:
                self._cache.clear()
                return
            norm = normalize_address(address) if address is not None else None
            if port is not None and norm is not None:
                self._cache.pop((norm, port), None)
                return
            for key in list(self._cache):
                if (port is None or key[1] == port) and (norm is None or key[0] == norm):
                    self._cache.pop(key, None)

    def cache_info(self) -> CacheInfo:
        """Hits, misses and size of the cache, for ``profile`` and the UI."""
        with self._lock:
            size = len(self._cache)
        return CacheInfo(self.hits, self.misses, size, int(self._cache.maxsize), self.ttl)

    def close(self) -> None:
        """Stop the worker threads (if any were started). The checker stays usable."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> PortChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _probe_chunk(ports: list[int], address: str, platform: Platform) -> list[PortCheck]:
    return [probe_port(port, address, platform=platform) for port in ports]
