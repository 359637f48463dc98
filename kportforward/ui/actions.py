"""The dashboard's actions: on the selected forward, commands to the supervisor, the palette.

``DashboardActions`` is the App base class that holds the action methods (bound to keys in the app
and listed in the command palette); the helpers below it do the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from datetime import tzinfo
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen

from kportforward.core.models import ForwardStatus
from kportforward.core.states import ForwardState

if TYPE_CHECKING:
    from kportforward.supervisor.protocol import SupervisorProtocol
    from kportforward.ui.screens.main import MainScreen

VERB_WORDS = {"restart": "Restarting", "stop": "Stopping", "start_forward": "Starting"}


class DashboardActions(App[None]):
    """Actions on the selected forward (also in the command palette)."""

    supervisor: SupervisorProtocol
    statuses: dict[str, ForwardStatus]
    main_screen: MainScreen
    browser: Callable[[str], bool]
    config_path: str
    config_arg: str | None
    clock: Callable[[], float]
    tz: tzinfo | None
    refresh_rate: float

    def show_notice(
        self, text: str, level: str = "information", ts: float | None = None, toast: bool = True
    ) -> None:
        """Put a notice in the header (and a notification); the app implements it."""
        raise NotImplementedError

    def resync(self) -> None:
        """Take a full snapshot from the supervisor; the app implements it."""
        raise NotImplementedError

    def selected_name(self) -> str | None:
        """The forward the keys act on: the details/log screen's, else the table's cursor."""
        name = getattr(self.screen, "forward_name", None)
        return name if name is not None else self.main_screen.table.cursor_name

    def fresh_status(self, name: str) -> ForwardStatus | None:
        """The supervisor's current status of ``name``, including what changes without a
        transition (probe latencies, RSS/CPU, connections); the last event's status otherwise."""
        try:
            return self.supervisor.status(name)
        except KeyError:
            return None

    def _selected(self) -> ForwardStatus | None:
        name = self.selected_name()
        status = self.statuses.get(name) if name else None
        if status is None:
            self.notify("No forward selected", severity="warning")
        return status

    def action_details(self, name: str | None = None) -> None:
        """Open the details screen of ``name`` (default: the selected forward)."""
        name = name or self.selected_name()
        if name and name in self.statuses:
            from kportforward.ui.screens.details import DetailsScreen  # later: a faster first frame

            self.push_screen(
                DetailsScreen(name, self.fresh_status, self.clock, self.tz, self.refresh_rate)
            )

    def action_log(self) -> None:
        """Open the live kubectl log of the selected forward."""
        if (status := self._selected()) is not None:
            from kportforward.ui.screens.log import LogScreen

            self.push_screen(LogScreen(status.name, self.supervisor.log_lines, self.refresh_rate))

    def action_help(self) -> None:
        """Show every key."""
        from kportforward.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_restart(self) -> None:
        """Restart the selected forward (a new kubectl)."""
        if (status := self._selected()) is not None:
            self._command("restart", [status.name])

    def action_stop_start(self) -> None:
        """Stop the selected forward, or start it when it is Stopped."""
        if (status := self._selected()) is not None:
            verb = "start_forward" if status.state is ForwardState.STOPPED else "stop"
            self._command(verb, [status.name])

    def action_group_stop_start(self) -> None:
        """Stop every forward of the selected forward's group, or start them all if all stopped."""
        if (status := self._selected()) is None:
            return
        plan = group_plan(status, self.statuses.values())
        if plan is None:
            self.notify(f"{status.name} has no group (set 'group:' in the config)")
            return
        verb, names = plan
        self._command(verb, names)

    def action_open_url(self) -> None:
        """Open the selected forward's URL in the browser (in a thread: browsers can block)."""
        if (status := self._selected()) is not None:
            self._open(status.url)

    @work(thread=True, name="open-url", group="browser", exit_on_error=False)
    def _open(self, url: str) -> None:
        target = url if "://" in url else f"http://{url}"
        if not self.browser(target):
            self.call_from_thread(
                self.notify, f"No browser to open {target}; press c to copy it", severity="warning"
            )

    def action_copy_url(self) -> None:
        """Copy the selected forward's URL to the clipboard (OSC 52)."""
        if (status := self._selected()) is not None:
            self.copy_to_clipboard(status.url)
            self.notify(f"Copied {status.url}")

    def action_reload_config(self) -> None:
        """Read the config files again and apply them."""
        self.run_worker(reload_config(self), name="reload", group="reload", exit_on_error=False)

    def _command(self, verb: str, names: list[str]) -> None:
        self.run_worker(
            run_command(self, verb, names), name=verb, group="commands", exit_on_error=False
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action of the dashboard, in the command palette."""
        yield from palette_commands(self)
        yield from super().get_system_commands(screen)


def group_plan(
    status: ForwardStatus, statuses: Iterable[ForwardStatus]
) -> tuple[str, list[str]] | None:
    """What ``g`` does: ``("stop", names)`` while any forward of the group is not Stopped, else
    ``("start_forward", names)``; None when ``status`` has no group."""
    group = status.spec.group
    if not group:
        return None
    members = sorted((s for s in statuses if s.spec.group == group), key=lambda s: s.name)
    if any(s.state is not ForwardState.STOPPED for s in members):
        return "stop", [s.name for s in members]
    return "start_forward", [s.name for s in members]


async def run_command(app: DashboardActions, verb: str, names: list[str]) -> None:
    """Call ``supervisor.<verb>(name)`` for each name at once; failures become notifications."""
    what = ", ".join(names) if len(names) <= 3 else f"{len(names)} forwards"
    app.notify(f"{VERB_WORDS.get(verb, verb)} {what}", timeout=3)
    method = getattr(app.supervisor, verb)
    results = await asyncio.gather(*(method(name) for name in names), return_exceptions=True)
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            app.notify(
                f"{verb.replace('_forward', '')} {name} failed: {result}",
                title="Error",
                severity="error",
                timeout=10,
            )


async def reload_config(app: DashboardActions) -> None:
    """Load the config files again (in a thread) and hand the result to the supervisor."""
    from kportforward.core.config import load_config
    from kportforward.errors import KPortForwardError

    try:
        config = await asyncio.to_thread(load_config, app.config_arg)
    except KPortForwardError as exc:
        app.call_later(app.show_notice, f"Config not reloaded: {exc}", "error")
        return
    # The supervisor announces the reload itself (a notice event); the table follows its snapshot.
    await app.supervisor.reload(config)
    app.call_later(app.resync)


def palette_commands(app: DashboardActions) -> Iterator[SystemCommand]:
    """One command palette entry per dashboard action."""
    main = app.main_screen
    yield SystemCommand("Details", "Details of the selected forward (Enter)", app.action_details)
    yield SystemCommand(
        "Restart forward", "A new kubectl for the selected forward (R)", app.action_restart
    )
    yield SystemCommand(
        "Stop / start forward", "Stop or start the selected forward (space)", app.action_stop_start
    )
    yield SystemCommand(
        "Stop / start group", "The selected forward's whole group (g)", app.action_group_stop_start
    )
    yield SystemCommand("Live log", "kubectl output of the selected forward (l)", app.action_log)
    yield SystemCommand(
        "Open URL", "Open the selected forward in the browser (o)", app.action_open_url
    )
    yield SystemCommand("Copy URL", "Copy the selected forward's URL (c)", app.action_copy_url)
    yield SystemCommand("Filter", "Filter the table (/)", main.action_filter)
    yield SystemCommand("Clear filter", "Show every forward (Esc)", main.action_clear_filter)
    for key, letter in (
        ("name", "n"),
        ("status", "s"),
        ("type", "t"),
        ("port", "p"),
        ("uptime", "u"),
    ):
        yield SystemCommand(
            f"Sort by {key}",
            f"Sort the table by {key} ({letter})",
            lambda key=key: main.action_sort(key),
        )
    yield SystemCommand("Reverse sort", "Reverse the sort order (r)", main.action_reverse)
    yield SystemCommand(
        "Reload config", f"Read {app.config_path} again and apply it", app.action_reload_config
    )
    yield SystemCommand("Help", "Every key (?)", app.action_help)
