"""A forward's live kubectl log (stdout and stderr lines the supervisor kept)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from textual.app import ComposeResult
from textual.markup import escape
from textual.widgets import Footer, Log, Static

from kportforward.ui.screens.forward import ForwardScreen

T = TypeVar("T")


def new_lines(seen: tuple[T, ...], now: tuple[T, ...]) -> tuple[tuple[T, ...], bool]:
    """The lines of ``now`` not yet shown, and whether the log must be redrawn from scratch.

    The supervisor keeps a ring buffer, so ``now`` is ``seen`` minus some old lines plus new ones:
    find where the newest line shown sits in ``now`` and take what follows. (Any ring of
    comparable entries: the HTTP request log uses it too.)
    """
    if now[: len(seen)] == seen:
        return now[len(seen) :], False
    # The longest suffix of what was shown that starts what is there now.
    for k in range(min(len(seen), len(now)), 0, -1):
        if seen[-k:] == now[:k]:
            return now[k:], False
    return now, True


class LogScreen(ForwardScreen):
    """The kubectl output of one forward, following new lines at the refresh rate."""

    def __init__(
        self,
        forward_name: str,
        lines_of: Callable[[str], Iterable[str]],
        refresh_rate: float,
    ) -> None:
        super().__init__(forward_name, refresh_rate)
        self._lines_of = lines_of
        self._seen: tuple[str, ...] = ()
        self._placeholder = False

    def compose(self) -> ComposeResult:
        """Title, the log, footer."""
        yield Static(f"[b]{escape(self.forward_name)}[/b]  kubectl log", id="log-title")
        yield Log(id="log", highlight=False)
        yield Footer()

    def redraw(self) -> None:
        """Append the lines kubectl printed since the last look."""
        try:
            lines = tuple(self._lines_of(self.forward_name))
        except KeyError:
            lines = ("(this forward is no longer configured)",)
        except Exception as exc:  # the log is a view; a failure is shown, never raised
            lines = (f"(cannot read the log: {exc})",)
        fresh, redraw = new_lines(self._seen, lines)
        log = self.query_one("#log", Log)
        if redraw:
            log.clear()
        if fresh:
            log.write_lines(fresh)
        if not lines and not self._placeholder:
            self._placeholder = True
            log.write_line("(kubectl has printed nothing yet)")
        elif lines and self._placeholder:
            self._placeholder = False
            log.clear()
            log.write_lines(lines)
        self._seen = lines
