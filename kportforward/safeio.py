"""Reading and writing files a user named, without ever hanging, exhausting memory or following
something that is not a file.

A path given on the command line, in ``$KUBECONFIG`` or in a config may name anything: a FIFO
(opening it blocks until a writer appears), ``/dev/zero`` (endless), a directory, a symlink loop,
a 60 MB file. Every user-named file goes through here:

- ``read_user_file`` reads a regular file up to a size cap; a pipe only when it is an inherited
  stream (``/dev/fd/N``, ``/dev/stdin``, ``/proc/self/fd/N``, as ``<(command)`` makes), read once
  within a time bound and remembered, so reading the same pipe again gives the same bytes. A
  named FIFO, a device, a directory or a socket is refused without being opened.
- ``open_output_file`` opens a file for appending or writing: a regular file (tightened to 0600 if
  it is ours, refused if it is someone else's) or, where allowed, a character device such as
  ``/dev/null``; never a FIFO, a directory or a socket; never blocks.

Errors are the caller's exit-2 class with one line naming the path and what to do. Only the standard
library is used, so core/ may call this too.
"""

from __future__ import annotations

import errno
import os
import re
import select
import stat
import sys
import threading
import time
from collections.abc import Callable

from kportforward.errors import BadInputError

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
"""Opening never blocks on a FIFO or device (POSIX; Windows has no such flag and no FIFOs)."""

MiB = 1 << 20
_CHUNK = 1 << 16
_STREAM_PATH = re.compile(r"^/(dev/fd/\d+|dev/stdin|proc/(self|\d+)/fd/\d+)$")

# (st_dev, st_ino) of a pipe -> the bytes it held: a pipe can be read once only, and the program
# may need its contents more than once (the startup check, then the watcher).
_streams: dict[tuple[int, int], bytes] = {}
_streams_lock = threading.Lock()

ErrorFactory = Callable[[str, str], Exception]


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.0f} KiB"


def reason_of(message: str, what: str, path: str) -> str:
    """The part of a message from this module after the file is named (``is a directory, not a
    regular file``, ``permission denied`` …), for callers that phrase their own message."""
    for prefix in (
        f"cannot read {what} {path}: ",
        f"cannot write {what} {path}: ",
        f"{what} {path}",
    ):
        if message.startswith(prefix):
            return message[len(prefix) :].lstrip(": ").strip()
    return message


def is_stream_path(path: str) -> bool:
    """True for paths that name an inherited stream (``/dev/fd/N``, ``/dev/stdin`` …)."""
    return bool(_STREAM_PATH.match(path))


def _stat_error(path: str, what: str, exc: OSError, error: ErrorFactory) -> Exception:
    if exc.errno == errno.ELOOP:
        return error(f"{what} {path} is a symbolic link loop", "point it at a real file")
    if exc.errno == errno.EACCES:
        return error(f"cannot read {what} {path}: permission denied", "check its permissions")
    reason = exc.strerror or type(exc).__name__
    return error(f"cannot read {what} {path}: {reason}", "check the path")


def read_user_file(
    path: str | os.PathLike[str],
    *,
    what: str,
    error: ErrorFactory = BadInputError,
    max_bytes: int = 4 * MiB,
    timeout: float = 10.0,
    missing_ok: bool = False,
    allow_stream: bool = True,
) -> bytes | None:
    """The bytes of the user-named file ``path`` (a ``what``, e.g. "kubeconfig"), bounded.

    Returns None when the file does not exist and ``missing_ok``. Raises ``error(message, hint)``
    for anything that is not a regular file (or, with ``allow_stream``, an inherited pipe), a file
    larger than ``max_bytes``, or a pipe that does not reach its end within ``timeout`` seconds.
    Never blocks longer than ``timeout`` and never reads more than ``max_bytes + 1`` bytes.
    """
    name = os.fspath(path)
    try:
        # stat (following links) before open: opening a FIFO or a device can block or act.
        st = os.stat(name)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise error(f"{what} {name} does not exist", "check the path") from None
    except OSError as exc:
        raise _stat_error(name, what, exc, error) from None
    stream = stat.S_ISFIFO(st.st_mode) and allow_stream and is_stream_path(name)
    if not stat.S_ISREG(st.st_mode) and not stream:
        hint = "point it at the file itself"
        if stat.S_ISFIFO(st.st_mode) and allow_stream:
            hint = "save it to a file first, or pass it as <(command)"
        raise error(f"{what} {name} is {_kind(st.st_mode)}, not a regular file", hint)
    if stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
        raise error(
            f"{what} {name} is {_size(st.st_size)}, more than the {_size(max_bytes)} allowed",
            f"is this really a {what}?",
        )
    if stream:
        with _streams_lock:
            cached = _streams.get((st.st_dev, st.st_ino))
        if cached is not None:
            return cached
    flags = os.O_RDONLY | _O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise error(f"{what} {name} does not exist", "check the path") from None
    except OSError as exc:
        raise _stat_error(name, what, exc, error) from None
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise error(f"{what} {name} changed while being opened", "try again")
        data = _read_bounded(fd, name, what, error, max_bytes, timeout, pipe=stream)
    finally:
        os.close(fd)
    if stream:
        with _streams_lock:
            _streams[(st.st_dev, st.st_ino)] = data
    return data


def _read_bounded(
    fd: int,
    name: str,
    what: str,
    error: ErrorFactory,
    max_bytes: int,
    timeout: float,
    *,
    pipe: bool,
) -> bytes:
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    total = 0
    while True:
        if pipe:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                raise error(
                    f"{what} {name}: the pipe did not finish within {timeout:g}s",
                    "save it to a file first",
                )
        try:
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
        except BlockingIOError:
            continue
        except OSError as exc:
            raise _stat_error(name, what, exc, error) from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise error(
                f"{what} {name} is larger than the {_size(max_bytes)} allowed",
                f"is this really a {what}?",
            )
        if not pipe and time.monotonic() > deadline:
            raise error(f"{what} {name}: reading took longer than {timeout:g}s", "check the disk")


def open_output_file(
    path: str | os.PathLike[str],
    *,
    what: str,
    error: ErrorFactory = BadInputError,
    append: bool = True,
    allow_device: bool = False,
) -> int:
    """Open the user-named output file ``path`` and return the descriptor (the caller closes it).

    Creates it 0600 when missing. An existing regular file must belong to us and is tightened to
    0600 (it may hold a log's tokens-to-be-redacted context, or a kubeconfig's token). With
    ``allow_device`` a character device (``/dev/null``, ``/dev/full``) is accepted as is. A FIFO, a
    directory, a socket, a symlink loop or someone else's file is refused with one line; nothing
    here can block. ``append`` False truncates a regular file.
    """
    name = os.fspath(path)
    if os.path.realpath(name).startswith(("/proc/", "/sys/")):
        # Kernel files: writing (or chmod-ing, as root) them is never what a user meant.
        raise error(f"{what} {name} is a kernel file under /proc or /sys", "choose a file path")
    try:
        st: os.stat_result | None = os.stat(name)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _stat_error(name, what, exc, error) from None
    if st is not None:
        device_ok = allow_device and stat.S_ISCHR(st.st_mode)
        if not stat.S_ISREG(st.st_mode) and not device_ok:
            raise error(
                f"{what} {name} is {_kind(st.st_mode)}, not a regular file",
                "choose a file path",
            )
    flags = os.O_WRONLY | os.O_CREAT | _O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_APPEND if append else 0
    try:
        fd = os.open(name, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO appeared between stat and open: nobody reads it
            raise error(f"{what} {name} is a named pipe (FIFO)", "choose a file path") from None
        reason = exc.strerror or type(exc).__name__
        raise error(f"cannot write {what} {name}: {reason}", "choose a writable path") from None
    try:
        now = os.fstat(fd)
        if stat.S_ISREG(now.st_mode):
            if hasattr(os, "getuid") and now.st_uid != os.getuid():
                raise error(
                    f"{what} {name} belongs to another user (uid {now.st_uid})",
                    "choose a file of your own",
                )
            if not now.st_mode & stat.S_IWUSR:
                # Root may write anything: a file marked read-only (or /proc's) is still refused.
                raise error(
                    f"{what} {name} is read-only (mode {now.st_mode & 0o777:o})",
                    "make it writable (chmod u+w) or choose another file",
                )
            if now.st_mode & 0o077:
                try:
                    if sys.platform != "win32":  # Windows has no mode bits to tighten
                        os.fchmod(fd, 0o600)
                except OSError as exc:
                    reason = exc.strerror or type(exc).__name__
                    raise error(
                        f"cannot write {what} {name}: cannot make it 0600 ({reason})",
                        "choose a file of your own",
                    ) from None
            if not append:
                os.ftruncate(fd, 0)
            if sys.platform != "win32":  # O_NONBLOCK is POSIX only
                os.set_blocking(fd, True)
        elif not (allow_device and stat.S_ISCHR(now.st_mode)):
            raise error(
                f"{what} {name} is {_kind(now.st_mode)}, not a regular file", "choose a file"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_user_file(
    path: str | os.PathLike[str], data: bytes, *, what: str, error: ErrorFactory = BadInputError
) -> None:
    """Write ``data`` to the user-named file ``path`` (0600; checked as in ``open_output_file``)."""
    fd = open_output_file(path, what=what, error=error, append=False)
    try:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise error(f"cannot write {what} {path}: {reason}", "free some space") from None
            view = view[n:]
    finally:
        os.close(fd)
