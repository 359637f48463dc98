"""Swagger UI's static files, from the ``swagger-ui-bundle`` package (the ``swaggerui`` extra).

The package ships the official ``swagger-ui-dist`` build as package data and exports its folder as
``swagger_ui_bundle.swagger_ui_path`` (the fork ``swagger-ui-bundle-v2``, which ships Swagger UI
5, installs the same module, so either works). Files are read once and kept in memory: the
bundle is ~1.5 MB and a browser asks for it once per page load.
"""

from __future__ import annotations

import functools
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = "pip install 'kportforward[swaggerui]'"
"""How to get the Swagger UI assets."""

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".map": "application/json",
}


@dataclass
class Assets:
    """The Swagger UI distribution folder: its version and its files by base name."""

    folder: Path
    version: tuple[int, ...]
    """e.g. (4, 15, 5); () when the folder name does not say."""
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def major(self) -> int:
        """The major version (0 when unknown)."""
        return self.version[0] if self.version else 0

    def read(self, name: str) -> tuple[bytes, str] | None:
        """(content, content type) of the file called ``name`` in the folder, or None.

        Only plain base names of regular files: no separators, no dot-files, so no request can
        reach outside the folder.
        """
        if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
            return None
        if name not in self._cache:
            path = self.folder / name
            if not path.is_file():
                return None
            self._cache[name] = path.read_bytes()
        ctype = _TYPES.get(Path(name).suffix) or (
            mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        return self._cache[name], ctype


@functools.cache
def find_assets() -> Assets | None:
    """The installed Swagger UI distribution, or None when the extra is not installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    folder = Path(str(swagger_ui_path))
    if not (folder / "swagger-ui-bundle.js").is_file():
        return None
    m = re.search(r"(\d+(?:\.\d+)*)$", folder.name)
    version = tuple(int(p) for p in m.group(1).split(".")) if m else ()
    return Assets(folder, version)
