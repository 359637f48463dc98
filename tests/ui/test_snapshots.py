"""Snapshot tests: the dashboard at 120x30 with a frozen clock, times in UTC, scripted supervisor.

Update after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and
look at the SVGs in ``tests/ui/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from datetime import UTC

from textual.pilot import Pilot

from kportforward.ui.app import KPortForwardApp, make_app
from tests.ui.fakes import FROZEN_NOW, ScriptedSupervisor, config_of, every_state_world
from tests.ui.helpers import wait_for

SIZE = (120, 30)


def every_state_app() -> KPortForwardApp:
    config, statuses, clusters = every_state_world()
    return make_app(
        ScriptedSupervisor(config, statuses, clusters),
        config_path="/home/me/.config/kportforward/config.yaml",
        clock=lambda: FROZEN_NOW,
        tz=UTC,
        handle_signals=False,
    )


async def started(pilot: Pilot) -> None:
    app = pilot.app
    assert isinstance(app, KPortForwardApp)
    await wait_for(pilot, lambda: app.supervisor.started)  # type: ignore[attr-defined]
    await pilot.pause()


def test_table_with_every_state(snap_compare) -> None:
    """One forward in each state, a moved port (*), an exposed forward (⚑), two clusters."""
    assert snap_compare(every_state_app(), terminal_size=SIZE, run_before=started)


def test_details_screen(snap_compare) -> None:
    """Details of 'api': spec, figures, latency sparkline, history."""

    async def open_details(pilot: Pilot) -> None:
        await started(pilot)
        app = pilot.app
        assert isinstance(app, KPortForwardApp)
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(every_state_app(), terminal_size=SIZE, run_before=open_details)


def test_help_screen(snap_compare) -> None:
    """The help modal over the table."""
    assert snap_compare(
        every_state_app(), terminal_size=SIZE, run_before=started, press=["question_mark"]
    )


def test_empty_state(snap_compare) -> None:
    """No forwards configured: the config path and an example entry."""
    app = make_app(
        ScriptedSupervisor(config_of([])),
        config_path="/home/me/.config/kportforward/config.yaml",
        clock=lambda: FROZEN_NOW,
        tz=UTC,
        handle_signals=False,
    )
    assert snap_compare(app, terminal_size=SIZE, run_before=started)
