"""The front door's HTTP/1.x request log: method, path, status, duration and bytes of each request.

Both directions of a relayed connection are fed, chunk by chunk, to incremental parsers that only
frame messages (start line, Content-Length / chunked / until-close bodies); bodies are skipped,
headers are never stored, and a start line longer than :data:`LINE_LIMIT` is cut, not buffered. A
connection whose first bytes are not an HTTP/1.x request is logged once as "not HTTP" and relayed
untouched. Everything here is synchronous and pure (no loop, no clock of its own).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

LINE_LIMIT = 2048
"""Longest start line kept (bytes); the rest of the line is dropped and the path marked cut."""
HEADER_LINE_LIMIT = 8192
"""A header line longer than this is skipped (we only need a few short framing headers)."""

_REQUEST = re.compile(rb"^([A-Z][A-Z-]{0,19}) (\S+) HTTP/1\.[01]$")
_REQUEST_CUT = re.compile(rb"^([A-Z][A-Z-]{0,19}) (\S+)")
_PARTIAL = re.compile(rb"^[A-Z][A-Z-]{0,19}$")
_RESPONSE = re.compile(rb"^HTTP/1\.[01] (\d{3})")
_METHOD_START = re.compile(rb"^[A-Z][A-Z-]{0,19}( |$)")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request seen through a door (or one non-HTTP connection, ``note="not HTTP"``)."""

    started: float
    """When its first byte arrived (the door's clock: ``time.time()``)."""
    method: str
    path: str
    status: int | None
    """The final status code; None when no response came (``note`` says why)."""
    duration: float
    """Seconds from the request's first byte to the response's last."""
    bytes_in: int
    """Request bytes (head and body) from the client."""
    bytes_out: int
    """Response bytes (head and body) to the client."""
    note: str = ""
    """"" normally; "not HTTP", "no response", "upgraded", "path cut"."""

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict (``run --json``, the dashboard's export)."""
        return {
            "ts": round(self.started, 3),
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "durationMs": round(self.duration * 1000, 2),
            "bytesIn": self.bytes_in,
            "bytesOut": self.bytes_out,
            "note": self.note,
        }


class _Message:
    """Incremental framing of one direction's HTTP/1.x messages: head lines, then the body.

    ``on_head(start_line, cut, content_length or -1, chunked)`` returns the body to skip: a
    length, -1 for "until the connection closes", -2 for chunked, or None to stop parsing this
    direction.
    """

    __slots__ = ("check", "chunked", "cut", "length", "line", "on_head", "size", "start", "state")

    HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILER, UNTIL_CLOSE, OFF = range(8)

    def __init__(
        self,
        on_head: Callable[[bytes, bool, int, bool], int | None],
        check: Callable[[bytes, bool], bool] = lambda _line, _cut: True,
    ) -> None:
        self.on_head = on_head
        self.check = check  # decides on the start line at once: False stops parsing
        self.state = self.HEAD
        self.line = bytearray()
        self.cut = False
        self.start: bytes | None = None
        self.length = -1  # Content-Length (-1: none), then the body bytes still to skip
        self.chunked = False
        self.size = 0  # bytes of the current message so far

    def reset(self) -> None:
        """Ready for the next message's head."""
        self.state = self.HEAD
        self.start = None
        self.length = -1
        self.chunked = self.cut = False
        self.size = 0

    def feed(self, data: bytes, done: Callable[[int], None]) -> None:
        """Consume ``data``; ``done(size)`` is called at the end of each complete message."""
        i, n = 0, len(data)
        while i < n and self.state != self.OFF:
            st = self.state
            if st == self.BODY or st == self.CHUNK_DATA:
                take = min(self.length, n - i)
                self.length -= take
                i += take
                self.size += take
                if not self.length:
                    if st == self.BODY:
                        done(self.size)
                        self.reset()
                    else:
                        self.state = self.CHUNK_END
                continue
            if st == self.UNTIL_CLOSE:
                self.size += n - i
                return
            j = data.find(b"\n", i)
            end = n if j < 0 else j
            first = st == self.HEAD and self.start is None
            room = (LINE_LIMIT if first else HEADER_LINE_LIMIT) - len(self.line)
            if room > 0:
                self.line += data[i : min(end, i + room)]
            if end - i > room and first:
                self.cut = True  # the rest of an over-long start line is dropped, not buffered
            self.size += end - i
            if j < 0:
                return
            self.size += 1
            i = j + 1
            line = bytes(self.line).rstrip(b"\r")
            self.line.clear()
            self._line(line, done)

    def _line(self, line: bytes, done: Callable[[int], None]) -> None:
        st = self.state
        if st == self.HEAD:
            if self.start is None:
                if line:
                    self.start = line
                    if not self.check(line, self.cut):
                        self.state = self.OFF
                else:
                    self.size = 0  # an empty line between messages is tolerated (RFC 9112 2.2)
                return
            if line:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    try:
                        self.length = max(0, int(value.strip()))
                    except ValueError:
                        self.length = -1
                elif name == b"transfer-encoding":
                    self.chunked = b"chunked" in value.lower()
                return
            body = self.on_head(self.start, self.cut, self.length, self.chunked)
            if body is None:
                self.state = self.OFF
            elif body == -2:
                self.state = self.CHUNK_SIZE
            elif body == -1:
                self.state = self.UNTIL_CLOSE
            elif body == 0:
                done(self.size)
                self.reset()
            else:
                self.length = body
                self.state = self.BODY
        elif st == self.CHUNK_SIZE:
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.state = self.OFF
                return
            if size == 0:
                self.state = self.TRAILER
            else:
                self.length = size
                self.state = self.CHUNK_DATA
        elif st == self.CHUNK_END:
            self.state = self.CHUNK_SIZE  # the CRLF after a chunk's data
        elif st == self.TRAILER and not line:
            done(self.size)
            self.reset()

    def finish(self, done: Callable[[int], None]) -> None:
        """The stream ended: a body read until close is complete now."""
        if self.state == self.UNTIL_CLOSE:
            done(self.size)
        self.state = self.OFF


@dataclass(slots=True)
class _Pending:
    started: float
    method: str
    path: str
    note: str
    bytes_in: int = 0


class HttpExchange:
    """Both directions of one connection: pairs each response with its request (pipelining
    included) and reports each finished :class:`HttpRequest` to ``log``."""

    __slots__ = (
        "_clock", "_log", "_off", "_pending", "_raw", "_requests", "_responses", "_status", "_t0",
    )  # fmt: skip

    def __init__(self, log: Callable[[HttpRequest], None], clock: Callable[[], float]) -> None:
        self._log = log
        self._clock = clock
        self._requests = _Message(self._request_head, self._request_line)
        self._responses = _Message(self._response_head)
        self._pending: deque[_Pending] = deque()
        self._off = False
        self._raw: list[int] | None = None  # [bytes in, bytes out] of a "not HTTP" connection
        self._t0: float | None = None  # when the request being read began
        self._status = 0

    def client_data(self, data: bytes) -> None:
        """Bytes from the client (requests)."""
        if self._off:
            if self._raw is not None:
                self._raw[0] += len(data)
            return
        if self._t0 is None:
            self._t0 = self._clock()
            if self._requests.start is None and not self._requests.line:
                # Decide on the first bytes: binary protocols (TLS, gRPC's preface is caught
                # at the start line) are never buffered as a "line".
                head = data.lstrip(b"\r\n")[:21]
                if head and not _METHOD_START.match(head) and not _PARTIAL.match(head):
                    self._not_http(len(data))
                    return
        self._requests.feed(data, self._request_done)

    def server_data(self, data: bytes) -> None:
        """Bytes from the tunnel (responses)."""
        if not self._off:
            self._responses.feed(data, self._response_done)
        elif self._raw is not None:
            self._raw[1] += len(data)

    def closed(self) -> None:
        """The connection ended: finish an until-close body, log requests left unanswered (or
        the one "not HTTP" entry, with the connection's bytes and duration)."""
        if self._raw is not None:
            now = self._clock()
            t0 = self._t0 or now
            raw_in, raw_out = self._raw
            self._log(HttpRequest(t0, "", "", None, now - t0, raw_in, raw_out, "not HTTP"))
            self._raw = None
        if self._off:
            return
        self._off = True
        self._responses.finish(self._response_done)
        now = self._clock()
        while self._pending:
            p = self._pending.popleft()
            self._emit(p, None, now, 0, "no response")

    def _not_http(self, size: int) -> None:
        # Logged once, when the connection ends; earlier requests on it keep their own entries.
        self._off = True
        self._raw = [size, 0]

    def _emit(self, p: _Pending, status: int | None, now: float, out: int, note: str) -> None:
        self._log(
            HttpRequest(
                p.started,
                p.method,
                p.path,
                status,
                now - p.started,
                p.bytes_in,
                out,
                note or p.note,
            )
        )

    def _request_line(self, line: bytes, cut: bool) -> bool:
        if (_REQUEST_CUT if cut else _REQUEST).match(line):
            return True
        self._not_http(self._requests.size)
        return False

    def _request_head(self, line: bytes, cut: bool, length: int, chunked: bool) -> int | None:
        m = (_REQUEST_CUT if cut else _REQUEST).match(line)
        assert m is not None  # checked by _request_line
        method = m.group(1).decode("ascii")
        path = m.group(2).decode("latin-1")
        self._pending.append(
            _Pending(self._t0 or self._clock(), method, path, "path cut" if cut else "")
        )
        self._t0 = None
        if len(self._pending) > 64:  # a client pipelining without reading: keep the log bounded
            self._pending.popleft()
        return -2 if chunked else max(0, length)

    def _request_done(self, size: int) -> None:
        if self._pending:
            self._pending[-1].bytes_in = size

    def _response_head(self, line: bytes, cut: bool, length: int, chunked: bool) -> int | None:
        m = _RESPONSE.match(line)
        if m is None or not self._pending:
            self._off = True
            return None
        status = self._status = int(m.group(1))
        method = self._pending[0].method
        if status == 101 or (method == "CONNECT" and 200 <= status < 300):
            p = self._pending.popleft()
            self._emit(p, status, self._clock(), self._responses.size, "upgraded")
            self._off = True  # what follows is another protocol
            return None
        if 100 <= status < 200 or method == "HEAD" or status in (204, 304):
            return 0
        if chunked:
            return -2
        return length  # -1 when absent: the body runs until the connection closes

    def _response_done(self, size: int) -> None:
        if 100 <= self._status < 200:
            return  # an interim response (100 Continue): the final one follows
        if self._pending:
            self._emit(self._pending.popleft(), self._status, self._clock(), size, "")
