"""What the dashboard's actions do, apart from the key wiring: commands, reload, the palette."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from kportforward.core.models import ForwardStatus
from kportforward.core.states import ForwardState

if TYPE_CHECKING:
    from kportforward.ui.app import KPortForwardApp

VERB_WORDS = {"restart": "Restarting", "stop": "Stopping", "start_forward": "Starting"}


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


async def run_command(app: KPortForwardApp, verb: str, names: list[str]) -> None:
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


async def reload_config(app: KPortForwardApp) -> None:
    """Load the config files again (in a thread) and hand the result to the supervisor."""
    from kportforward.core.config import load_config
    from kportforward.errors import KPortForwardError

    try:
        config = await asyncio.to_thread(load_config, app.config_arg)
    except KPortForwardError as exc:
        app.show_notice(f"Config not reloaded: {exc}", "error")
        return
    # The supervisor announces the reload itself (a notice event); the table follows its snapshot.
    await app.supervisor.reload(config)
    app.resync()


def palette_commands(app: KPortForwardApp) -> Iterator[SystemCommand]:
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
