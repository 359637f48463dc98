"""Snapshot tests: the dashboard at 80x24, 120x30 and 200x50 with a frozen clock, times in UTC, and
a scripted supervisor.

Update after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and
look at the SVGs in ``tests/ui/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from datetime import UTC

import pytest
from textual.pilot import Pilot

from kportforward.kube.discover import Discovery, ServiceInfo, ServicePort
from kportforward.supervisor.httplog import HttpRequest
from kportforward.ui.app import KPortForwardApp, make_app
from tests.ui.fakes import FROZEN_NOW, ScriptedSupervisor, config_of, every_state_world
from tests.ui.helpers import wait_for

SIZE = (120, 30)
SIZES = [(80, 24), (120, 30), (200, 50)]


def every_state_app() -> KPortForwardApp:
    config, statuses, clusters = every_state_world()
    sup = ScriptedSupervisor(config, statuses, clusters)
    # api's last minute through its front door, and the requests it saw.
    sup.history["api"] = [(400 * (i % 7), 9000 * ((i * 5) % 11)) for i in range(60)]
    t = FROZEN_NOW - 40
    sup.requests["api"] = [
        HttpRequest(t, "GET", "/healthz", 200, 0.0018, 78, 120),
        HttpRequest(t + 3, "GET", "/v1/orders?limit=20", 200, 0.0231, 96, 14_210),
        HttpRequest(t + 9, "POST", "/v1/orders", 201, 0.0412, 2_048, 310),
        HttpRequest(t + 15, "GET", "/v1/orders/9f3e", 404, 0.0021, 88, 96),
        HttpRequest(t + 21, "GET", "/v1/stream", None, 12.5, 80, 1_048_576, "no response"),
        HttpRequest(t + 30, "", "", None, 0.0, 16, 0, "not HTTP"),
        HttpRequest(t + 38, "DELETE", "/v1/orders/7", 204, 0.0063, 90, 0),
    ]
    return make_app(
        sup,
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


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_table_with_every_state(snap_compare, size: tuple[int, int]) -> None:
    """One forward in each state, a moved port (*), an exposed forward (⚑), two clusters: the
    columns that fit, the reason always, the selected row's whole reason in the strip."""

    async def on_ghost(pilot: Pilot) -> None:
        await started(pilot)
        app = pilot.app
        assert isinstance(app, KPortForwardApp)
        app.main_screen.table.move_cursor_to("ghost")
        await pilot.pause()

    assert snap_compare(every_state_app(), terminal_size=size, run_before=on_ghost)


@pytest.mark.parametrize("size", [(80, 24), (120, 30)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_details_screen(snap_compare, size: tuple[int, int]) -> None:
    """Details of 'api': spec, figures, traffic and latency sparklines with their scales,
    history (stacked under the fields at 80 columns)."""

    async def open_details(pilot: Pilot) -> None:
        await started(pilot)
        app = pilot.app
        assert isinstance(app, KPortForwardApp)
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(every_state_app(), terminal_size=size, run_before=open_details)


def test_requests_screen(snap_compare) -> None:
    """h on 'api': its HTTP request log with the summary line, the last request selected."""

    async def open_requests(pilot: Pilot) -> None:
        await started(pilot)
        app = pilot.app
        assert isinstance(app, KPortForwardApp)
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("h")
        await pilot.pause()

    assert snap_compare(every_state_app(), terminal_size=SIZE, run_before=open_requests)


@pytest.mark.parametrize("size", [(80, 24), (120, 30)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare, size: tuple[int, int]) -> None:
    """The help modal over the table, with its own footer."""
    assert snap_compare(
        every_state_app(), terminal_size=size, run_before=started, press=["question_mark"]
    )


def test_add_screen(snap_compare) -> None:
    """The a screen: a namespace's service ports, two picked, the preview of what is appended."""
    app = every_state_app()

    async def discover(namespace: str | None) -> Discovery:
        return Discovery(
            "payments",
            "kind-dev",
            (
                ServiceInfo("billing", "payments", (ServicePort(80, "http", 8080),)),
                ServiceInfo("ledger", "payments", (ServicePort(50051, "grpc", "grpc"),)),
                ServiceInfo("postgres", "payments", (ServicePort(5432, "postgres"),)),
            ),
        )

    app.discover = discover  # type: ignore[method-assign]

    async def pick(pilot: Pilot) -> None:
        await started(pilot)
        app.main_screen.table.move_cursor_to("billing")
        await pilot.press("a")
        await wait_for(
            pilot, lambda: "3 ports" in str(app.screen.query_one("#add-status").render())
        )
        await pilot.press("space", "down", "space")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=pick)


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


@pytest.mark.parametrize("look", ["light", "no-color"])
def test_table_light_and_no_color(snap_compare, look: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """State colours on the light theme, and under NO_COLOR (glyphs and bold carry the states)."""
    from dataclasses import replace

    config, statuses, clusters = every_state_world()
    if look == "light":
        config = replace(config, settings=replace(config.settings, theme="light"))
    else:
        monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(
        ScriptedSupervisor(config, statuses, clusters),
        config_path="/home/me/.config/kportforward/config.yaml",
        clock=lambda: FROZEN_NOW,
        tz=UTC,
        handle_signals=False,
    )
    assert snap_compare(app, terminal_size=(100, 24), run_before=started)
