"""Open a URL in the browser and copy text to the clipboard with the platform's own tools.

``open_url(url)`` and ``copy_text(text)`` return an :class:`ActionResult` — ``ok`` and one human
line (``opened with xdg-open``, ``no display: cannot open a browser from this terminal`` …) — and
never raise. Both block for up to a few seconds (a clipboard tool, a browser launch): call them from
a worker thread, never from the event loop.

Tools: macOS ``open``/``pbcopy``; Windows ``rundll32 url.dll,FileProtocolHandler``/``clip.exe``;
Linux ``xdg-open`` (``gio open``) and ``wl-copy`` (Wayland) or ``xclip``/``xsel`` (X11). Argv
lists only, never a shell.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from kportforward.platform.base import ActionResult, Env, Platform

Runner = Callable[..., Any]
"""``subprocess.Popen``-shaped; tests pass a recorder."""

TIMEOUT = 5.0


def _platform(platform: Platform | None) -> Platform:
    if platform is not None:
        return platform
    from kportforward.platform import current

    return current()


def _first_available(
    candidates: list[list[str]], env: Env, which: Callable[[str, str | None], str | None]
) -> list[str] | None:
    """The first candidate whose tool exists, with the tool's full path in ``argv[0]``."""
    for argv in candidates:
        found = which(argv[0], env.get("PATH"))
        if found:
            return [found, *argv[1:]]
    return None


def _default_which(name: str, path: str | None) -> str | None:
    return shutil.which(name, path=path)


def _no_display(platform: Platform, env: Env) -> bool:
    # Without X11/Wayland, Linux's openers fall back to console browsers (lynx, w3m) that would
    # take over the dashboard's own terminal.
    return platform.name == "linux" and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def open_url(
    url: str,
    *,
    platform: Platform | None = None,
    env: Env | None = None,
    which: Callable[[str, str | None], str | None] = _default_which,
    run: Runner = subprocess.Popen,
) -> ActionResult:
    """Open an http(s) ``url`` in the default browser; the result says how, or why not."""
    p = _platform(platform)
    env = os.environ if env is None else env
    target = url if "://" in url else f"http://{url}"
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        return ActionResult(False, f"not opening {url!r}: only http and https URLs")
    if _no_display(p, env):
        return ActionResult(False, "no display: cannot open a browser from this terminal")
    argv = _first_available(p.open_url_commands(target), env, which)
    if argv is None:
        return ActionResult(False, p.missing_tool_hint("open"))
    return _run(p, argv, None, run, f"opened {target} with {os.path.basename(argv[0])}")


def copy_text(
    text: str,
    *,
    platform: Platform | None = None,
    env: Env | None = None,
    which: Callable[[str, str | None], str | None] = _default_which,
    run: Runner = subprocess.Popen,
) -> ActionResult:
    """Copy ``text`` to the system clipboard; the result says with what, or why not."""
    p = _platform(platform)
    env = os.environ if env is None else env
    if p.name == "linux" and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return ActionResult(False, "no display: no system clipboard to copy to")
    argv = _first_available(p.copy_commands(env), env, which)
    if argv is None:
        return ActionResult(False, p.missing_tool_hint("copy"))
    return _run(p, argv, p.copy_input(text), run, f"copied with {os.path.basename(argv[0])}")


def _run(
    platform: Platform, argv: list[str], stdin: bytes | None, run: Runner, done: str
) -> ActionResult:
    name = os.path.basename(argv[0])
    # stderr to a file, not a pipe: xclip/xsel fork a child that serves the selection and would
    # hold a pipe open; we wait for the tool's own exit, not for EOF.
    with tempfile.TemporaryFile() as err:
        try:
            proc = run(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                **platform.group_kwargs(),
            )
        except OSError as exc:
            return ActionResult(False, f"{name} failed: {exc.strerror or exc}", tuple(argv))
        try:
            if stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(stdin)
                proc.stdin.close()
            code = proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            # Some openers wait for the browser they started: it runs, which is what we want,
            # so it is left running (in its own session, so our Ctrl-C does not reach it).
            return ActionResult(True, f"{done} (still running after {TIMEOUT:g} s)", tuple(argv))
        if code != 0:
            err.seek(0)
            lines = err.read().decode("utf-8", "replace").strip().splitlines()
            why = lines[-1][:200] if lines else f"exit code {code}"
            return ActionResult(False, f"{name} failed: {why}", tuple(argv))
    return ActionResult(True, done, tuple(argv))
