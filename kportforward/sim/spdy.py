"""SPDY/3.1 framing as spoken by kubectl's port-forward (spdystream): frames and header blocks.

Only what the port-forward protocol uses: SYN_STREAM in, SYN_REPLY/DATA/RST_STREAM out, PING echoed,
GOAWAY honoured. spdystream does no flow control, so WINDOW_UPDATE and SETTINGS are never needed.
"""

from __future__ import annotations

import struct
import zlib

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
MAX_DATA = 65536

# The SPDY/3 header-compression dictionary (draft 3, section 2.6.10.1): length-prefixed words, then
# a literal tail. Built here rather than pasted as bytes so a transposed word is easy to spot; the
# Adler-32 check below (and in the tests) guards it, because kubectl's DICTID must match exactly.
_WORD_TEXT = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base "
    "content-encoding content-language content-length content-location content-md5 "
    "content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status"
)
_WORDS = [
    *_WORD_TEXT.split(),
    *("200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"),
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,"
    "deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
DICTIONARY_ADLER32 = 0xE3C6A7C2
if len(DICTIONARY) != 1423 or zlib.adler32(DICTIONARY) != DICTIONARY_ADLER32:  # pragma: no cover
    raise RuntimeError("SPDY/3 dictionary is corrupt")

_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">II")


class HeaderCodec:
    """One zlib context per direction for the whole connection, as SPDY/3 requires."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(
            9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY
        )

    def decode(self, block: bytes) -> dict[str, str]:
        """Decompress and parse a header block into a dict (lower-case names)."""
        raw = self._inflate.decompress(block)
        (count,) = _U32.unpack_from(raw, 0)
        pos = 4
        headers: dict[str, str] = {}
        for _ in range(count):
            (n,) = _U32.unpack_from(raw, pos)
            name = raw[pos + 4 : pos + 4 + n].decode("latin-1")
            pos += 4 + n
            (n,) = _U32.unpack_from(raw, pos)
            headers[name.lower()] = raw[pos + 4 : pos + 4 + n].decode("latin-1")
            pos += 4 + n
        return headers

    def encode(self, headers: dict[str, str]) -> bytes:
        """Serialise and compress a header block, flushed so the peer can decode it at once."""
        parts = [_U32.pack(len(headers))]
        for name, value in headers.items():
            n, v = name.lower().encode("latin-1"), value.encode("latin-1")
            parts += [_U32.pack(len(n)), n, _U32.pack(len(v)), v]
        data = b"".join(parts)
        return self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def control_frame(ftype: int, flags: int, payload: bytes) -> bytes:
    """A whole SPDY/3 control frame (one write: Go's reader wants the block in one piece)."""
    return _HEAD.pack(0x80030000 | ftype, (flags << 24) | len(payload)) + payload


def data_header(stream_id: int, flags: int, length: int) -> bytes:
    """The 8-byte header of a data frame."""
    return _HEAD.pack(stream_id & 0x7FFFFFFF, (flags << 24) | length)


def syn_reply(codec: HeaderCodec, stream_id: int, headers: dict[str, str] | None = None) -> bytes:
    """SYN_REPLY for ``stream_id`` (SPDY/3: stream id, then the header block)."""
    return control_frame(SYN_REPLY, 0, _U32.pack(stream_id) + codec.encode(headers or {}))


def rst_stream(stream_id: int, status: int = 5) -> bytes:
    """RST_STREAM (5 = CANCEL)."""
    return control_frame(RST_STREAM, 0, _HEAD.pack(stream_id, status))


def goaway(last_stream_id: int) -> bytes:
    """GOAWAY with status OK."""
    return control_frame(GOAWAY, 0, _HEAD.pack(last_stream_id, 0))


def parse_head(head: bytes) -> tuple[bool, int, int, int]:
    """Split an 8-byte frame header: (is_control, type_or_stream_id, flags, length)."""
    first, second = _HEAD.unpack(head)
    flags, length = second >> 24, second & 0xFFFFFF
    if first & 0x80000000:
        return True, first & 0xFFFF, flags, length
    return False, first, flags, length


def u32(data: bytes, offset: int = 0) -> int:
    """Big-endian unsigned 32-bit integer at ``offset``."""
    return int(_U32.unpack_from(data, offset)[0])
