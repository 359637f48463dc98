"""The HTTP/1.x request log parser, fed byte streams as a door relays them (any chunking)."""

from __future__ import annotations

import itertools

import pytest

from kportforward.supervisor.httplog import LINE_LIMIT, HttpExchange, HttpRequest

REQUESTS = (
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    b"POST /b HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"
    b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    b"HEAD /d HTTP/1.1\r\n\r\n"
)
RESPONSES = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"  # HEAD: no body follows
)


def exchange() -> tuple[HttpExchange, list[HttpRequest]]:
    out: list[HttpRequest] = []
    ticks = itertools.count(1)
    return HttpExchange(out.append, lambda: float(next(ticks))), out


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_pipelined_requests_pair_with_their_responses_in_any_chunking(size: int) -> None:
    x, out = exchange()
    for c in chunks(REQUESTS, size):
        x.client_data(c)
    for c in chunks(RESPONSES, size):
        x.server_data(c)
    x.closed()
    got = [(r.method, r.path, r.status, r.note) for r in out]
    assert got == [
        ("GET", "/a", 200, ""),
        ("POST", "/b", 201, ""),
        ("PUT", "/c", 204, ""),
        ("HEAD", "/d", 200, ""),
    ]
    assert [r.bytes_in for r in out] == [28, 66, 59, 20]
    assert out[0].bytes_out == len(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    assert all(r.duration > 0 for r in out)


def test_a_body_until_close_ends_with_the_connection_and_unanswered_requests_are_logged() -> None:
    x, out = exchange()
    x.client_data(b"GET /old HTTP/1.0\r\n\r\n")
    x.server_data(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    assert out == []  # still reading the body
    x.closed()
    assert (out[0].path, out[0].status, out[0].bytes_out) == ("/old", 200, 28)

    x, out = exchange()
    x.client_data(b"GET /slow HTTP/1.1\r\n\r\n")
    x.closed()
    assert (out[0].path, out[0].status, out[0].note) == ("/slow", None, "no response")


def test_binary_bytes_are_one_not_http_entry_with_the_connection_totals() -> None:
    x, out = exchange()
    x.client_data(b"\x16\x03\x01\x02\x00")  # a TLS ClientHello
    x.server_data(b"\x16\x03\x03")
    x.client_data(b"more")
    assert out == []
    x.closed()
    assert [(r.note, r.bytes_in, r.bytes_out, r.status) for r in out] == [("not HTTP", 9, 3, None)]


@pytest.mark.parametrize(
    "first", [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"hello\n", b"GETTING STARTED WITH\r\n"]
)
def test_other_text_protocols_are_not_http(first: bytes) -> None:
    x, out = exchange()
    x.client_data(first)
    x.closed()
    assert [r.note for r in out] == ["not HTTP"]


def test_a_long_request_line_is_cut_not_buffered() -> None:
    x, out = exchange()
    path = b"/" + b"p" * (10 * LINE_LIMIT)
    for c in chunks(b"GET " + path + b" HTTP/1.1\r\n\r\n", 1000):
        x.client_data(c)
        assert len(x._requests.line) <= LINE_LIMIT  # never holds more than the limit
    x.server_data(b"HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\n")
    (r,) = out
    assert (r.method, r.status, r.note) == ("GET", 414, "path cut")
    assert r.path.startswith("/ppp") and len(r.path) < LINE_LIMIT


def test_an_upgrade_is_logged_and_the_rest_is_not_parsed() -> None:
    x, out = exchange()
    x.client_data(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    x.server_data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello")
    x.client_data(b"\x81\x85garbage")
    x.closed()
    assert [(r.path, r.status, r.note) for r in out] == [("/ws", 101, "upgraded")]


def test_as_json_names_every_field() -> None:
    x, out = exchange()
    x.client_data(b"DELETE /items/7 HTTP/1.1\r\n\r\n")
    x.server_data(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert out[0].as_json() == {
        "ts": 1.0,
        "method": "DELETE",
        "path": "/items/7",
        "status": 204,
        "durationMs": 1000.0,
        "bytesIn": 28,
        "bytesOut": 27,
        "note": "",
    }
