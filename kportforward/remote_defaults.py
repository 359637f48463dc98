"""Remote defaults: a team's shared config, fetched over https and merged under the user's file.

The Go kportforward fetches its defaults from a URL at start (5 s timeout), caches the last good
copy at ``~/.config/kportforward/remote-defaults-cache.yaml`` and falls back to the cache, then
to the embedded defaults. This does the same, and more carefully:

- https only (plain http only to a loopback address, for tests); certificates are verified against
  the system trust store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured); a redirect from https to
  http is refused; the body is capped at :data:`~kportforward.core.config_yaml.MAX_CONFIG_BYTES`.
- The body is validated like a user file before it is used or cached; an invalid copy never
  replaces a good one.
- The cache is written atomically (temp file + rename, 0600) with the URL, ``ETag`` and
  ``Last-Modified`` in a comment on its first line, so a refetch sends ``If-None-Match`` /
  ``If-Modified-Since`` and a cache made for another URL is ignored.
- The layer is merged between the embedded defaults and the user file (field by field;
  ``disabled: true`` in the user file still removes an entry) through
  :func:`kportforward.core.config.set_remote_defaults`. A failure never stops the program: the last
  good copy (or nothing) is used and one warning in :attr:`Config.warnings` says why.

Where the URL comes from: ``--config-url URL`` (``""``: embedded defaults only), else ``configUrl``
in the user file or the ``--config`` file. Without either, nothing is fetched (unlike the Go tool,
whose default URL is its authors' own team config).

API: :func:`prepare` once at start (the CLI calls it: it fetches synchronously for ``run`` and
``check``, reads only the cache for the dashboard so the first frame never waits), then
:meth:`RemoteDefaults.refresh` from a background task (the supervisor's reload applies the result).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http.client
import json
import logging
import os
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from kportforward.core import config as config_mod
from kportforward.core.config_paths import remote_cache_path
from kportforward.core.config_schema import ParsedSource, check_url
from kportforward.core.config_yaml import MAX_CONFIG_BYTES, decode, read_text
from kportforward.core.models import Config, ConfigWarning
from kportforward.errors import ArgumentError, ConfigError

log = logging.getLogger(__name__)

TIMEOUT = 5.0
"""Seconds for the whole fetch (connect, TLS, headers, body), as in the Go tool."""
REFRESH_INTERVAL = 300.0
"""Seconds between background refetches (a conditional GET: cheap when nothing changed)."""
MAX_REDIRECTS = 5
_HEADER = "# kportforward remote defaults cache "


class RemoteError(Exception):
    """A fetch that produced no usable config; the message is one line for a person."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful fetch: the text (None when the server said 304 Not Modified) and validators."""

    text: str | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class CachedCopy:
    """The last good copy on disk and what it was fetched from."""

    url: str
    text: str
    etag: str | None
    last_modified: str | None
    fetched_at: float


def validate_url(url: str) -> str:
    """``url`` when it may serve remote defaults; ArgumentError naming the problem otherwise."""
    problem = check_url(url)
    if problem:
        raise ArgumentError(f"--config-url {url!r}: {problem}", "pass an https:// URL, or ''")
    return url


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follows a few redirects, never from https to http, never to a URL we would not fetch."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        """Refuse a redirect that leaves https or goes somewhere we would not fetch."""
        old = urllib.parse.urlsplit(req.full_url).scheme
        new = urllib.parse.urlsplit(newurl).scheme
        if old == "https" and new != "https":
            raise RemoteError(f"refused a redirect from https to {new}: {newurl}")
        problem = check_url(newurl)
        if problem:
            raise RemoteError(f"refused a redirect to {newurl}: {problem}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    # create_default_context() loads the system store; OpenSSL reads SSL_CERT_FILE/SSL_CERT_DIR.
    context = ssl.create_default_context()
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoDowngrade())


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = TIMEOUT,
) -> Fetched:
    """GET ``url`` (conditionally when validators are given); RemoteError with the reason if not.

    The body is checked like a user file (whole-file problems are errors); the caller merges it.
    """
    problem = check_url(url)
    if problem:
        raise RemoteError(f"{url}: {problem}")
    headers = {"User-Agent": "kportforward", "Accept": "application/yaml, text/plain, */*"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers)
    deadline = time.monotonic() + timeout
    try:
        with _opener().open(request, timeout=timeout) as response:
            body = _read_capped(response, deadline)
            got_etag = response.headers.get("ETag")
            got_modified = response.headers.get("Last-Modified")
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Fetched(None, etag, last_modified)
        raise RemoteError(f"the server answered HTTP {exc.code} {exc.reason}") from None
    except RemoteError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise RemoteError(f"certificate not trusted: {exc.verify_message}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise RemoteError(f"certificate not trusted: {reason.verify_message}") from None
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise RemoteError(f"no answer within {timeout:g}s") from None
        raise RemoteError(f"cannot fetch: {reason}") from None
    text = _validated(body, url)
    return Fetched(text, got_etag, got_modified)


def _read_capped(response: Any, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        # read1: one recv at most, so a server trickling bytes cannot outlast the deadline.
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_CONFIG_BYTES:
            raise RemoteError(f"the config is larger than {MAX_CONFIG_BYTES} bytes")
        chunks.append(chunk)


def _validated(body: bytes, url: str) -> str:
    try:
        text = decode(body, url)
        config_mod.parse_config_text(text, url)
    except ConfigError as exc:
        raise RemoteError(f"invalid config: {exc}") from None
    return text


def read_cache(url: str, path: str | None = None) -> CachedCopy | None:
    """The cached copy for ``url``, or None (missing, made for another URL, or invalid)."""
    path = path or remote_cache_path(os.environ)
    if path is None or not os.path.exists(path):
        return None
    try:
        text = read_text(path)
    except ConfigError as exc:
        log.warning("remote defaults cache unusable: %s", exc)
        return None
    first, _, _ = text.partition("\n")
    if not first.startswith(_HEADER):
        return None  # the Go tool's cache carries no URL: it may be for another one
    try:
        meta = json.loads(first[len(_HEADER) :])
    except ValueError:
        return None
    if not isinstance(meta, dict) or meta.get("url") != url:
        return None
    try:
        config_mod.parse_config_text(text, path)
    except ConfigError as exc:
        log.warning("remote defaults cache invalid: %s", exc)
        return None
    return CachedCopy(
        url,
        text,
        meta.get("etag") if isinstance(meta.get("etag"), str) else None,
        meta.get("lastModified") if isinstance(meta.get("lastModified"), str) else None,
        float(meta["fetchedAt"]) if isinstance(meta.get("fetchedAt"), int | float) else 0.0,
    )


def write_cache(url: str, fetched: Fetched, path: str | None = None) -> None:
    """Replace the cache atomically with ``fetched`` (best effort: a failure is only logged)."""
    path = path or remote_cache_path(os.environ)
    if path is None or fetched.text is None:
        return
    meta = {
        "url": url,
        "etag": fetched.etag,
        "lastModified": fetched.last_modified,
        "fetchedAt": time.time(),
    }
    data = f"{_HEADER}{json.dumps(meta)}\n{fetched.text}"
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".remote-defaults-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.warning("cannot write the remote defaults cache %s: %s", path, exc)


def _when(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True) if ts else "an earlier run"


class RemoteDefaults:
    """The remote layer for one URL: the last good text, its validators, and the latest notice."""

    def __init__(self, url: str, *, cache_path: str | None = None, timeout: float = TIMEOUT):
        self.url = url
        self.cache_path = cache_path
        self.timeout = timeout
        self.interval = REFRESH_INTERVAL
        self.notice: str | None = None
        """Why the last fetch did not give a new copy (None after a success)."""
        self._good: CachedCopy | None = None
        self._installed: tuple[str | None, str | None, ParsedSource] | None = None

    def load_cache(self) -> None:
        """Install the cached copy for this URL, if there is one (no network)."""
        self._good = read_cache(self.url, self.cache_path)
        self._install()

    def fetch_now(self) -> bool:
        """Fetch synchronously (blocking up to the timeout); True when a new copy was installed."""
        good = self._good
        try:
            got = self._fetch_bounded(good)
        except RemoteError as exc:
            fallback = (
                f"using the copy cached {_when(good.fetched_at)}"
                if good
                else ("using the embedded defaults")
            )
            self.notice = f"remote defaults {self.url} not updated: {exc}; {fallback}"
            log.warning("%s", self.notice)
            self._install()
            return False
        self.notice = None
        if got.text is None:  # 304: the copy we have is current
            self._install()
            return False
        if good is not None and got.text == good.text:
            self._install()
            return False
        write_cache(self.url, got, self.cache_path)
        self._good = CachedCopy(self.url, got.text, got.etag, got.last_modified, time.time())
        self._install()
        return True

    def _fetch_bounded(self, good: CachedCopy | None) -> Fetched:
        """:func:`fetch` with a hard wall-clock bound: a server that trickles its headers byte by
        byte defeats per-read socket timeouts, so the fetch runs on a daemon thread we stop
        waiting for (it ends on its own at the next socket timeout)."""
        box: list[Fetched | RemoteError] = []

        def work() -> None:
            try:
                box.append(
                    fetch(
                        self.url,
                        etag=good.etag if good else None,
                        last_modified=good.last_modified if good else None,
                        timeout=self.timeout,
                    )
                )
            except RemoteError as exc:
                box.append(exc)
            except Exception as exc:  # never let a surprise escape the thread silently
                box.append(RemoteError(f"cannot fetch: {type(exc).__name__}: {exc}"))

        thread = threading.Thread(target=work, name="remote-defaults", daemon=True)
        thread.start()
        thread.join(self.timeout + 0.5)
        if not box:
            raise RemoteError(f"no answer within {self.timeout:g}s")
        result = box[0]
        if isinstance(result, RemoteError):
            raise result
        return result

    async def refresh(self, config_path: str | os.PathLike[str] | None = None) -> Config | None:
        """Fetch in a worker thread; the new merged Config when it changed, else None.

        On failure the last good copy stays and :attr:`notice` says why (show it once). Call it
        every :attr:`interval` seconds and pass a non-None result to the supervisor's reload.
        A ConfigError from the user's own files propagates, as from any reload.
        """
        before = config_mod.load_config(config_path)
        await asyncio.to_thread(self.fetch_now)
        after = config_mod.load_config(config_path)
        return None if after is before else after

    def _install(self) -> None:
        text = self._good.text if self._good else None
        done = self._installed
        if done and done[:2] == (text, self.notice) and config_mod.remote_defaults() is done[2]:
            return  # the same layer: the cached Config (and its identity) stays
        warnings: tuple[ConfigWarning, ...] = ()
        if self.notice:
            warnings = (ConfigWarning(self.notice),)
        if self._good is None:
            state = "unavailable" if self.notice else "not fetched yet"
            source = ParsedSource(f"{self.url} ({state})", warnings=warnings)
        else:
            parsed = config_mod.parse_config_text(self._good.text, self.url)
            extra: tuple[ConfigWarning, ...] = ()
            if parsed.config_url is not None:
                extra = (ConfigWarning("configUrl in remote defaults is ignored", self.url),)
            source = ParsedSource(
                self.url,
                parsed.forwards,
                parsed.settings,
                (*warnings, *parsed.warnings, *extra),
            )
        self._installed = (text, self.notice, source)
        config_mod.set_remote_defaults(source)


def prepare(
    url_arg: str | None,
    config_path: str | os.PathLike[str] | None,
    *,
    fetch_now: bool,
) -> RemoteDefaults | None:
    """Set up the remote layer at start; None when no URL is configured (or ``--config-url ""``).

    ``fetch_now``: fetch synchronously with the timeout (``run``, ``check``); otherwise only the
    cache is read and the caller refreshes in the background (the dashboard's first frame must
    not wait on the network).
    """
    url = url_arg if url_arg is not None else config_mod.configured_url(config_path)
    if not url:
        config_mod.set_remote_defaults(None)
        return None
    if url_arg is not None:
        validate_url(url)
    remote = RemoteDefaults(url)
    remote.load_cache()
    if fetch_now:
        remote.fetch_now()
    return remote
