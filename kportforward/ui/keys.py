"""Key bindings for the screens that show a forward (the table, its details, its log).

They live on those screens, not on the App, so a screen where they mean nothing (the add screen,
the help, the gRPC screen) neither runs them nor lists them in its footer.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

FORWARD_KEYS: list[BindingType] = [
    Binding("R", "app.restart", "Restart"),
    Binding("space", "app.stop_start", "Stop/start"),
    Binding("l", "app.log", "Log", show=False),
    Binding("h", "app.http_log", "HTTP log", show=False),
    Binding("o", "app.open_url", "Open", show=False),
    Binding("c", "app.copy_url", "Copy", show=False),
    Binding("w", "app.web_ui", "Web UI", show=False),
    Binding("g", "app.group_stop_start", "Group", show=False),
]
"""Keys acting on the selected forward."""

ADD_KEY: BindingType = Binding("a", "app.add", "Add")
