"""Where the user's config file is, including the Go kportforward's location as a fallback.

``$KPORTFORWARD_CONFIG`` names the file outright. Otherwise ours is
``$XDG_CONFIG_HOME/kportforward/config.yaml`` (an absolute XDG_CONFIG_HOME only, as the XDG spec
says), else ``~/.config/kportforward/config.yaml``; ``%APPDATA%\\kportforward\\config.yaml`` on
Windows. The Go tool always reads ``~/.config/kportforward/config.yaml``: when XDG_CONFIG_HOME
points elsewhere and our file does not exist but that one does, it is used (with a warning).
"""

from __future__ import annotations

import os
from typing import NamedTuple

from kportforward.core.models import ConfigWarning

ENV_VAR = "KPORTFORWARD_CONFIG"
WINDOWS = os.name == "nt"
REMOTE_CACHE_NAME = "remote-defaults-cache.yaml"


class UserPaths(NamedTuple):
    """The user file and how to treat it."""

    path: str | None
    """Our user file (None: no HOME, so no user file at all)."""
    required: bool
    """True when the user named it ($KPORTFORWARD_CONFIG): it must exist."""
    fallback: str | None = None
    """The Go tool's path, when it differs from ``path`` (read if ``path`` does not exist)."""


def user_paths(env: dict[str, str] | os._Environ[str]) -> UserPaths:
    """Resolve the user file from an environment mapping."""
    named = env.get(ENV_VAR)
    if named:
        return UserPaths(os.path.expanduser(named), True)
    if WINDOWS:
        base = env.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
        return UserPaths(os.path.join(base, "kportforward", "config.yaml"), False)
    home = os.path.expanduser("~")
    go_path = None if home == "~" else os.path.join(home, ".config", "kportforward", "config.yaml")
    xdg = env.get("XDG_CONFIG_HOME")
    # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        ours = os.path.join(xdg, "kportforward", "config.yaml")
        if go_path is not None and os.path.normpath(go_path) != os.path.normpath(ours):
            return UserPaths(ours, False, go_path)
        return UserPaths(ours, False)
    return UserPaths(go_path, False)


def config_dir(env: dict[str, str] | os._Environ[str]) -> str | None:
    """Our config directory (where the remote-defaults cache lives), or None without a HOME."""
    if WINDOWS:
        base = env.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
        return os.path.join(base, "kportforward")
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "kportforward")
    home = os.path.expanduser("~")
    return None if home == "~" else os.path.join(home, ".config", "kportforward")


def remote_cache_path(env: dict[str, str] | os._Environ[str]) -> str | None:
    """The Go tool's cache of the last good remote defaults (through XDG_CONFIG_HOME when set)."""
    base = config_dir(env)
    return None if base is None else os.path.join(base, REMOTE_CACHE_NAME)


def fallback_note(
    ours: str, go_path: str, *, ours_exists: bool, same: bool
) -> ConfigWarning | None:
    """The warning about the Go tool's file, or None when there is nothing to say."""
    if not ours_exists:
        return ConfigWarning(
            f"using {go_path} (where the Go kportforward reads its config) because {ours} "
            "does not exist; move it there to silence this"
        )
    if same:
        return None
    return ConfigWarning(
        f"{go_path} (the Go kportforward's config) differs from {ours}; using {ours}"
    )
