"""Just enough HTTP/1.1 on asyncio streams for the Swagger UI server: read a request, write a
response, fetch a document from a forward, and relay a request to it.

Hand-rolled (a few dozen lines) rather than a web framework: the server has five routes, must be
importable without extra dependencies, and the proxy must pass bytes through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024
"""Largest request body relayed, and largest API document fetched."""

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
REASONS = {
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


class HTTPError(Exception):
    """A request we answer with an error status (``status``, one-line ``message``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    """One request from the browser; ``headers`` keep their order, names lower-cased."""

    method: str
    target: str
    """The path with its query, exactly as sent (still percent-encoded)."""
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        """The last value of header ``name`` (lower-case), or ``default``."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return default

    @property
    def path(self) -> str:
        """The target without its query (percent-encoded)."""
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        """Whether the browser may send another request on this connection."""
        conn = self.header("connection").lower()
        return conn != "close" if self.version == "HTTP/1.1" else conn == "keep-alive"


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request, or None at EOF between requests; :class:`HTTPError` if malformed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise HTTPError(400, "request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[1].startswith("/"):
        raise HTTPError(400, "malformed request line")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    request = Request(parts[0].upper(), parts[1], parts[2], headers, b"")
    if request.header("transfer-encoding"):
        raise HTTPError(411, "send the body with a Content-Length")
    length_text = request.header("content-length", "0") or "0"
    if not length_text.isdigit():
        raise HTTPError(400, "bad Content-Length")
    length = int(length_text)
    if length > MAX_BODY:
        raise HTTPError(413, f"bodies over {MAX_BODY} bytes are not relayed")
    if length:
        request.body = await reader.readexactly(length)
    return request


def response(
    status: int,
    body: bytes,
    content_type: str,
    *,
    keep_alive: bool = True,
    extra: dict[str, str] | None = None,
) -> bytes:
    """A complete response in one buffer."""
    headers = {
        "Content-Type": content_type,
        "Content-Length": str(len(body)),
        "X-Content-Type-Options": "nosniff",
        **(extra or {}),
    }
    if not keep_alive:
        headers["Connection"] = "close"
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Upstream:
    """Where a forward listens."""

    host: str
    port: int

    @property
    def netloc(self) -> str:
        """``host:port`` for a Host header (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


async def fetch(
    upstream: Upstream, path: str, *, timeout: float, max_redirects: int = 3
) -> tuple[int, bytes, str]:
    """GET ``path`` from the forward: (status, body, final URL). Follows redirects that stay on
    the forward. Raises :class:`HTTPError` (502/504) when the forward cannot be read."""
    url = f"http://{upstream.netloc}{path}"
    for _ in range(max_redirects + 1):
        status, headers, body = await asyncio.wait_for(_get(upstream, path), timeout)
        location = headers.get("location")
        if status in (301, 302, 303, 307, 308) and location:
            target = urlsplit(location)
            if target.netloc and target.netloc not in (
                upstream.netloc,
                f"localhost:{upstream.port}",
            ):
                raise HTTPError(502, f"{url} redirects off the forward, to {location}")
            path = (target.path or "/") + (f"?{target.query}" if target.query else "")
            url = f"http://{upstream.netloc}{path}"
            continue
        return status, body, url
    raise HTTPError(502, f"{url}: too many redirects")


async def _get(upstream: Upstream, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
    except OSError as exc:
        raise HTTPError(502, f"the forward is not listening on {upstream.netloc}: {exc}") from None
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {upstream.netloc}\r\n"
            "Accept: application/json, application/yaml, */*\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = body_length(status, "GET", headers)
        if length is not None and length <= MAX_BODY:
            # Read exactly that much: a server that ignores "Connection: close" cannot stall us.
            body = await reader.readexactly(length)
        else:
            body = await reader.read(MAX_BODY + 1)
            while len(body) <= MAX_BODY and (more := await reader.read(MAX_BODY + 1 - len(body))):
                body += more
        if len(body) > MAX_BODY:
            raise HTTPError(502, f"the document is larger than {MAX_BODY} bytes")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = dechunk(body)
        return status, headers, body
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
        raise HTTPError(
            502, f"the forward on {upstream.netloc} closed the connection: {exc}"
        ) from None
    except (ValueError, IndexError):
        raise HTTPError(502, f"the forward on {upstream.netloc} did not answer HTTP") from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def body_length(status: int, method: str, headers: dict[str, str]) -> int | None:
    """Bytes of body that follow a response head; None when it ends at EOF (or is chunked)."""
    if method == "HEAD" or status < 200 or status in (204, 304):
        return 0
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return None
    length = headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def dechunk(data: bytes) -> bytes:
    """The payload of a chunked body (trailers ignored)."""
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("truncated chunked body")
        size = int(data[pos:end].split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


async def relay(
    request: Request,
    upstream: Upstream,
    path: str,
    writer: asyncio.StreamWriter,
    *,
    connect_timeout: float,
    answer_timeout: float,
) -> None:
    """Send ``request`` to the forward at ``path`` and copy the answer back, byte for byte.

    The forward is asked to close after answering, and the browser is told the same, so the
    body needs no parsing (chunked or not, it ends at EOF). Origin and Referer are dropped: the
    request is the user's own, as if sent with curl (the server already checked the origin).
    """
    try:
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(upstream.host, upstream.port), connect_timeout
        )
    except (TimeoutError, OSError) as exc:
        raise HTTPError(502, f"the forward is not listening on {upstream.netloc}: {exc}") from None
    try:
        lines = [f"{request.method} {path} HTTP/1.1", f"Host: {upstream.netloc}"]
        for name, value in request.headers:
            if name in HOP_BY_HOP or name in ("host", "origin", "referer", "content-length"):
                continue
            lines.append(f"{name}: {value}")
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(request.body)}")
        lines.append("Connection: close")
        up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
        await up_writer.drain()
        try:
            head = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), answer_timeout)
        except TimeoutError:
            raise HTTPError(
                504, f"the forward did not answer within {answer_timeout:g} s"
            ) from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            raise HTTPError(502, "the forward closed the connection without answering") from None
        out = []
        headers: dict[str, str] = {}
        for i, line in enumerate(head.decode("latin-1").split("\r\n")):
            name, _, value = line.partition(":")
            if i:
                headers[name.strip().lower()] = value.strip()
            if i and name.strip().lower() in ("connection", "keep-alive"):
                continue
            if line:
                out.append(line)
        out.append("Connection: close")
        try:
            status = int(out[0].split(" ")[1])
        except (IndexError, ValueError):
            raise HTTPError(502, "the forward did not answer HTTP") from None
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        # A known length is copied exactly (a forward that keeps the connection open despite
        # "Connection: close" cannot hold it); otherwise (chunked, or no length) until EOF.
        remaining = body_length(status, request.method, headers)
        while remaining is None or remaining > 0:
            size = 65536 if remaining is None else min(65536, remaining)
            data = await asyncio.wait_for(up_reader.read(size), answer_timeout)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            if remaining is not None:
                remaining -= len(data)
    finally:
        up_writer.close()
        with contextlib.suppress(Exception):
            await up_writer.wait_closed()
