"""The base of the screens that show one forward (details, kubectl log, HTTP requests)."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.screen import Screen

from kportforward.ui.keys import FORWARD_KEYS


class ForwardScreen(Screen[None]):
    """One forward's screen: Back, the keys that act on the forward (its ``forward_name`` is what
    they act on), and ``redraw`` at once and then at ``uiOptions.refreshRate``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        *FORWARD_KEYS,
    ]

    def __init__(self, forward_name: str, refresh_rate: float) -> None:
        super().__init__()
        self.forward_name = forward_name
        self._refresh_rate = refresh_rate

    def on_mount(self) -> None:
        """Show what is there, then follow."""
        self.redraw()
        self.set_interval(self._refresh_rate, self.redraw)

    def redraw(self) -> None:
        """Read the forward's figures again and show them (each screen its own)."""
        raise NotImplementedError
