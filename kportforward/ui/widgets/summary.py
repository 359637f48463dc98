"""The header: kube contexts and their reachability, the counts line, the latest notice."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.markup import escape
from textual.widgets import Static

from kportforward.core.models import ClusterStatus, ForwardStatus
from kportforward.ui.presenters import cluster_in_use, cluster_text, contexts_of, counts_parts

TONE_VARIABLES = {
    "good": "$success",
    "bad": "$error",
    "busy": "$accent",
    "warn": "$warning",
    "idle": "$text-muted",
}
"""Tone -> the theme variable it is drawn in, so every theme colours states its own way."""


def tone_markup(text: str, tone: str) -> str:
    """``text`` escaped and wrapped in the theme colour of ``tone``."""
    return f"[{TONE_VARIABLES[tone]}]{escape(text)}[/]"


class SummaryBar(Vertical):
    """Three lines at the top of the table screen."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: dict[str, str] = {}
        self._lines: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        """The clusters line, the counts line and the notice line."""
        yield Static(id="clusters")
        yield Static(id="counts")
        yield Static(id="notice")

    def show_clusters(
        self, clusters: Iterable[ClusterStatus], statuses: Iterable[ForwardStatus]
    ) -> None:
        """Each kube context and its reachability; the configured contexts until a probe answers."""
        parts = []
        statuses = list(statuses)
        for cluster in clusters:
            text, tone = cluster_text(cluster, cluster_in_use(cluster, statuses))
            parts.append(tone_markup(text, tone))
        if not parts:
            contexts = contexts_of(statuses)
            label = ", ".join(contexts) if contexts else "none yet"
            parts.append(f"[$text-muted]context: {escape(label)}[/]")
        self._set("#clusters", "[b]kportforward[/b]   " + "   ".join(parts))

    def show_statuses(self, statuses: Iterable[ForwardStatus]) -> None:
        """Recompute the counts line from every status, each state in its own colour."""
        statuses = list(statuses)
        counted = counts_parts(statuses)
        room = (self.size.width or self.app.size.width) - 2
        # Narrow: the least severe states lose their word first, keeping glyph and number (the
        # colours and the help's legend name them); the worst keep theirs as long as they fit.
        for keep in range(len(counted), 0, -1):
            short = counted[:keep] + [(" ".join(t.split()[:2]), tone) for t, tone in counted[keep:]]
            if len("  ".join(text for text, _ in short)) <= room:
                break
        counted = short
        parts = [tone_markup(text, tone) for text, tone in counted]
        plain = "  ".join(text for text, _ in counted)
        namespaces = sorted({s.spec.namespace or "(default)" for s in statuses})
        if namespaces:
            more = f" +{len(namespaces) - 4}" if namespaces[4:] else ""
            extra = f"namespaces: {', '.join(namespaces[:4])}{more}"
            # Only when it fits beside the counts: the counts must never wrap for it.
            if len(plain) + 4 + len(extra) <= room:
                parts.append(f"  [$text-muted]{escape(extra)}[/]")
        self._set("#counts", "  ".join(parts))

    def show_notice(self, when: str, message: str, level: str = "information") -> None:
        """The latest notice (config reloaded, port moved, a reload error)."""
        tone = {"error": "bad", "warning": "warn"}.get(level, "busy")
        text = f"[$text-muted]{escape(when)}[/]  " + tone_markup(" ".join(message.split()), tone)
        self._set("#notice", text)

    def _set(self, selector: str, markup: str) -> None:
        # A layout pass re-renders the whole screen; only pay for one when a line's wrapped
        # height changes, otherwise repaint the line in place.
        if self._shown.get(selector) == markup:
            return
        self._shown[selector] = markup
        widget = self.query_one(selector, Static)
        width = max(1, widget.size.width or self.app.size.width - 2)
        lines = max(1, -(-Content.from_markup(markup).cell_length // width))
        widget.update(markup, layout=lines != self._lines.get(selector))
        self._lines[selector] = lines
