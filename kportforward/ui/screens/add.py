"""The ``a`` screen: list a namespace's services and their ports, pick some, append them.

Discovery goes through the API (``kube/discover.py``, given to the screen as a callable); the
entries are planned and appended by ``core/config_append.py``, which never rewrites a byte of the
file. The screen returns what it appended; the app then reloads the config the normal way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from kportforward.core.config_append import (
    Appended,
    NewForward,
    append_forwards,
    plan_forwards,
    taken_names_and_ports,
)
from kportforward.core.models import Config
from kportforward.kube.discover import Discovery


def added_comment(namespace: str, context: str, now: float) -> str:
    """The comment line above appended entries: when, from where, by what."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now))
    return f"Added by kportforward on {when} from namespace {namespace} (context {context})"


class AddScreen(Screen[Appended | None]):
    """Pick service ports of a namespace; ctrl+s appends them to ``path``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Back"),
        Binding("ctrl+s", "append", "Append to config", priority=True),
    ]

    def __init__(
        self,
        path: str,
        namespace: str | None,
        discover: Callable[[str | None], Awaitable[Discovery]],
        config: Callable[[], Config],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.path = path
        self._namespace = namespace
        self._discover = discover
        self._config = config
        self._clock = clock
        self.discovery: Discovery | None = None
        self.planned: list[NewForward] = []
        self._ports: list[tuple[str, int, str, str]] = []

    def compose(self) -> ComposeResult:
        """Title, namespace box, status line, the service ports, the preview of the block."""
        yield Static(
            f"[b]Add forwards[/b] to {escape(self.path)}",
            id="add-title",
        )
        with Horizontal(id="add-form"):
            yield Label("Namespace ")
            yield Input(
                self._namespace or "",
                placeholder="the context's namespace",
                id="add-namespace",
            )
        yield Static("", id="add-status")
        yield SelectionList[int](id="add-list")
        yield Static("", id="add-preview")
        yield Footer()

    def on_mount(self) -> None:
        """List the services of the starting namespace."""
        self.query_one("#add-list").focus()
        self.load(self._namespace)

    def load(self, namespace: str | None) -> None:
        """Ask the API for the services of ``namespace`` (in a worker)."""
        what = f"namespace {namespace}" if namespace else "the context's namespace"
        self.query_one("#add-status", Static).update(f"Reading the services of {what}…")
        self.query_one("#add-list", SelectionList).clear_options()
        self.run_worker(self._load(namespace), group="discover", exclusive=True)

    async def _load(self, namespace: str | None) -> None:
        try:
            found = await self._discover(namespace)
        except Exception as exc:  # a classified KubeApiError: one line with its hint
            self.query_one("#add-status", Static).update(f"[$error]{escape(str(exc))}[/]")
            return
        self.discovery = found
        box = self.query_one("#add-namespace", Input)
        if not box.value:
            box.value = found.namespace
        options: list[Selection[int]] = []
        self._ports.clear()
        existing = self._forwarded(found.namespace)
        for service in found.services:
            for port in service.ports:
                label = f"{service.name:<28} {port.port:>5}  {port.name:<10}"
                already = existing.get((service.name, port.port)) or existing.get(
                    (service.name, port.name)
                )
                if already:
                    label += f"  already forwarded as {already}"
                options.append(Selection(label, len(self._ports)))
                self._ports.append((service.name, port.port, port.name, port.app_protocol))
        listing = self.query_one("#add-list", SelectionList)
        listing.clear_options()
        listing.add_options(options)
        if options:
            listing.highlighted = 0  # space picks the first row at once
        status = (
            f"{len(options)} port{'s' if len(options) != 1 else ''} in "
            f"{len(found.services)} service{'s' if len(found.services) != 1 else ''} of "
            f"namespace [b]{escape(found.namespace)}[/b] (context {escape(found.context)}): "
            "space picks, ctrl+s appends"
        )
        if not options:
            status = f"No service with a TCP port in namespace [b]{escape(found.namespace)}[/b]"
        self.query_one("#add-status", Static).update(status)
        self._replan()

    def _forwarded(self, namespace: str) -> dict[tuple[str, int | str], str]:
        """(service, port) → the configured forward that already reaches it."""
        out: dict[tuple[str, int | str], str] = {}
        for spec in self._config().forwards:
            kind, _, name = spec.target.partition("/")
            if kind.lower() in ("service", "svc", "services") and spec.namespace in (
                namespace,
                None,
            ):
                out.setdefault((name, spec.target_port), spec.name)
        return out

    @on(Input.Submitted, "#add-namespace")
    def _namespace_chosen(self, event: Input.Submitted) -> None:
        self.load(event.value.strip() or None)
        self.query_one("#add-list").focus()

    @on(SelectionList.SelectedChanged, "#add-list")
    def _picked(self) -> None:
        self._replan()

    def _replan(self) -> None:
        listing = self.query_one("#add-list", SelectionList)
        picks = [self._ports[i] for i in sorted(listing.selected)]
        if self.discovery is None or not picks:
            self.planned = []
            self.query_one("#add-preview", Static).update("")
            return
        config = self._config()
        names = {s.name for s in config.forwards} | {p.name for p in config.rejected}
        ports = {s.local_port for s in config.forwards}
        try:
            with open(self.path, encoding="utf-8") as fh:
                file_names, file_ports = taken_names_and_ports(fh.read(), self.path)
        except OSError:
            file_names, file_ports = set(), set()
        self.planned = plan_forwards(
            picks, self.discovery.namespace, None, names | file_names, ports | file_ports
        )
        lines = [
            f"[b]{escape(f.name)}[/b]  {escape(f.target)}:{f.target_port} → "
            f"localhost:{f.local_port}  {f.type}  (namespace {escape(f.namespace)})"
            for f in self.planned
        ]
        self.query_one("#add-preview", Static).update(
            "ctrl+s appends (nothing already in the file changes):\n" + "\n".join(lines)
        )

    def action_cancel(self) -> None:
        """Back to the table, nothing written."""
        self.dismiss(None)

    async def action_append(self) -> None:
        """Append the picked forwards to the config file, then go back."""
        if not self.planned or self.discovery is None:
            self.notify("Pick a service port first (space)", severity="warning")
            return
        comment = added_comment(self.discovery.namespace, self.discovery.context, self._clock())
        try:
            result = await asyncio.to_thread(append_forwards, self.path, self.planned, comment)
        except Exception as exc:  # ConfigError: one line naming the file and what to do
            self.query_one("#add-status", Static).update(f"[$error]{escape(str(exc))}[/]")
            return
        self.dismiss(result)
