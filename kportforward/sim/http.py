"""A minimal HTTP/1.1 layer on asyncio streams: requests in, JSON/chunked responses out.

Hand-rolled because the same connection must switch to SPDY or WebSocket after a 101, which the
standard library's servers cannot hand over.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

REASONS = {
    101: "Switching Protocols",
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
MAX_HEAD = 64 * 1024


@dataclass
class Request:
    """A parsed request: ``target`` is the path with its query as received."""

    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON ({} when empty)."""
        return json.loads(self.body) if self.body.strip() else {}

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept open."""
        return self.headers.get("connection", "").lower() != "close"


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request; None at a clean EOF between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise ConnectionError("truncated request") from None
        return None
    except asyncio.LimitOverrunError:
        raise ConnectionError("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ConnectionError(f"bad request line {lines[0]!r}")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    split = urlsplit(target)
    query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
    return Request(method.upper(), target, unquote(split.path), query, headers, body)


def response_head(status: int, headers: dict[str, str]) -> bytes:
    """Status line and headers, ending with the blank line."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_response(status: int, body: Any, *, keep_alive: bool = True) -> bytes:
    """A complete JSON response in one buffer."""
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(data)),
        "Cache-Control": "no-cache, private",
    }
    if not keep_alive:
        headers["Connection"] = "close"
    return response_head(status, headers) + data


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (an empty ``data`` ends the body)."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
