"""The header: kube contexts and their reachability, the counts line, the latest notice."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import Static

from kportforward.core.models import ClusterStatus, ForwardStatus
from kportforward.ui.presenters import cluster_in_use, cluster_text, contexts_of, counts_line

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
        """Recompute the counts line from every status."""
        self._set("#counts", escape(counts_line(statuses)))

    def show_notice(self, when: str, message: str, level: str = "information") -> None:
        """The latest notice (config reloaded, port moved, a reload error)."""
        tone = {"error": "bad", "warning": "warn"}.get(level, "busy")
        text = f"[$text-muted]{escape(when)}[/]  " + tone_markup(" ".join(message.split()), tone)
        self._set("#notice", text)

    def _set(self, selector: str, markup: str) -> None:
        # Updating a Static costs a layout pass; most batches leave these lines unchanged.
        if self._shown.get(selector) != markup:
            self._shown[selector] = markup
            self.query_one(selector, Static).update(markup)
