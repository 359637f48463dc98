"""The Swagger UI server over real sockets: pages, assets, the same-origin spec route and the proxy
to a forward (a real kubectl tunnel to the simulator's OpenAPI backend), restarts, refusals."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from kportforward.sim import World
from kportforward.webui import SwaggerUI, SwaggerUIError, swagger_ui_available

pytestmark = pytest.mark.skipif(
    not swagger_ui_available(), reason="needs the swaggerui extra (swagger-ui-bundle)"
)


def api_world() -> World:
    """One REST service in front of a pod serving the OpenAPI backend."""
    w = World(seed=5)
    w.add_app("api", port=80, target_port=8080, backend="openapi")
    return w


class LoopThread:
    """An asyncio loop in a thread, for driving the server from synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._uis: list[SwaggerUI] = []

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for ui in self._uis:
            self.run(ui.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a plain function on the loop thread."""

        async def wrapper() -> Any:
            return fn(*args, **kwargs)

        return self.run(wrapper())

    def start_ui(self, **kwargs: Any) -> SwaggerUI:
        """A started SwaggerUI, closed on exit."""
        ui = SwaggerUI(**kwargs)
        self.run(ui.start())
        self._uis.append(ui)
        return ui


def fetch(
    url: str, data: bytes | None = None, *, method: str | None = None, headers: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request, errors included."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def raw(port: int, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def api(sim_factory, port_forward):
    """(simulator, kubectl port-forward to service/api:80, the pod's name)."""
    sim = sim_factory(api_world())
    pf = port_forward(sim, "service/api", 80)
    (pod,) = sim.pods("default", {"app": "api"})
    return sim, pf, pod


def test_page_spec_and_proxy_through_the_tunnel(api) -> None:
    _sim, pf, pod = api
    with LoopThread() as lt:
        ui = lt.start_ui()
        assert 9100 <= (ui.port or 0) < 9200
        url = lt.call(ui.publish, "my api", pf.local_port, "api", "openapi.json")
        assert url == f"http://127.0.0.1:{ui.port}/my%20api/"

        status, headers, page = fetch(url)
        assert status == 200 and b"/_assets/swagger-ui-bundle.js" in page
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
            status, _, body = fetch(f"{ui.base_url}/_assets/{asset}")
            assert status == 200 and len(body) > 10_000, asset
        assert fetch(f"{url}init.js")[0] == 200

        status, _, body = fetch(f"{url}spec")
        spec = json.loads(body)
        assert status == 200 and set(spec["paths"]) == {"/whoami", "/echo", "/status/{code}"}
        assert spec["servers"][0]["url"] == "/my%20api/proxy/api"

        # "try it out" goes to the proxy route: GET and POST with a body, the status passed on.
        status, _, body = fetch(f"{ui.base_url}/my%20api/proxy/api/whoami")
        assert (status, json.loads(body)["pod"]) == (200, pod)
        status, _, body = fetch(
            f"{url}proxy/api/echo",
            b'{"n": 1}',
            headers={"Content-Type": "application/json", "Origin": ui.base_url},
        )
        assert status == 200 and json.loads(body)["echo"] == {"n": 1}
        assert fetch(f"{url}proxy/api/status/418")[0] == 418
        assert fetch(f"{url}proxy/api/nowhere?x=1")[0] == 404

        status, _, index = fetch(ui.base_url + "/")
        assert status == 200 and b'href="/my%20api/"' in index


def test_restarted_forward_keeps_its_url(api, port_forward) -> None:
    sim, pf, _pod = api
    with LoopThread() as lt:
        ui = lt.start_ui()
        url = lt.call(ui.publish, "api", pf.local_port, "", "openapi.json")  # "" means "api"
        assert fetch(url + "spec")[0] == 200
        pf.kill()  # the forward dies: the page stays, the spec says what is wrong
        status, _, body = fetch(url + "spec")
        assert status == 502 and b"not listening" in body
        assert fetch(url)[0] == 200
        # ... and comes back on another local port: published again, same URL.
        pf2 = port_forward(sim, "service/api", 80)
        assert lt.call(ui.publish, "api", pf2.local_port, "", "openapi.json") == url
        assert fetch(url + "spec")[0] == 200
        lt.call(ui.withdraw, "api")
        status, _, body = fetch(url + "spec")
        assert status == 404 and b"no Swagger UI for 'api'" in body


def test_spec_errors_name_the_url(api) -> None:
    _sim, pf, _pod = api
    with LoopThread() as lt:
        ui = lt.start_ui()
        lt.call(ui.publish, "wrong", pf.local_port, "api", "missing.json")
        status, _, body = fetch(f"{ui.base_url}/wrong/spec")
        assert status == 502
        assert f"127.0.0.1:{pf.local_port}/api/missing.json answered 404".encode() in body
        lt.call(ui.publish, "notspec", pf.local_port, "api", "whoami")
        status, _, body = fetch(f"{ui.base_url}/notspec/spec")
        assert status == 502 and b"no 'openapi' or 'swagger' version field" in body


def test_refuses_foreign_hosts_and_cross_site_requests(api) -> None:
    _sim, pf, _pod = api
    with LoopThread() as lt:
        ui = lt.start_ui()
        url = lt.call(ui.publish, "api", pf.local_port, "api", "openapi.json")
        port = ui.port or 0
        # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host.
        answer = raw(port, b"GET /api/spec HTTP/1.1\r\nHost: evil.example:9100\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 403")
        status, _, _ = fetch(
            f"{url}proxy/api/echo", b"{}", headers={"Origin": "https://evil.example"}
        )
        assert status == 403
        assert fetch(f"{url}proxy/api/whoami", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
        assert fetch(f"http://localhost:{port}/api/spec")[0] == 200  # localhost is fine
        # No way out of the assets folder.
        assert fetch(f"{ui.base_url}/_assets/..%2F..%2F__init__.py")[0] == 404
        assert fetch(f"{ui.base_url}/_assets/.hidden")[0] == 404
        assert fetch(f"{url}spec", b"{}", method="POST")[0] == 405


def test_scans_up_from_9100_when_ports_are_taken() -> None:
    with LoopThread() as lt:
        first = lt.start_ui()
        second = lt.start_ui(first_port=first.port or 0)
        assert (second.port or 0) > (first.port or 0)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            busy = s.getsockname()[1]
            with pytest.raises(SwaggerUIError, match="no free port"):
                lt.start_ui(first_port=busy, port_range=1)


def test_close_cuts_open_connections() -> None:
    with LoopThread() as lt:
        ui = lt.start_ui()
        port = ui.port or 0
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")  # kept alive
        lt.run(ui.close())
        assert conn.recv(65536) == b""  # cut
        conn.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_missing_assets_say_how_to_install(monkeypatch) -> None:
    from kportforward.webui import server

    monkeypatch.setattr(server, "find_assets", lambda: None)
    with LoopThread() as lt, pytest.raises(SwaggerUIError, match=r"kportforward\[swaggerui\]"):
        lt.start_ui()


async def _sticky_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An API that ignores "Connection: close": answers, then keeps the connection open."""
    spec = json.dumps({"openapi": "3.0.3", "info": {"title": "sticky", "version": "1"}}).encode()
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ")[1]
        if path == b"/api/spec.json":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(spec) + spec)
        elif path == b"/chunked":
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )
            writer.close()  # chunked: the relay copies until EOF
            return
        elif path == b"/empty":
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()


@pytest.mark.timeout(30)
def test_proxy_does_not_wait_for_forwards_that_keep_connections_open() -> None:
    with LoopThread() as lt:
        server = lt.run(asyncio.start_server(_sticky_server, "127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        # answer_timeout far above the test's limit: only exact-length copying can pass.
        ui = lt.start_ui(answer_timeout=120)
        url = lt.call(ui.publish, "sticky", port, "api", "spec.json")
        status, _, body = fetch(url + "spec")
        assert status == 200 and json.loads(body)["info"]["title"] == "sticky"
        status, _, body = fetch(url + "proxy/anything")
        assert (status, body) == (200, b"ok")
        assert fetch(url + "proxy/empty")[0] == 204
        assert fetch(url + "proxy/chunked")[2] == b"hello world"
        server.close()
