"""The dashboard's ways out to the desktop: the clipboard and where screenshots go (no Textual).

OSC 52 (what Textual's ``copy_to_clipboard`` sends) reaches the clipboard only when the terminal
supports it and allows it (tmux and many terminals do not by default), and nothing tells the app
whether it worked. So ``c`` also hands the text to the platform's clipboard tool when one is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCREENSHOT_DIR_ENV = "KPORTFORWARD_SCREENSHOT_DIR"
CLIPBOARD_TIMEOUT = 2.0


def clipboard_command() -> list[str] | None:
    """The argv of the platform's clipboard tool reading stdin, or None when there is none."""
    if sys.platform == "darwin":
        candidates = [["pbcopy"]]
    elif sys.platform.startswith("win"):
        candidates = [["clip"]]
    else:
        candidates = []
        if os.environ.get("WAYLAND_DISPLAY"):
            candidates.append(["wl-copy"])
        if os.environ.get("DISPLAY"):
            candidates += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
        if "microsoft" in os.uname().release.lower():  # WSL: the Windows clipboard
            candidates.append(["clip.exe"])
    for argv in candidates:
        path = shutil.which(argv[0])
        if path:
            return [path, *argv[1:]]
    return None


def copy_with_tool(text: str) -> str | None:
    """Copy ``text`` with the platform's tool; its name on success, None when there is no tool
    or it failed (blocking for at most ``CLIPBOARD_TIMEOUT``: call it from a thread)."""
    argv = clipboard_command()
    if argv is None:
        return None
    try:
        subprocess.run(
            argv,
            input=text.encode(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=CLIPBOARD_TIMEOUT,
            check=True,
            start_new_session=True,  # xclip stays to serve the selection; not in our group
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return os.path.basename(argv[0])


def screenshot_dir() -> Path:
    """Where screenshots go: ``$KPORTFORWARD_SCREENSHOT_DIR``, else ~/Downloads or ~/Pictures
    when one exists, else the XDG state dir's ``kportforward/screenshots`` (created on save)."""
    named = os.environ.get(SCREENSHOT_DIR_ENV)
    if named:
        return Path(os.path.expanduser(named))
    home = Path.home()
    for sub in ("Downloads", "Pictures"):
        if (home / sub).is_dir():
            return home / sub
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else home / ".local" / "state"
    return base / "kportforward" / "screenshots"


def save_text(directory: Path, filename: str, text: str) -> Path:
    """Write ``text`` to ``directory/filename`` (the directory is created); OSError on failure."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(text, encoding="utf-8")
    return path
