"""The table screen: header, filter box, the forwards table (or the empty state), footer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from kportforward.core.models import ClusterStatus, ForwardStatus
from kportforward.ui.keys import ADD_KEY, FORWARD_KEYS
from kportforward.ui.presenters import EXAMPLE_ENTRY, selection_line
from kportforward.ui.widgets.forward_table import ForwardTable
from kportforward.ui.widgets.summary import SummaryBar, tone_markup


def empty_state_text(config_path: str) -> str:
    """What the dashboard says when no forward is configured (Content markup)."""
    return (
        "[b]No forwards configured.[/b]\n\n"
        f"Add one to [b]{escape(config_path)}[/b], for example:\n\n"
        f"[$accent]{escape(EXAMPLE_ENTRY)}[/]\n\n"
        "and save: the file is watched, so the forwards appear here by themselves.\n"
        "Or press [b]a[/b] to pick services of a namespace and append them.\n"
        "Try [b]kportforward demo[/b] to see the dashboard on a simulated cluster."
    )


class MainScreen(Screen[None]):
    """The dashboard's home: every forward, sortable and filterable."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("n", "sort('name')", "Sort name", show=False),
        Binding("s", "sort('status')", "Sort status", show=False),
        Binding("t", "sort('type')", "Sort type", show=False),
        Binding("p", "sort('port')", "Sort port", show=False),
        Binding("u", "sort('uptime')", "Sort uptime", show=False),
        Binding("r", "reverse", "Reverse", show=False),
        *FORWARD_KEYS,
        ADD_KEY,
    ]

    def __init__(self, clock: Callable[[], float], config_path: str, empty: bool) -> None:
        super().__init__()
        self._clock = clock
        self.table = ForwardTable(clock, id="forwards")
        self._config_path = config_path
        self._empty = empty

    class Mounted(Message):
        """The main screen is on; the app may show the snapshot and start the supervisor."""

    class DetailsWanted(Message):
        """The user chose a row (Enter): open its details."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def compose(self) -> ComposeResult:
        """Header, filter box, table or empty state, footer."""
        yield SummaryBar(id="summary")
        yield Input(placeholder="filter: name, namespace, type, state or group", id="filter")
        yield self.table
        yield Static(id="selection")
        yield Static(empty_state_text(self._config_path), id="empty")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Show the snapshot, focus the table, start the supervisor once this frame is drawn."""
        self.set_empty(self._empty)
        self.table.focus()
        self.post_message(self.Mounted())

    def set_empty(self, empty: bool) -> None:
        """Switch between the table and the empty state (after a reload, for instance)."""
        self._empty = empty
        self.query_one("#empty").display = empty
        self.table.display = not empty
        self.query_one("#selection").display = not empty

    # --- data --------------------------------------------------------------------------------

    def show_all(
        self, statuses: Iterable[ForwardStatus], clusters: Iterable[ClusterStatus]
    ) -> None:
        """Replace every row and the header."""
        statuses = list(statuses)
        self.table.set_statuses(statuses)
        self.set_empty(not statuses)
        summary = self.query_one(SummaryBar)
        summary.show_statuses(statuses)
        summary.show_clusters(clusters, statuses)
        self.show_selection()

    def apply(
        self,
        changed: Mapping[str, ForwardStatus],
        every: Iterable[ForwardStatus],
        clusters: Iterable[ClusterStatus],
    ) -> None:
        """Apply a batch of changed statuses; ``every`` is the full set for the counts line."""
        self.table.update_statuses(changed)
        if self.table.cursor_name in changed:
            self.show_selection()
        every = list(every)
        summary = self.query_one(SummaryBar)
        summary.show_statuses(every)
        summary.show_clusters(clusters, every)

    # --- actions -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        """Show the filter box and type into it."""
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        """Clear and hide the filter, back to the table."""
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.table.set_filter("")
        self.table.focus()

    def action_sort(self, key: str) -> None:
        """Sort by name, status, type, port or uptime."""
        self.table.sort_by(key)

    def action_reverse(self) -> None:
        """Reverse the sort order."""
        self.table.toggle_reverse()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        # Keep the filter, hand the keys back to the table; Esc from the table clears it.
        if not event.value:
            event.input.display = False
        self.table.focus()

    def show_selection(self) -> None:
        """The status strip: the selected forward's state and whole reason, on one line, so a
        narrow terminal still shows why a row failed."""
        name = self.table.cursor_name
        status = self.table.status_of(name) if name else None
        strip = self.query_one("#selection", Static)
        if status is None:
            strip.update("")
            return
        head, tone, rest = selection_line(status, self._clock())
        strip.update(f"[b]{escape(status.name)}[/b] {tone_markup(head, tone)}  {escape(rest)}")

    @on(ForwardTable.Highlighted)
    def _highlighted(self, event: ForwardTable.Highlighted) -> None:
        self.show_selection()

    @on(ForwardTable.Selected)
    def _selected(self, event: ForwardTable.Selected) -> None:
        self.post_message(self.DetailsWanted(event.name))

    def on_key(self, event: events.Key) -> None:
        """Esc inside the filter box clears it (the Input would otherwise keep the key)."""
        if event.key == "escape" and self.focused is self.query_one("#filter"):
            event.stop()
            self.action_clear_filter()
