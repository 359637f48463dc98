"""The Swagger UI server: one small asyncio HTTP server on 127.0.0.1 for every REST forward.

Routes (``NAME`` is the forward's name, percent-encoded):

- ``/``: the published forwards, as links.
- ``/NAME/``: Swagger UI for that forward (assets from ``/_assets/``).
- ``/NAME/spec``: the forward's API document, fetched from ``http://127.0.0.1:PORT/<apiPath>/
  <swaggerPath>`` when asked, with its servers pointed at the proxy route.
- ``/NAME/proxy/…``: any method, relayed to the forward (this is where "try it out" goes).

Everything is same-origin for the browser, so CORS never blocks. Requests whose Host is not this
server's loopback address are refused (DNS rebinding), and so are cross-site requests (an Origin
header that is not ours): a page on the web cannot drive the user's forwards through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
from dataclasses import dataclass
from urllib.parse import quote, unquote

from kportforward.errors import KPortForwardError
from kportforward.webui import http
from kportforward.webui.assets import INSTALL_HINT, Assets, find_assets
from kportforward.webui.spec import SpecError, parse_document, rewrite_document, spec_path

log = logging.getLogger(__name__)

FIRST_PORT = 9100
"""The Go kportforward's first Swagger UI port."""
PORT_RANGE = 100
"""Ports tried from the first one before giving up."""

_URL_SAFE = "/?&=%:@+,;~!$'()*"  # keep a swaggerPath's query and existing escapes as written
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)


class SwaggerUIError(KPortForwardError):
    """The Swagger UI server cannot start (assets missing, no free port)."""


@dataclass(frozen=True, slots=True)
class Published:
    """One forward's Swagger UI: where its API is, and the path of the document on it."""

    name: str
    host: str
    port: int
    document_path: str


class SwaggerUI:
    """Swagger UI for many forwards from one server. Create, ``await start()``, then
    ``publish``/``withdraw`` as forwards come and go (both synchronous, from the loop thread),
    and ``await close()`` at shutdown.

    A forward's URL depends only on its name and this server's port, so a forward that restarts
    (even on another local port: publish it again) keeps its URL, and an open page keeps working.
    """

    def __init__(
        self,
        *,
        first_port: int = FIRST_PORT,
        port_range: int = PORT_RANGE,
        connect_timeout: float = 5.0,
        answer_timeout: float = 60.0,
        assets: Assets | None = None,
    ) -> None:
        self.first_port = first_port
        self.port_range = port_range
        self.connect_timeout = connect_timeout
        self.answer_timeout = answer_timeout
        self._assets = assets
        self._published: dict[str, Published] = {}
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port: int | None = None
        """The port listened on, once started."""

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on 127.0.0.1, on the first free port from ``first_port`` up."""
        if self._server is not None:
            return
        if self._assets is None:
            self._assets = find_assets()
        if self._assets is None:
            raise SwaggerUIError("Swagger UI's files are not installed", INSTALL_HINT)
        last_error: OSError | None = None
        for port in range(self.first_port, self.first_port + self.port_range):
            try:
                self._server = await asyncio.start_server(
                    self._serve, "127.0.0.1", port, limit=http.MAX_HEAD
                )
            except OSError as exc:
                last_error = exc
                continue
            self.port = port
            log.info("Swagger UI listening on %s", self.base_url)
            return
        raise SwaggerUIError(
            f"no free port for Swagger UI in {self.first_port}-"
            f"{self.first_port + self.port_range - 1} ({last_error})",
            "stop whatever holds those ports",
        )

    async def close(self) -> None:
        """Stop listening and cut every open connection (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)

    @property
    def running(self) -> bool:
        """True between start() and close()."""
        return self._server is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (127.0.0.1, not localhost: that may resolve to ::1 first,
        where some other program could be listening)."""
        if self.port is None:
            raise RuntimeError("the Swagger UI server is not started")
        return f"http://127.0.0.1:{self.port}"

    # -- forwards --------------------------------------------------------------------------------
    def publish(
        self,
        name: str,
        local_port: int,
        api_path: str | None,
        swagger_path: str,
        *,
        address: str = "127.0.0.1",
    ) -> str:
        """Serve Swagger UI for forward ``name`` (listening on ``address:local_port``); its URL.

        Idempotent: call it again when the forward restarts or moves port; the URL stays.
        ``api_path`` empty means ``api``, as in the Go tool (see :func:`spec_path`).
        """
        host = "127.0.0.1" if address in ("localhost", "0.0.0.0", "") else address
        host = "::1" if host == "::" else host
        self._published[name] = Published(name, host, local_port, spec_path(api_path, swagger_path))
        return self.url(name)

    def withdraw(self, name: str) -> None:
        """Stop serving forward ``name`` (its page then says so); unknown names are ignored."""
        self._published.pop(name, None)

    def url(self, name: str) -> str:
        """The Swagger UI URL of forward ``name`` (whether or not it is published now)."""
        return f"{self.base_url}/{quote(name, safe='')}/"

    def published(self) -> dict[str, Published]:
        """What is published now, by forward name (a copy)."""
        return dict(self._published)

    # -- serving ---------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    request = await http.read_request(reader)
                except http.HTTPError as exc:
                    writer.write(_error(exc.status, str(exc), keep_alive=False))
                    break
                if request is None:
                    break
                try:
                    keep = await self._route(request, writer)
                except http.HTTPError as exc:
                    keep = request.keep_alive and exc.status != 403  # no second try for those
                    writer.write(_error(exc.status, str(exc), keep_alive=keep))
                await writer.drain()
                if not keep:
                    break
        except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass  # the browser went away, or a relayed answer stalled mid-body
        except Exception:  # a bug must cost one connection, never the server
            log.exception("Swagger UI server: unexpected error")
            with contextlib.suppress(Exception):
                writer.write(_error(500, "internal error (see the log file)", keep_alive=False))
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _route(self, request: http.Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        self._check_origin(request)
        keep = request.keep_alive
        segments = request.path.split("/")  # ["", NAME, rest...] still percent-encoded
        first = unquote(segments[1]) if len(segments) > 1 else ""
        if first == "":
            self._only(request, "GET")
            writer.write(self._index(keep))
            return keep
        if first == "_assets" and len(segments) == 3:
            self._only(request, "GET")
            assert self._assets is not None
            found = self._assets.read(unquote(segments[2]))
            if found is None:
                raise http.HTTPError(404, f"no asset {segments[2]}")
            body, ctype = found
            extra = {"Cache-Control": "public, max-age=86400"}
            writer.write(http.response(200, body, ctype, keep_alive=keep, extra=extra))
            return keep
        pub = self._published.get(first)
        if pub is None:
            known = ", ".join(sorted(self._published)) or "none yet"
            raise http.HTTPError(404, f"no Swagger UI for {first!r} (published: {known})")
        if len(segments) == 2:  # /NAME without the slash: relative URLs need it
            location = f"/{segments[1]}/"
            writer.write(
                http.response(301, b"", "text/plain", keep_alive=keep, extra={"Location": location})
            )
            return keep
        rest = segments[2]
        if rest == "" and len(segments) == 3:
            self._only(request, "GET")
            writer.write(_page(pub, keep))
            return keep
        if rest == "init.js" and len(segments) == 3:
            writer.write(self._init_js(keep))
            return keep
        if rest == "spec" and len(segments) == 3:
            self._only(request, "GET")
            writer.write(await self._spec(pub, segments[1], keep))
            return keep
        if rest == "proxy":
            path = "/" + "/".join(segments[3:])
            if "?" in request.target:
                path += "?" + request.target.split("?", 1)[1]
            await http.relay(
                request,
                http.Upstream(pub.host, pub.port),
                path,
                writer,
                connect_timeout=self.connect_timeout,
                answer_timeout=self.answer_timeout,
            )
            return False
        raise http.HTTPError(404, f"no route {request.path}")

    def _check_origin(self, request: http.Request) -> None:
        allowed = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        if request.header("host") not in allowed:
            raise http.HTTPError(403, "this server answers only to 127.0.0.1 and localhost")
        origin = request.header("origin")
        if origin and origin.split("://", 1)[-1] not in allowed:
            raise http.HTTPError(403, f"cross-site request from {origin} refused")
        if request.header("sec-fetch-site") == "cross-site":
            raise http.HTTPError(403, "cross-site request refused")

    @staticmethod
    def _only(request: http.Request, *methods: str) -> None:
        if request.method not in methods:
            raise http.HTTPError(405, f"{request.method} is not allowed here")

    async def _spec(self, pub: Published, quoted_name: str, keep: bool) -> bytes:
        upstream = http.Upstream(pub.host, pub.port)
        status, body, url = await http.fetch(
            upstream,
            quote(pub.document_path, safe=_URL_SAFE),
            timeout=self.connect_timeout + self.answer_timeout,
        )
        if status != 200:
            raise http.HTTPError(502, f"{url} answered {status}; check swaggerPath and apiPath")
        try:
            doc = parse_document(body)
        except SpecError as exc:
            raise http.HTTPError(502, f"{url}: {exc}") from None
        assert self._assets is not None
        rewritten = rewrite_document(
            doc, spec_url=url, proxy_prefix=f"/{quoted_name}/proxy", ui_major=self._assets.major
        )
        data = json.dumps(rewritten).encode()
        extra = {"Cache-Control": "no-store"}
        return http.response(200, data, "application/json", keep_alive=keep, extra=extra)

    def _index(self, keep: bool) -> bytes:
        items = "".join(
            f'<li><a href="/{quote(name, safe="")}/">{html.escape(name)}</a> '
            f"<small>127.0.0.1:{pub.port}{html.escape(pub.document_path)}</small></li>"
            for name, pub in sorted(self._published.items())
        )
        body = (
            "<!doctype html><meta charset='utf-8'><title>kportforward: Swagger UI</title>"
            "<h1>Swagger UI</h1>"
            + (f"<ul>{items}</ul>" if items else "<p>No REST forward with a swaggerPath yet.</p>")
        )
        extra = {"Content-Security-Policy": _CSP, "Cache-Control": "no-store"}
        return http.response(
            200, body.encode(), "text/html; charset=utf-8", keep_alive=keep, extra=extra
        )

    @staticmethod
    def _init_js(keep: bool) -> bytes:
        # The spec URL is relative to the page (/NAME/), so one script serves every forward; a
        # script file rather than an inline one lets the page forbid inline scripts.
        script = """window.ui = SwaggerUIBundle({
  url: new URL("spec", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl],
  layout: "StandaloneLayout",
  validatorUrl: null,
  oauth2RedirectUrl: window.location.origin + "/_assets/oauth2-redirect.html"
});
"""
        extra = {"Cache-Control": "no-store"}
        return http.response(
            200, script.encode(), "text/javascript; charset=utf-8", keep_alive=keep, extra=extra
        )


def _page(pub: Published, keep: bool) -> bytes:
    title = html.escape(f"{pub.name} · Swagger UI · kportforward")
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="/_assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/_assets/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/_assets/swagger-ui-bundle.js"></script>
<script src="/_assets/swagger-ui-standalone-preset.js"></script>
<script src="init.js"></script>
</body>
</html>
"""
    extra = {"Content-Security-Policy": _CSP, "Cache-Control": "no-store"}
    return http.response(
        200, body.encode(), "text/html; charset=utf-8", keep_alive=keep, extra=extra
    )


def _error(status: int, message: str, *, keep_alive: bool) -> bytes:
    body = json.dumps({"error": message, "status": status}).encode()
    return http.response(status, body, "application/json", keep_alive=keep_alive)
