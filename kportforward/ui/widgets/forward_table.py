"""The forwards table: one row per forward, updated in place by name.

A line-API widget rather than a DataTable: an update stores the new immutable status under its name
and repaints only the visible lines, so 500 forwards changing several times a second cost a dict
assignment each plus one re-sort per batch. The cursor is held by forward name, so it stays on its
forward through updates, filters and re-sorts; updates never move the scroll position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from kportforward.core.models import ForwardStatus
from kportforward.ui.presenters import (
    SORT_KEYS,
    RowCells,
    local_text,
    matches,
    row_cells,
    sort_statuses,
)
from kportforward.ui.widgets.columns import TRAFFIC_WIDTH, Column, fit, layout

log = logging.getLogger(__name__)


class ForwardTable(ScrollView, can_focus=True):
    """A scrollable, sortable, filterable table of ForwardStatus rows keyed by forward name."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "select", "Details"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "forward-table--header",
        "forward-table--cursor",
        "forward-table--good",
        "forward-table--warn",
        "forward-table--bad",
        "forward-table--busy",
        "forward-table--idle",
        "forward-table--mark",
        "forward-table--dim",
    }

    class Selected(Message):
        """Enter (or a click on the selected row) on a forward."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class Highlighted(Message):
        """The cursor moved to another forward (or its row changed): the status strip follows."""

        def __init__(self, name: str | None) -> None:
            super().__init__()
            self.name = name

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._clock = clock
        self._statuses: dict[str, ForwardStatus] = {}
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, tuple[ForwardStatus, int, RowCells]] = {}
        self._tick = 0
        self._measured: dict[str, int] = {}
        self.sort_key = "name"
        self.directions: dict[str, bool] = dict.fromkeys(SORT_KEYS, False)
        """Each sort key's own direction (True: descending), kept when another key is chosen."""
        self.filter_text = ""
        self._cursor_name: str | None = None
        self._cursor_row = 0
        self._palette: tuple[dict[str, Style], dict[str, Style], Style] | None = None
        self._widths_cache: (
            tuple[tuple[object, ...], tuple[tuple[Column, ...], tuple[int, ...]]] | None
        ) = None
        self._width = 0
        self._strips: dict[str, tuple[ForwardStatus, tuple[object, ...], Strip]] = {}

    # --- data in ---------------------------------------------------------------------------

    def set_statuses(self, statuses: Iterable[ForwardStatus]) -> None:
        """Replace every row (forwards not in ``statuses`` disappear)."""
        self._statuses = {s.name: s for s in statuses}
        self._cells.clear()
        self._strips.clear()
        self._measure(self._statuses.values(), reset=True)
        self._reorder()

    def update_statuses(self, changed: Mapping[str, ForwardStatus]) -> None:
        """Apply a batch of new statuses (one per forward); rows change in place."""
        if not changed:
            return
        old = self._statuses
        new_names = False
        resized = []
        for name, status in changed.items():
            before = old.get(name)
            if before is None:
                new_names = True
            if (
                before is None
                or before.spec is not status.spec
                or before.local_port != status.local_port
            ):
                resized.append(status)  # only a new spec or port can change a column's width
        old.update(changed)
        self._measure(resized, reset=False)
        if new_names or self.filter_text or self.sort_key != "name":
            self._reorder()
        else:
            self.refresh()

    def remove_forwards(self, names: Iterable[str]) -> None:
        """Drop the rows of forwards that no longer exist."""
        for name in names:
            self._statuses.pop(name, None)
            self._cells.pop(name, None)
            self._strips.pop(name, None)
        self._measure(self._statuses.values(), reset=True)
        self._reorder()

    def refresh_time(self) -> None:
        """Recompute time-based cells (uptime, countdowns) when their text can have changed.

        They show whole seconds, so the table repaints once a second for them, whatever the
        refresh rate; an idle dashboard costs one frame a second.
        """
        second = int(self._clock())
        if second != self._tick:
            self._tick = second
            self.refresh()
            self.post_message(self.Highlighted(self._cursor_name))  # the strip's uptime too

    # --- sorting, filtering, cursor ---------------------------------------------------------

    @property
    def reverse(self) -> bool:
        """True when the current sort is descending."""
        return self.directions[self.sort_key]

    def sort_by(self, key: str) -> None:
        """Sort by one of ``SORT_KEYS`` in that key's own direction; the cursor stays on its
        forward, scrolled into view."""
        if key not in SORT_KEYS:
            raise ValueError(f"unknown sort key {key!r}")
        self.sort_key = key
        self._reorder(follow_cursor=True)

    def toggle_reverse(self) -> None:
        """Reverse the current sort key's direction (the other keys keep theirs)."""
        self.directions[self.sort_key] = not self.directions[self.sort_key]
        self._reorder(follow_cursor=True)

    def set_filter(self, text: str) -> None:
        """Show only forwards matching ``text`` (name, namespace, type, state, group)."""
        self.filter_text = text
        self._reorder(follow_cursor=True)

    @property
    def cursor_name(self) -> str | None:
        """The name of the forward under the cursor, if any row is shown."""
        return self._cursor_name

    @property
    def cursor_row(self) -> int:
        """The cursor's row index among the shown rows."""
        return self._cursor_row

    @property
    def visible_names(self) -> tuple[str, ...]:
        """The names of the shown rows, in display order."""
        return tuple(self._order)

    def status_of(self, name: str) -> ForwardStatus | None:
        """The newest status the table holds for ``name``."""
        return self._statuses.get(name)

    def move_cursor_to(self, name: str) -> None:
        """Put the cursor on ``name`` if it is shown."""
        if name in self._index:
            self._set_cursor(self._index[name])

    # --- internals --------------------------------------------------------------------------

    def _measure(self, statuses: Iterable[ForwardStatus], *, reset: bool) -> None:
        m = {} if reset else dict(self._measured)
        for s in statuses:
            spec = s.spec
            for field, width in (
                ("name", len(s.name) + (2 if spec.exposed else 0)),
                ("local", len(local_text(s))),
                ("namespace", len(spec.namespace or "")),
                ("group", len(spec.group or "")),
                ("traffic", TRAFFIC_WIDTH if s.traffic is not None else 0),
            ):
                if width > m.get(field, 0):
                    m[field] = width
        self._measured = m

    def _reorder(self, *, follow_cursor: bool = False) -> None:
        shown = list(self._statuses.values())
        if self.filter_text.strip():
            shown = [s for s in shown if matches(s, self.filter_text)]
        self._order = [s.name for s in sort_statuses(shown, self.sort_key, self.reverse)]
        self._index = {name: i for i, name in enumerate(self._order)}
        if self._cursor_name in self._index:
            self._cursor_row = self._index[self._cursor_name]
        else:
            self._cursor_row = min(self._cursor_row, max(0, len(self._order) - 1))
            self._cursor_name = self._order[self._cursor_row] if self._order else None
        height = len(self._order) + 1
        if self.virtual_size.height != height:
            self.virtual_size = Size(self.virtual_size.width, height)
        if follow_cursor:
            self._scroll_to_cursor()
        self.post_message(self.Highlighted(self._cursor_name))
        self.refresh()

    def _set_cursor(self, row: int) -> None:
        if not self._order:
            return
        row = max(0, min(row, len(self._order) - 1))
        self._cursor_row = row
        self._cursor_name = self._order[row]
        self._scroll_to_cursor()
        self.post_message(self.Highlighted(self._cursor_name))
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        body = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if self._cursor_row < top:
            self.scroll_to(y=self._cursor_row, animate=False, immediate=True)
        elif self._cursor_row >= top + body:
            self.scroll_to(y=self._cursor_row - body + 1, animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        """Keep the virtual width equal to the widget: the reason column absorbs the rest."""
        # A compositor lookup, so once per resize; the CSS keeps the scrollbar gutter stable.
        self._width = self.scrollable_content_region.width
        self.virtual_size = Size(self._width, len(self._order) + 1)

    def action_cursor_up(self) -> None:
        """Move the cursor up one row."""
        self._set_cursor(self._cursor_row - 1)

    def action_cursor_down(self) -> None:
        """Move the cursor down one row."""
        self._set_cursor(self._cursor_row + 1)

    def action_page_up(self) -> None:
        """Move the cursor up a page."""
        self._set_cursor(self._cursor_row - max(1, self.size.height - 2))

    def action_page_down(self) -> None:
        """Move the cursor down a page."""
        self._set_cursor(self._cursor_row + max(1, self.size.height - 2))

    def action_first(self) -> None:
        """Move the cursor to the first row."""
        self._set_cursor(0)

    def action_last(self) -> None:
        """Move the cursor to the last row."""
        self._set_cursor(len(self._order) - 1)

    def action_select(self) -> None:
        """Ask for the details of the forward under the cursor."""
        if self._cursor_name is not None:
            self.post_message(self.Selected(self._cursor_name))

    def on_click(self, event: events.Click) -> None:
        """A click selects a row; a click on the selected row opens it."""
        if event.y < 1:
            return
        row = int(self.scroll_y) + event.y - 1
        if row >= len(self._order):
            return
        if row == self._cursor_row:
            self.action_select()
        else:
            self._set_cursor(row)

    # --- rendering --------------------------------------------------------------------------

    def _layout(self, total: int) -> tuple[tuple[Column, ...], tuple[int, ...]]:
        key = (total, tuple(sorted(self._measured.items())))
        if self._widths_cache is not None and self._widths_cache[0] == key:
            return self._widths_cache[1]
        shown = layout(total, self._measured)
        self._widths_cache = (key, shown)
        return shown

    @property
    def shown_columns(self) -> tuple[str, ...]:
        """The titles of the columns the current width shows."""
        return tuple(c.title for c in self._layout(self._width)[0])

    def _row_cells(self, name: str, status: ForwardStatus) -> RowCells:
        cached = self._cells.get(name)
        if cached is not None and cached[0] is status and cached[1] == self._tick:
            return cached[2]
        cells = row_cells(status, self._clock())
        self._cells[name] = (status, self._tick, cells)
        return cells

    def _style(self, *names: str) -> Style:
        return self.get_component_rich_style(*names, partial=True)

    def notify_style_update(self) -> None:
        """The CSS (theme, focus) changed: rebuild the cached styles and lines."""
        super().notify_style_update()
        self._palette = None
        self._strips.clear()

    def _get_palette(self) -> tuple[dict[str, Style], dict[str, Style], Style]:
        # Widget.rich_style and style additions cost more than the rest of a line: once per CSS.
        if self._palette is None:
            base = self.rich_style

            def roles(line: Style) -> dict[str, Style]:
                out = {"plain": line}
                for role in ("good", "warn", "bad", "busy", "idle", "mark", "dim"):
                    out[role] = line + self._style(f"forward-table--{role}")
                return out

            cursor = base + self._style("forward-table--cursor")
            header = base + self._style("forward-table--header")
            # On the cursor's background the state colours lose their contrast (red on blue):
            # the selected row keeps the cursor's colours, and bold where a state needs a person.
            bold = cursor + Style(bold=True)
            on_cursor = dict.fromkeys(("plain", "good", "busy", "idle", "dim"), cursor)
            on_cursor.update(warn=bold, bad=bold, mark=bold)
            self._palette = (roles(base), on_cursor, header)
        return self._palette

    def render_line(self, y: int) -> Strip:
        """One line of the table: the header at y=0, then the rows from the scroll offset."""
        try:
            return self._render_line(y)
        except Exception as exc:  # a row that cannot be drawn must not take the dashboard down
            log.exception("cannot draw table line %d", y)
            return Strip([Segment(f" (cannot draw this row: {exc})")]).adjust_cell_length(
                self._width
            )

    def _render_line(self, y: int) -> Strip:
        width = self._width
        plain, cursor, header = self._get_palette()
        columns, widths = self._layout(width)
        if y == 0:
            return self._header(columns, widths, header, width)
        row = int(self.scroll_y) + y - 1
        if row >= len(self._order):
            return Strip.blank(width, plain["plain"])
        name = self._order[row]
        status = self._statuses[name]
        on_cursor = row == self._cursor_row
        key = (self._tick, on_cursor, width, widths)
        cached = self._strips.get(name)
        if cached is not None and cached[0] is status and cached[1] == key:
            return cached[2]
        palette = cursor if on_cursor else plain
        strip = self._row_strip(self._row_cells(name, status), palette, columns, widths, width)
        self._strips[name] = (status, key, strip)
        return strip

    def _row_strip(
        self,
        cells: RowCells,
        palette: dict[str, Style],
        columns: tuple[Column, ...],
        widths: tuple[int, ...],
        width: int,
    ) -> Strip:
        line = palette["plain"]
        styles = {
            "name": palette["mark"] if cells.exposed else line,
            "status": palette[cells.tone],
            "local": palette["mark"] if cells.port_moved else line,
            # Only a reason that needs a person is coloured; the others stay quiet.
            "reason": palette[cells.tone] if cells.tone in ("warn", "bad") else palette["dim"],
            "namespace": palette["dim"],
            "group": palette["dim"],
        }
        # Neighbouring cells in the same style become one segment: fewer segments to crop.
        segments: list[Segment] = []
        text, style = " ", line
        for col, w in zip(columns, widths, strict=True):
            cell_style = styles.get(col.field, line)
            cell = fit(getattr(cells, col.field), w, col.right)
            if cell_style is style:
                text += cell + " "
            else:
                segments.append(Segment(text, style))
                text, style = cell, cell_style
                if style is line:
                    text += " "
                else:
                    segments.append(Segment(text, style))
                    text, style = " ", line
        segments.append(Segment(text, style))
        if sum(widths) + len(widths) + 1 == width:  # the cells fill the line exactly
            return Strip(segments, width)
        return Strip(segments).adjust_cell_length(width, line)

    def _header(
        self, columns: tuple[Column, ...], widths: tuple[int, ...], style: Style, width: int
    ) -> Strip:
        # ▲ ascending (smallest first), ▼ descending: the arrow says what the rows do.
        arrow = " ▼" if self.reverse else " ▲"
        text = " " + "".join(
            fit(col.title + (arrow if col.sort_key == self.sort_key else ""), w, col.right) + " "
            for col, w in zip(columns, widths, strict=True)
        )
        return Strip([Segment(text, style)]).adjust_cell_length(width, style)
