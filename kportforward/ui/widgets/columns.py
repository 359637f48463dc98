"""The table's columns and how a cell is fitted to its width (no Textual here)."""

from __future__ import annotations

from typing import NamedTuple

from rich.cells import set_cell_size


class Column(NamedTuple):
    """A table column: its title, the RowCells field it shows, its width (0: flexible)."""

    title: str
    field: str
    width: int
    sort_key: str | None


COLUMNS: tuple[Column, ...] = (
    Column("NAME", "name", 0, "name"),
    Column("STATUS", "status", 16, "status"),
    Column("URL", "url", 0, None),
    Column("TYPE", "type", 5, "type"),
    Column("PORT", "port", 6, "port"),
    Column("UPTIME", "uptime", 7, "uptime"),
    Column("RESTARTS", "restarts", 8, None),
    Column("REASON", "reason", 0, None),
)
NAME_MAX = 28
URL_MAX = 30


def fit(text: str, width: int) -> str:
    """``text`` padded or cut (with an ellipsis) to exactly ``width`` cells."""
    if width <= 0:
        return ""
    if text.isascii():  # the common case, and one cell per character
        return text[: width - 1] + "…" if len(text) > width else text.ljust(width)
    if len(text) > width:
        return set_cell_size(text[: width - 1] + "…", width)
    return set_cell_size(text, width)
