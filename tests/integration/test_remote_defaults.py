"""Remote defaults against a real local HTTPS server whose certificate a throw-away CA signed.

The CA and the server certificate are made with the ``openssl`` CLI per session; the client trusts
the CA only through ``SSL_CERT_FILE`` (the system trust store mechanism), as a user would.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import shutil
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kportforward import remote_defaults
from kportforward.core.config import load_config
from kportforward.core.config_paths import remote_cache_path
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(60)

TEAM = (
    "portForwards:\n"
    "  team-api: {target: service/api, targetPort: 80, localPort: 18080, namespace: team}\n"
    "  team-db: {target: sts/db, targetPort: 5432, localPort: 15432, namespace: data}\n"
    "monitoringInterval: 2s\n"
)


@dataclass
class Site:
    """What the test server answers, and what it saw."""

    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0
    base: str = ""
    http_base: str = ""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away CA (ca.pem) and a server certificate for 127.0.0.1/localhost it signed."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not found")
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=kportforward test CA", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext",
             cwd=d)  # fmt: skip
    return d


def _handler(site: Site) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append((self.path, dict(self.headers)))
            if self.path == "/trickle":  # headers one byte at a time: per-read timeouts never fire
                try:
                    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 40:
                        self.wfile.write(bytes([byte]))
                        time.sleep(0.2)
                except OSError:
                    pass
                return
            if site.delay:
                time.sleep(site.delay)
            status, headers, body = site.routes.get(self.path, (404, {}, b"not found"))
            etag = headers.get("ETag")
            if status == 200 and etag and self.headers.get("If-None-Match") == etag:
                status, body = 304, b""
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def site(certs: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """An HTTPS server on 127.0.0.1 (trusted through SSL_CERT_FILE) and a plain-http twin."""
    s = Site()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    https.daemon_threads = True
    https.socket = context.wrap_socket(https.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    plain.daemon_threads = True
    s.base = f"https://127.0.0.1:{https.server_address[1]}"
    s.http_base = f"http://127.0.0.1:{plain.server_address[1]}"
    threads = [threading.Thread(target=srv.serve_forever, daemon=True) for srv in (https, plain)]
    for t in threads:
        t.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(certs / "ca.pem"))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    load_config.cache_clear()
    try:
        yield s
    finally:
        s.delay = 0
        for srv in (https, plain):
            srv.shutdown()
            srv.server_close()
        load_config.cache_clear()


def serve(site: Site, path: str, body: str, etag: str = '"v1"') -> str:
    site.routes[path] = (200, {"ETag": etag, "Content-Type": "application/yaml"}, body.encode())
    return site.base + path


def test_fetched_defaults_merge_under_the_user_file_and_are_cached(
    site: Site, hermetic_env: Path
) -> None:
    url = serve(site, "/team.yaml", TEAM)
    user = hermetic_env / ".config" / "kportforward" / "config.yaml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text("portForwards:\n  team-api: {localPort: 9000}\n  team-db: {disabled: true}\n")
    remote = remote_defaults.prepare(url, None, fetch_now=True)
    assert remote is not None and remote.notice is None
    config = load_config()
    assert [s.name for s in config.forwards] == ["team-api"]
    api = config.forward("team-api")
    assert (api.local_port, api.namespace) == (9000, "team")  # field by field
    assert config.sources[1] == url
    assert config.settings.monitoring_interval == 2.0
    cache = Path(remote_cache_path(os.environ) or "")
    assert cache.parent == hermetic_env / ".config" / "kportforward"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert cache.read_text().endswith(TEAM) and url in cache.read_text().splitlines()[0]


def test_a_refetch_is_conditional_and_a_change_is_applied(site: Site) -> None:
    url = serve(site, "/team.yaml", TEAM)
    remote = remote_defaults.prepare(url, None, fetch_now=True)
    assert remote is not None
    first = load_config()

    assert asyncio.run(remote.refresh()) is None  # 304: nothing changed
    assert site.requests[-1][1].get("If-None-Match") == '"v1"'
    assert load_config() is first
    assert remote.notice is None
    serve(site, "/team.yaml", TEAM.replace("18080", "18081"), etag='"v2"')
    changed = asyncio.run(remote.refresh())
    assert changed is not None and changed.forward("team-api").local_port == 18081
    # A new process starts from the cache and revalidates it with its ETag.
    fresh = remote_defaults.RemoteDefaults(url)
    fresh.load_cache()
    assert fresh.fetch_now() is False
    assert site.requests[-1][1].get("If-None-Match") == '"v2"'


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ((500, {}, b"boom"), "HTTP 500"),
        ((404, {}, b"nope"), "HTTP 404"),
        ((200, {}, b"portForwards: [\n"), "invalid config"),
        ((200, {}, b"<html>sign in to the wifi</html>\n"), "invalid config"),
        ((200, {}, b"portForwards: {a: {target: svc/a}}\n" + b"#" * (11 * 2**20)), "larger than"),
    ],
)
def test_a_failed_fetch_keeps_the_last_good_copy(
    site: Site, route: tuple[int, dict[str, str], bytes], reason: str
) -> None:
    url = serve(site, "/team.yaml", TEAM)
    remote_defaults.prepare(url, None, fetch_now=True)
    cache = Path(remote_cache_path(os.environ) or "")
    before = cache.read_bytes()
    site.routes["/team.yaml"] = route
    load_config.cache_clear()
    remote = remote_defaults.prepare(url, None, fetch_now=True)
    assert remote is not None and remote.notice is not None and reason in remote.notice
    config = load_config()
    assert "team-api" in {s.name for s in config.forwards}  # from the cache
    assert any(reason in w.message and "cached" in w.message for w in config.warnings)
    assert cache.read_bytes() == before


def test_a_slow_server_times_out(site: Site) -> None:
    url = serve(site, "/team.yaml", TEAM)
    site.delay = 3.0
    remote = remote_defaults.RemoteDefaults(url, timeout=1.0)
    remote.load_cache()
    assert remote.fetch_now() is False
    assert remote.notice is not None and "no answer within 1s" in remote.notice
    assert "embedded defaults" in remote.notice
    assert load_config().forwards == ()


def test_a_trickling_server_cannot_outlast_the_timeout(site: Site) -> None:
    remote = remote_defaults.RemoteDefaults(site.base + "/trickle", timeout=1.0)
    assert remote.fetch_now() is False
    assert remote.notice is not None and "no answer within 1s" in remote.notice


def test_a_redirect_from_https_to_http_is_refused(site: Site) -> None:
    serve(site, "/team.yaml", TEAM)
    site.routes["/moved"] = (302, {"Location": site.http_base + "/team.yaml"}, b"")
    with pytest.raises(remote_defaults.RemoteError, match="refused a redirect from https to http"):
        remote_defaults.fetch(site.base + "/moved")
    site.routes["/moved-ok"] = (301, {"Location": site.base + "/team.yaml"}, b"")
    assert remote_defaults.fetch(site.base + "/moved-ok").text == TEAM


def test_an_untrusted_certificate_is_refused(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    url = serve(site, "/team.yaml", TEAM)
    monkeypatch.setenv("SSL_CERT_FILE", os.devnull)
    monkeypatch.setenv("SSL_CERT_DIR", os.devnull)
    with pytest.raises(remote_defaults.RemoteError, match="certificate not trusted"):
        remote_defaults.fetch(url)


def test_plain_http_only_to_loopback() -> None:
    with pytest.raises(remote_defaults.RemoteError, match=r"only for 127\.0\.0\.1"):
        remote_defaults.fetch("http://example.com/team.yaml")
    with pytest.raises(remote_defaults.RemoteError, match="https"):
        remote_defaults.fetch("file:///etc/passwd")


def test_a_cache_for_another_url_is_ignored(site: Site) -> None:
    url = serve(site, "/team.yaml", TEAM)
    remote_defaults.prepare(url, None, fetch_now=True)
    other = remote_defaults.RemoteDefaults(site.base + "/other.yaml")
    other.load_cache()
    assert load_config().forwards == ()


def test_the_cli_flag_the_user_setting_and_the_empty_url(site: Site, hermetic_env: Path) -> None:
    url = serve(site, "/team.yaml", TEAM)
    result = run_cli("--config-url", url, "check", "--offline", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "team-api" in result.stdout and url in result.stderr
    user = hermetic_env / ".config" / "kportforward" / "config.yaml"
    user.write_text(f"configUrl: {url}\nportForwards: {{}}\n")
    result = run_cli("check", "--offline", "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    assert '"team-db"' in result.stdout
    result = run_cli("check", "--offline", "--config-url", "", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "team-api" not in result.stdout


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory", "garbage"])
def test_a_hostile_cache_is_ignored_and_never_blocks(site: Site, kind: str) -> None:
    url = serve(site, "/team.yaml", TEAM)
    cache = Path(remote_cache_path(os.environ) or "")
    cache.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(cache)
    elif kind == "dev_zero":
        cache.symlink_to("/dev/zero")
    elif kind == "directory":
        cache.mkdir()
    else:
        cache.write_bytes(b"# kportforward remote defaults cache {not json\n\x00\x01")
    remote = remote_defaults.prepare(url, None, fetch_now=False)  # the dashboard's start
    assert remote is not None
    assert load_config().forwards == ()  # nothing usable cached: the embedded defaults
    assert remote.fetch_now() is True  # the fetch still works; a bad cache path only logs
    assert "team-api" in {s.name for s in load_config().forwards}
