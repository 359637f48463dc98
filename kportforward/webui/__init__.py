"""Swagger UI for REST forwards, served by kportforward itself (no Docker).

``SwaggerUI`` is one asyncio HTTP server on 127.0.0.1 (the first free port from 9100, like the Go
kportforward's containers) for every forward: ``await ui.start()``, then
``url = ui.publish(name, local_port, api_path, swagger_path)`` when a forward runs,
``ui.withdraw(name)`` when it is stopped or removed, ``await ui.close()`` at shutdown.
``WebUIs`` (webui/follow.py) wraps it and the grpcui supervisor behind one ``update(status)``.
Its static files come from the ``swaggerui`` extra; :func:`swagger_ui_available` tells whether it
is installed and :data:`INSTALL_HINT` how to install it.
"""

from __future__ import annotations

from kportforward.webui.assets import INSTALL_HINT, find_assets
from kportforward.webui.follow import WebUIs
from kportforward.webui.server import FIRST_PORT, Published, SwaggerUI, SwaggerUIError


def swagger_ui_available() -> bool:
    """Whether Swagger UI's files are installed (the ``swaggerui`` extra)."""
    return find_assets() is not None


__all__ = [
    "FIRST_PORT",
    "INSTALL_HINT",
    "Published",
    "SwaggerUI",
    "SwaggerUIError",
    "WebUIs",
    "swagger_ui_available",
]
