"""Logging set-up for every command: a user-only log file, and nothing secret in it."""

from __future__ import annotations

import logging
import os
import re

from kportforward.errors import OutputPathError

# Bearer tokens and similar must never reach a log, whatever a library chooses to print.
_SECRET = re.compile(
    r"(?i)(authorization:\s*bearer\s+|bearer\s+|token[\"']?\s*[:=]\s*[\"']?)([A-Za-z0-9._~+/=-]{6,})"
)


def redact(text: str) -> str:
    """Replace anything that looks like a credential with ``<redacted>``."""
    return _SECRET.sub(r"\1<redacted>", text)


class RedactingFormatter(logging.Formatter):
    """A formatter that redacts credentials from every formatted record."""

    def format(self, record: logging.LogRecord) -> str:
        """Format, then redact."""
        return redact(super().format(record))


def setup_logging(log_file: str | None, verbose: int) -> None:
    """Log to ``log_file`` (created 0600) at INFO, or DEBUG with ``-v``; never to the terminal.

    Raises OutputPathError when the file cannot be created or written.
    """
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    # Records must never fall through to logging.lastResort (a stray stderr line), even if the
    # log file below cannot be opened.
    root.addHandler(logging.NullHandler())
    if not log_file:
        return
    path = os.path.expanduser(log_file)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise OutputPathError(
            f"cannot write the log file {log_file}: {exc.strerror or exc}",
            "choose a writable path for --log-file",
        ) from None
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
