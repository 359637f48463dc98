"""A forward's details: spec, live figures, traffic and probe latency sparklines, history."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import tzinfo

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.markup import escape
from textual.widgets import Footer, Sparkline, Static

from kportforward.core.models import ForwardStatus
from kportforward.ui.presenters import detail_fields, history_rows, latency_scale, traffic_scale
from kportforward.ui.screens.forward import ForwardScreen
from kportforward.ui.widgets.summary import tone_markup


class DetailsScreen(ForwardScreen):
    """Everything known about one forward, refreshed at ``uiOptions.refreshRate``."""

    def __init__(
        self,
        forward_name: str,
        status_of: Callable[[str], ForwardStatus | None],
        clock: Callable[[], float],
        tz: tzinfo | None,
        refresh_rate: float,
        web_rows: Callable[[ForwardStatus], list[tuple[str, str]]] | None = None,
        traffic_of: Callable[[str], list[tuple[int, int]]] | None = None,
    ) -> None:
        super().__init__(forward_name, refresh_rate)
        self._status_of = status_of
        self._clock = clock
        self._tz = tz
        self._web_rows = web_rows
        self._traffic_of = traffic_of

    def compose(self) -> ComposeResult:
        """Title, fields, latency sparkline, history."""
        yield Static(id="details-title")
        with Horizontal(id="details-body"):
            with VerticalScroll(id="details-left"):
                yield Static(id="details-fields")
            with VerticalScroll(id="details-right"):
                yield Static(
                    "Traffic through the front door (bytes/s, last 60 s)",
                    classes="section",
                    id="traffic-title",
                )
                yield Static(id="traffic-scale")
                yield Sparkline([], id="traffic")
                yield Static("Probe latency through the tunnel (recent)", classes="section")
                yield Static("(no probes yet)", id="no-latency")
                yield Sparkline([], id="latency")
                yield Static("History (newest first)", classes="section")
                yield Static(id="details-history")
        yield Footer()

    NARROW = 110
    """Below this width the history goes under the fields instead of beside them."""

    def on_resize(self) -> None:
        """Side by side when there is room; stacked (one scroll) on a narrow terminal."""
        self.set_class(self.size.width < self.NARROW, "narrow")

    def redraw(self) -> None:
        """Re-read the forward's status from the supervisor and redraw."""
        status = self._status_of(self.forward_name)
        title = self.query_one("#details-title", Static)
        if status is None:
            title.update(f"[b]{escape(self.forward_name)}[/b]  (no longer configured)")
            return
        now = self._clock()
        web = self._web_rows(status) if self._web_rows is not None else []
        url = next((value for label, value in web if "://" in value), status.url)
        title.update(f"[b]{escape(status.name)}[/b]  {escape(url)}")
        fields = detail_fields(status, now, web, self._tz)
        width = max(len(label) for label, _ in fields)
        room = self.query_one("#details-fields").size.width or 60
        lines = [
            f"[$text-muted]{escape(label.ljust(width))}[/]  "
            + escape(hanging(value, room - width - 2, width + 2))
            for label, value in fields
        ]
        self.query_one("#details-fields", Static).update("\n".join(lines))
        self._show_traffic(status)
        latencies = [v * 1000 for v in status.probe_latencies]
        sparkline = self.query_one("#latency", Sparkline)
        sparkline.data = latencies
        sparkline.display = bool(latencies)
        self.query_one("#no-latency").display = True  # the scale line, or "(no probes yet)"
        self.query_one("#no-latency", Static).update(latency_scale(status.probe_latencies))
        rows = history_rows(status, self._tz, now)
        room = self.query_one("#details-history").size.width or 60
        lead = len(rows[0][0]) + 2 + 16 if rows else 0
        history = "\n".join(
            f"[$text-muted]{escape(when)}[/]  {tone_markup(state.ljust(15), tone)} "
            + escape(hanging(reason, room - lead, lead))
            for when, state, reason, tone in rows
        )
        self.query_one("#details-history", Static).update(history or "(no transitions yet)")

    def _show_traffic(self, status: ForwardStatus) -> None:
        """The bytes/s sparkline of the last minute, when the forward has a front door."""
        shown = status.traffic is not None and self._traffic_of is not None
        for widget in ("#traffic-title", "#traffic-scale", "#traffic"):
            self.query_one(widget).display = shown
        if not shown or self._traffic_of is None:
            return
        try:
            history = self._traffic_of(status.name)
        except KeyError:  # removed by a reload since the status was read
            history = []
        self.query_one("#traffic-scale", Static).update(traffic_scale(history))
        self.query_one("#traffic", Sparkline).data = [i + o for i, o in history] or [0]


def hanging(text: str, width: int, indent: int) -> str:
    """``text`` wrapped to ``width`` columns, continuation lines indented by ``indent``."""
    if width < 10 or len(text) <= width:
        return text
    return ("\n" + " " * indent).join(textwrap.wrap(text, width, break_on_hyphens=False))
