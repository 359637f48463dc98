"""A web/rest forward's HTTP request log: what its front door saw, newest at the bottom."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.markup import escape
from textual.widgets import DataTable, Footer, Static

from kportforward.core.models import ForwardStatus
from kportforward.ui.presenters import (
    REQUEST_COLUMNS,
    request_cells,
    requests_summary,
    requests_unavailable,
)
from kportforward.ui.screens.forward import ForwardScreen
from kportforward.ui.screens.log import new_lines

if TYPE_CHECKING:
    from kportforward.supervisor.httplog import HttpRequest


class RequestsScreen(ForwardScreen):
    """Method, path, status, duration and bytes of each request, following new ones."""

    def __init__(
        self,
        forward_name: str,
        status_of: Callable[[str], ForwardStatus | None],
        requests_of: Callable[[str], Sequence[HttpRequest]],
        clock: Callable[[], float],
        tz: tzinfo | None,
        refresh_rate: float,
    ) -> None:
        super().__init__(forward_name, refresh_rate)
        self._status_of = status_of
        self._requests_of = requests_of
        self._clock = clock
        self._tz = tz
        self._seen: tuple[HttpRequest, ...] = ()

    def compose(self) -> ComposeResult:
        """Title, a summary line, the table, footer."""
        yield Static(id="requests-title")
        yield Static(id="requests-summary")
        table: DataTable[str] = DataTable(id="requests", cursor_type="row", zebra_stripes=True)
        table.add_columns(*REQUEST_COLUMNS)
        yield table
        yield Footer()

    def redraw(self) -> None:
        """Append the requests finished since the last look."""
        status = self._status_of(self.forward_name)
        title = self.query_one("#requests-title", Static)
        summary = self.query_one("#requests-summary", Static)
        table = self.query_one("#requests", DataTable)
        if status is None:
            title.update(f"[b]{escape(self.forward_name)}[/b]  (no longer configured)")
            return
        title.update(f"[b]{escape(status.name)}[/b]  HTTP requests  {escape(status.url)}")
        why_not = requests_unavailable(status)
        table.display = why_not is None
        if why_not is not None:
            summary.update(escape(why_not))
            return
        try:
            requests = tuple(self._requests_of(self.forward_name))
        except KeyError:  # removed by a reload since the status was read
            requests = ()
        except Exception as exc:  # a view: a failure is shown, never raised
            summary.update(escape(f"Cannot read the request log: {exc}"))
            return
        text = requests_summary(requests)
        if not requests:
            text += f" — try: curl {status.url}"
        summary.update(escape(text) + "   [$text-muted](newest last; the last 500 kept)[/]")
        fresh, redraw = new_lines(self._seen, requests)
        self._seen = requests
        if not fresh and not redraw:
            return
        following = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        if redraw:
            table.clear()
        now = self._clock()
        overflow = table.row_count + len(fresh) - len(requests)
        for key in list(table.rows)[: max(0, overflow)]:  # the ring dropped its oldest
            table.remove_row(key)
        table.add_rows(request_cells(r, self._tz, now) for r in fresh)
        if following:
            table.move_cursor(row=table.row_count - 1)
