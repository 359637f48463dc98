"""The table's columns, which of them fit a width, and how a cell is fitted (no Textual here).

Every column has a priority: at any width the name, the status and the reason (for a Running row:
its pod) stay; the others join in priority order while the reason keeps at least ``REASON_MIN``
cells. So 80 columns show what matters and 200 columns show everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from rich.cells import set_cell_size


class Column(NamedTuple):
    """A table column: its title, the RowCells field it shows, its width (0: measured), the sort
    key it answers to, and its priority (0: always shown; higher numbers are dropped first)."""

    title: str
    field: str
    width: int
    sort_key: str | None
    priority: int
    right: bool = False
    """Right-aligned (numbers)."""


COLUMNS: tuple[Column, ...] = (
    Column("NAME", "name", 0, "name", 0),
    Column("STATUS", "status", 14, "status", 0),
    Column("LOCAL", "local", 0, "port", 1),
    Column("UPTIME", "uptime", 7, "uptime", 3, right=True),
    Column("RESTARTS", "restarts", 8, None, 2, right=True),
    Column("TRAFFIC", "traffic", 0, None, 4, right=True),
    Column("TYPE", "type", 5, "type", 5),
    Column("NAMESPACE", "namespace", 0, None, 6),
    Column("GROUP", "group", 0, None, 7),
    Column("REASON / POD", "reason", 0, None, 0),
)
NAME_MAX = 28
LOCAL_MAX = 22
NAMESPACE_MAX = 18
GROUP_MAX = 14
TRAFFIC_WIDTH = 8
"""``999.9K/s``: reserved whenever a forward has a front door (no door anywhere: no column)."""
REASON_MIN = 18
MEASURED_MAX = {
    "name": NAME_MAX,
    "local": LOCAL_MAX,
    "namespace": NAMESPACE_MAX,
    "group": GROUP_MAX,
    "traffic": TRAFFIC_WIDTH,
}


def layout(total: int, measured: Mapping[str, int]) -> tuple[tuple[Column, ...], tuple[int, ...]]:
    """The columns shown in ``total`` cells and their widths (the reason takes the rest).

    ``measured`` holds the content width of the measured columns (name, local, namespace,
    group); a measured column whose content width is 0 (no forward has a group) is left out.
    """

    def want(col: Column) -> int:
        width = col.width or min(measured.get(col.field, 0), MEASURED_MAX.get(col.field, 20))
        return max(width, len(col.title) + (2 if col.sort_key else 0))

    chosen = {c.field for c in COLUMNS if c.priority == 0}
    used = sum(want(c) + 1 for c in COLUMNS if c.field in chosen and c.field != "reason") + 2
    for col in sorted((c for c in COLUMNS if c.priority), key=lambda c: c.priority):
        if not col.width and not measured.get(col.field):
            continue
        if total - used - (want(col) + 1) >= REASON_MIN:
            chosen.add(col.field)
            used += want(col) + 1
    shown = tuple(c for c in COLUMNS if c.field in chosen)
    widths = [want(c) for c in shown]
    rest = total - (sum(widths[:-1]) + len(shown) + 1)
    if rest < REASON_MIN and shown[0].field == "name":
        # Too narrow even for the essentials: the name gives way before the reason does.
        give = min(widths[0] - 8, REASON_MIN - rest) if widths[0] > 8 else 0
        widths[0] -= max(0, give)
        rest += max(0, give)
    widths[-1] = max(0, rest)
    return shown, tuple(widths)


def fit(text: str, width: int, right: bool = False) -> str:
    """``text`` padded or cut (with an ellipsis) to exactly ``width`` cells."""
    if width <= 0:
        return ""
    if text.isascii():  # the common case, and one cell per character
        if len(text) > width:
            return text[: width - 1] + "…"
        return text.rjust(width) if right else text.ljust(width)
    if len(text) > width:
        return set_cell_size(text[: width - 1] + "…", width)
    if right:
        return " " * (width - len(text)) + text if len(text) < width else text
    return set_cell_size(text, width)
