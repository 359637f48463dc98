"""WebSocket pieces for the tunnel kubectl >= 1.31 tries first: the handshake key, server frames,
and a deframer that turns masked client messages back into one SPDY byte stream."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x2, 0x8, 0x9, 0xA


def websocket_accept(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def unmask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` as one big integer: C speed, no per-byte loop."""
    n = len(data)
    if not n:
        return data
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


def ws_frame(payload: bytes, opcode: int = OP_BINARY) -> bytes:
    """One unmasked, unfragmented server frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack(">BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack(">BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack(">BBQ", 0x80 | opcode, 127, n)
    return head + payload


class WebSocketDeframer:
    """Parses client frames as bytes arrive; data payloads go to ``on_data`` as a byte stream
    (kubectl splits one SPDY frame over several messages), pings are answered through ``send``."""

    def __init__(self, on_data: Callable[[bytes], None], send: Callable[[bytes], None]) -> None:
        self._on_data = on_data
        self._send = send
        self._buf = b""
        self.closed = False  # a close frame arrived: EOF

    def feed(self, data: bytes) -> None:
        """Consume ``data``; calls ``on_data`` for every complete data message."""
        buf = self._buf + data if self._buf else data
        pos, n = 0, len(buf)
        while n - pos >= 2 and not self.closed:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                (length,) = struct.unpack_from(">H", buf, pos + 2)
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                (length,) = struct.unpack_from(">Q", buf, pos + 2)
                head = 10
            masked = b1 & 0x80
            start = pos + head + (4 if masked else 0)
            end = start + length
            if end > n:
                break
            payload = buf[start:end]
            if masked:
                payload = unmask(payload, buf[start - 4 : start])
            pos = end
            opcode = b0 & 0x0F
            if opcode == OP_CLOSE:
                self.closed = True
            elif opcode == OP_PING:
                self._send(ws_frame(payload, OP_PONG))
            elif opcode in (0x0, 0x1, OP_BINARY) and payload:
                self._on_data(payload)
        self._buf = buf[pos:]
