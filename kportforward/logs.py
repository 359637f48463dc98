"""Logging set-up for every command: a user-only log file, nothing secret in it, and a log that can
never break the program.

The log file is opened once, through ``safeio.open_output_file``: a FIFO, a directory or someone
else's file is refused (exit 2) without blocking; an existing file of ours is tightened to 0600;
``/dev/null`` and ``/dev/full`` are accepted. Records are written unbuffered, so a failure shows up
at the record that caused it; the first failure (a full disk, a removed mount) is reported on
stderr in one line and the handler disables itself — never a traceback per record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading

from kportforward.errors import OutputPathError
from kportforward.safeio import open_output_file, reason_of

# Bearer tokens and similar must never reach a log, whatever a library chooses to print.
_SECRET = re.compile(
    r"(?i)(authorization:\s*bearer\s+|bearer\s+|(?:token|password|secret)[\"']?\s*[:=]\s*[\"']?)"
    r"([A-Za-z0-9._~+/=-]{6,})"
)
_SECRET_WORDS = ("bearer", "token", "password", "secret")
# A JSON Web Token (the usual shape of a Kubernetes/OIDC bearer token), anywhere in a line.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# A long run of token characters with upper case, lower case and digits (a cloud access token, an
# API key): pod names and hex digests are lower case, paths start with a slash.
_OPAQUE = re.compile(
    r"(?<![A-Za-z0-9._~+/=-])(?!/)(?=[A-Za-z0-9._~+/=-]*[0-9])(?=[A-Za-z0-9._~+/=-]*[a-z])"
    r"(?=[A-Za-z0-9._~+/=-]*[A-Z])[A-Za-z0-9._~+/=-]{32,}(?![A-Za-z0-9._~+/=-])"
)
# In text a credential plugin wrote, anything token-like counts: 20+ token characters.
_PLUGIN_WORD = re.compile(r"[A-Za-z0-9._~+/=-]{20,}")


def redact(text: str) -> str:
    """Replace anything that looks like a credential with ``<redacted>``."""
    # Cheap substring tests first: these run on every kubectl line and every log record.
    lower = text.lower()
    if any(word in lower for word in _SECRET_WORDS):
        text = _SECRET.sub(r"\1<redacted>", text)
    if "eyJ" in text:
        text = _JWT.sub("<redacted>", text)
    if len(text) >= 32:
        text = _OPAQUE.sub("<redacted>", text)
    return text


def redact_strict(text: str) -> str:
    """``redact``, then also every run of 20+ token characters: for text whose author may print
    a credential in any shape (an exec credential plugin's stderr)."""
    return _PLUGIN_WORD.sub("<redacted>", redact(text))


class RedactingFormatter(logging.Formatter):
    """A formatter that redacts credentials from every formatted record."""

    def format(self, record: logging.LogRecord) -> str:
        """Format, then redact."""
        return redact(super().format(record))


class SafeFileHandler(logging.Handler):
    """Writes records to an already-open descriptor, unbuffered; on the first failure it reports
    once on stderr and disables itself, so a full disk never floods the terminal."""

    def __init__(self, fd: int, name: str) -> None:
        super().__init__()
        self.fd: int | None = fd
        self.path = name
        self.failed: str | None = None
        """Why the handler disabled itself (None while it works)."""
        self._write_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Write one formatted record; never raises."""
        if self.fd is None:
            return
        try:
            data = (self.format(record) + "\n").encode("utf-8", "replace")
        except Exception:
            return  # a record whose arguments cannot be formatted is dropped, not the log
        with self._write_lock:
            if self.fd is None:
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError as exc:
                self._disable(exc.strerror or type(exc).__name__)

    def _disable(self, reason: str) -> None:
        fd, self.fd = self.fd, None
        self.failed = reason
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            sys.stderr.write(
                f"kportforward: warning: cannot write the log file {self.path} ({reason}); "
                "logging stopped\n"
            )
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass

    def handleError(self, record: logging.LogRecord) -> None:
        """Never print logging's traceback; there is nothing to add to the one-line report."""

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        with self._write_lock:
            fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        super().close()


def setup_logging(log_file: str | None, verbose: int) -> None:
    """Log to ``log_file`` (0600) at INFO, or DEBUG with ``-v``; never to the terminal.

    Raises OutputPathError (exit 2, one line) when the path is not a file we may write.
    """
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if isinstance(handler, SafeFileHandler):
            handler.close()
    # Records must never fall through to logging.lastResort (a stray stderr line), even if the
    # log file below cannot be opened.
    root.addHandler(logging.NullHandler())
    logging.raiseExceptions = False
    if not log_file:
        return
    path = os.path.expanduser(log_file)

    def error(message: str, hint: str) -> OutputPathError:
        reason = reason_of(message, "log file", path)
        return OutputPathError(
            f"cannot write the log file {log_file}: {reason}",
            "choose a writable file for --log-file",
        )

    # /dev/null discards, /dev/full fails every write (a test of the full-disk path); any other
    # device (a terminal) would put log lines where the dashboard draws.
    device_ok = os.path.realpath(path) in ("/dev/null", "/dev/full")
    fd = open_output_file(path, what="log file", error=error, allow_device=device_ok)
    handler = SafeFileHandler(fd, log_file)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
