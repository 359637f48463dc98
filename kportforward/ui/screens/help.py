"""The help screen: every key, and what the marks in the table mean."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from kportforward.ui.presenters import GLYPHS, KEYS, LEGEND, TONES
from kportforward.ui.widgets.summary import tone_markup


def help_text() -> str:
    """The keys, the state glyphs and the legend, as Content markup."""
    width = max(len(k.keys) for k in KEYS)
    lines = ["[b]Keys[/b]"]
    lines += [f"  [b]{escape(k.keys.ljust(width))}[/b]  {escape(k.what)}" for k in KEYS]
    states = [
        tone_markup(f"{glyph} {state.value}", TONES[state]) for state, glyph in GLYPHS.items()
    ]
    lines += ["", "[b]States[/b]", "  " + "  ".join(states[:5]), "  " + "  ".join(states[5:])]
    lines += [
        "",
        *(escape(part) for part in LEGEND),
        "[$text-muted]Esc, q or ? closes this help.[/]",
    ]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """A modal listing every key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close help"),
    ]

    def compose(self) -> ComposeResult:
        """One panel of text."""
        with VerticalScroll(id="help-panel"):
            yield Static(help_text(), id="help-text")
        yield Footer()  # its own keys, not the table's ("q Quit" would be wrong here)
