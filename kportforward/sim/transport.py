"""Byte-stream transports for a port-forward session: a raw upgraded TCP connection, or SPDY bytes
tunnelled in WebSocket binary messages (kubectl >= 1.31 tries that first)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_PROTOCOL = "SPDY/3.1+portforward.k8s.io"


def websocket_accept(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def _unmask(data: bytes, mask: bytes) -> bytes:
    # XOR as one big integer: C speed, no per-byte Python loop.
    n = len(data)
    if not n:
        return data
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


class RawTransport:
    """The upgraded TCP connection itself (the SPDY POST)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes; IncompleteReadError at EOF."""
        return await self.reader.readexactly(n)

    def write(self, data: bytes) -> None:
        """Queue ``data`` in one write."""
        self.writer.write(data)

    async def drain(self) -> None:
        """Wait while the peer is slow to read."""
        await self.writer.drain()

    def abort(self) -> None:
        """Cut the connection at once, without a goodbye (a lost connection, as kubectl sees it)."""
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()

    def close(self) -> None:
        """Close the connection after pending writes."""
        self.writer.close()


class WebSocketTransport(RawTransport):
    """SPDY bytes carried in WebSocket binary messages. Client messages are masked and one SPDY
    frame may span several messages, so incoming payloads are treated as one byte stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self._buf = b""

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes of tunnelled payload; IncompleteReadError on close."""
        while len(self._buf) < n:
            self._buf += await self._message()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    async def _message(self) -> bytes:
        reader = self.reader
        while True:
            b0, b1 = await reader.readexactly(2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", await reader.readexactly(8))
            mask = await reader.readexactly(4) if b1 & 0x80 else b""
            payload = await reader.readexactly(length) if length else b""
            if mask:
                payload = _unmask(payload, mask)
            if opcode == 8:  # close means EOF
                raise asyncio.IncompleteReadError(b"", None)
            if opcode == 9:  # ping: answer with a pong carrying the same payload
                self.writer.write(_frame(0xA, payload))
                continue
            if opcode in (0, 1, 2) and payload:
                return payload

    def write(self, data: bytes) -> None:
        """Send ``data`` as one binary message (unmasked: we are the server)."""
        self.writer.write(_frame(0x2, data))


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack(">BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack(">BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack(">BBQ", 0x80 | opcode, 127, n)
    return head + payload
