"""Pilot tests of the dashboard's logic over the scripted supervisor (fast; no processes)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC

import pytest

from kportforward.core.models import ClusterStatus, ConfigWarning
from kportforward.core.states import ForwardState
from kportforward.ui.app import KPortForwardApp, make_app
from kportforward.ui.screens.details import DetailsScreen
from kportforward.ui.screens.help import HelpScreen
from kportforward.ui.screens.log import LogScreen
from tests.ui.fakes import FROZEN_NOW, ScriptedSupervisor, config_of, every_state_world, spec
from tests.ui.helpers import screen_text, wait_for

S = ForwardState


def build(
    sup: ScriptedSupervisor | None = None, opened: list[str] | None = None
) -> tuple[KPortForwardApp, ScriptedSupervisor]:
    if sup is None:
        config, statuses, clusters = every_state_world()
        sup = ScriptedSupervisor(config, statuses, clusters)

    def browser(url: str) -> bool:
        if opened is not None:
            opened.append(url)
        return True

    app = make_app(
        sup,
        config_path="/home/me/.config/kportforward/config.yaml",
        clock=lambda: FROZEN_NOW,
        tz=UTC,
        open_url=browser,
        handle_signals=False,
    )
    return app, sup


def notifications(app: KPortForwardApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_rows_appear_with_state_words_and_the_counts_line() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started, what="supervisor started after the first frame")
        table = app.main_screen.table
        assert len(table.visible_names) == 11
        text = screen_text(app)
        for word in ("● Running", "◦ Cooldown 12s", "✗ Failed", "⏸ Suspended", "■ Stopped"):
            assert word in text
        assert "● 3/11 running" in text and "✗ 1 failed" in text
        assert "kind-dev ● reachable" in text and "staging ✗ unreachable" in text
        assert "web: port moved 3000 → 3001" in text
        assert "3001*" in text and "admin ⚑" in text


async def test_supervisor_lifetime_follows_the_app() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        assert sup.shutdown_calls == 0
        await pilot.press("q")
        await wait_for(pilot, lambda: sup.shutdown_calls == 1, what="shutdown on q")
    assert app.return_code == 0
    assert sup.shutdown_calls == 1


async def test_unmount_without_quit_still_shuts_the_supervisor_down() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
    assert sup.shutdown_calls == 1


async def test_cursor_keys_and_the_cursor_survives_updates_and_resorts() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.main_screen.table
        await wait_for(pilot, lambda: sup.started)
        assert table.cursor_name == "admin"
        await pilot.press("j", "j", "down")
        assert table.cursor_name == "cache"
        await pilot.press("k")
        assert table.cursor_name == "billing"
        await pilot.press("s")  # sort by status: billing (Cooldown) moves, the cursor follows
        assert table.visible_names[0] == "ghost"
        assert table.cursor_name == "billing"
        # Updates that re-sort the table keep the cursor on its forward.
        sup.set_state("billing", S.RUNNING, "ready", running_since=FROZEN_NOW)
        await wait_for(pilot, lambda: table.status_of("billing").state is S.RUNNING)
        assert table.cursor_name == "billing"
        assert table.visible_names.index("billing") > table.visible_names.index("search")
        await pilot.press("r")
        assert table.visible_names[-1] == "ghost" and table.cursor_name == "billing"
        await pilot.press("end")
        assert table.cursor_name == "ghost"
        await pilot.press("home")
        assert table.cursor_name == table.visible_names[0]


async def test_each_sort_key() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.main_screen.table
        await wait_for(pilot, lambda: sup.started)
        expected_first = {"n": "admin", "s": "ghost", "t": "cache", "p": "web", "u": "web"}
        for key, first in expected_first.items():
            await pilot.press(key)
            assert table.visible_names[0] == first, key
            assert (
                table.sort_key
                == {"n": "name", "s": "status", "t": "type", "p": "port", "u": "uptime"}[key]
            )
        assert "UPTIME ▲" in screen_text(app)
        await pilot.press("r")
        assert table.reverse and "UPTIME ▼" in screen_text(app)
        assert table.visible_names[0] == "admin"  # descending: the longest uptime first
        # Each key keeps its own direction: n is ascending again, u is still descending.
        await pilot.press("n")
        assert not table.reverse and table.visible_names[0] == "admin"
        assert "NAME ▲" in screen_text(app)
        await pilot.press("u")
        assert table.reverse and "UPTIME ▼" in screen_text(app)


async def test_scroll_position_survives_updates() -> None:
    specs = [spec(f"svc-{i:03d}", 20000 + i) for i in range(80)]
    sup = ScriptedSupervisor(config_of(specs))
    app, _ = build(sup)
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.main_screen.table
        await wait_for(pilot, lambda: sup.started)
        await pilot.press("pagedown", "pagedown", "pagedown")
        await pilot.pause()
        scroll, cursor = table.scroll_y, table.cursor_name
        assert scroll > 0
        for i in range(80):
            sup.set_state(f"svc-{i:03d}", S.RUNNING, "ready", pid=100 + i)
        await wait_for(pilot, lambda: all(table.status_of(f"svc-{i:03d}").pid for i in range(80)))
        assert table.scroll_y == scroll and table.cursor_name == cursor


async def test_filter_narrows_and_escape_clears() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.main_screen.table
        await wait_for(pilot, lambda: sup.started)
        await pilot.press("slash", *"payments")
        assert set(table.visible_names) == {"billing", "metrics"}
        await pilot.press("enter")  # keep the filter, keys go back to the table
        assert app.focused is table
        await pilot.press("j")
        assert table.cursor_name == "metrics"
        await pilot.press("escape")
        assert len(table.visible_names) == 11 and table.cursor_name == "metrics"
        await pilot.press("slash", *"failed", "escape")
        assert len(table.visible_names) == 11 and app.focused is table


async def test_restart_stop_start_and_group_call_the_supervisor() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.main_screen.table
        await wait_for(pilot, lambda: sup.started)
        table.move_cursor_to("api")
        old_pid = table.status_of("api").pid
        await pilot.press("R")
        await wait_for(pilot, lambda: table.status_of("api").pid not in (None, old_pid))
        assert ("restart", "api") in sup.calls
        await pilot.press("space")
        await wait_for(pilot, lambda: table.status_of("api").state is S.STOPPED)
        await pilot.press("space")
        await wait_for(pilot, lambda: table.status_of("api").state is S.RUNNING)
        await pilot.press("g")  # group core: api and web, some running -> stop both
        await wait_for(
            pilot,
            lambda: all(table.status_of(n).state is S.STOPPED for n in ("api", "web")),
        )
        await pilot.press("g")
        await wait_for(
            pilot,
            lambda: all(table.status_of(n).state is S.RUNNING for n in ("api", "web")),
        )
        table.move_cursor_to("ghost")
        await pilot.press("g")
        await wait_for(pilot, lambda: any("has no group" in m for m in notifications(app)))


async def test_command_failures_become_notifications_and_the_app_keeps_running() -> None:
    app, sup = build()
    sup.fail_on.add("restart")
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        await pilot.press("R")
        await wait_for(pilot, lambda: any("restart admin failed" in m for m in notifications(app)))
        assert app.is_running
        await pilot.press("j")
        assert app.main_screen.table.cursor_name == "api"


async def test_open_and_copy_url() -> None:
    opened: list[str] = []
    app, sup = build(opened=opened)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        app.main_screen.table.move_cursor_to("grpc")
        await pilot.press("o")  # an rpc forward is no web page: nothing opens, c is offered
        await wait_for(
            pilot, lambda: any("press c to copy localhost:9090" in m for m in notifications(app))
        )
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("o")
        await wait_for(pilot, lambda: opened == ["http://localhost:8080"])
        await pilot.press("c")
        assert app.clipboard == "http://localhost:8080"
        await wait_for(
            pilot,
            lambda: any(m.startswith("Copied http://localhost:8080") for m in notifications(app)),
        )
        app.main_screen.table.move_cursor_to("grpc")
        await pilot.press("c")
        assert app.clipboard == "localhost:9090"


async def test_details_log_and_help_screens() -> None:
    app, sup = build()
    sup.logs["api"] = ["15:00:00 Forwarding from 127.0.0.1:8080 -> 80"]
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        text = screen_text(app)
        assert "PID          4101" in text and "kubectl RSS  30.0 MiB" in text
        assert "History (newest first)" in text and "kubectl spawned" in text
        await pilot.press("R")  # keys act on the forward of the details screen
        await wait_for(pilot, lambda: "Restarts     0 unplanned · 1 asked for" in screen_text(app))
        await pilot.press("l")
        assert isinstance(app.screen, LogScreen)
        await pilot.press("l")  # a second l does not stack another log screen
        assert sum(isinstance(s, LogScreen) for s in app.screen_stack) == 1
        await wait_for(pilot, lambda: "Forwarding from 127.0.0.1:8080" in screen_text(app))
        sup.logs["api"].append("15:00:05 Handling connection for 8080")
        await wait_for(pilot, lambda: "Handling connection for 8080" in screen_text(app))
        await pilot.press("escape", "escape")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for key in ("j/k", "Enter", "n s t p u", "R", "space", "ctrl+p", "/", "g"):
            assert key in text
        await pilot.press("escape")
        assert app.screen is app.main_screen


async def test_cluster_and_notice_events_reach_the_header() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        sup.set_cluster(ClusterStatus("staging", reachable=True), "probe passed")
        await wait_for(pilot, lambda: "staging ● reachable" in screen_text(app))
        sup.notice("config reloaded: 1 added", "information")
        await wait_for(pilot, lambda: "config reloaded: 1 added" in screen_text(app))


async def test_flood_of_updates_is_coalesced_per_forward() -> None:
    specs = [spec(f"svc-{i:03d}", 20000 + i) for i in range(50)]
    sup = ScriptedSupervisor(config_of(specs))
    app, _ = build(sup)
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.main_screen.table
        await wait_for(pilot, lambda: sup.started)
        for round_ in range(20):
            for i in range(50):
                s = sup.snapshot()[i]
                sup.put_status(replace(s, state=S.RUNNING, restarts=round_))
        await wait_for(
            pilot, lambda: all(table.status_of(f"svc-{i:03d}").restarts == 19 for i in range(50))
        )
        assert app.coalescer.received == 1000
        assert app.coalescer.delivered < app.coalescer.received


async def test_empty_state_names_the_config_path() -> None:
    sup = ScriptedSupervisor(config_of([]))
    app, _ = build(sup)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        text = screen_text(app)
        assert "No forwards configured" in text
        assert "/home/me/.config/kportforward/config.yaml" in text
        assert "targetPort: 80" in text and "portForwards:" in text
        await pilot.press("R", "space", "enter", "o", "c", "l")  # nothing selected: no crash
        assert app.is_running


@pytest.mark.parametrize(
    ("theme", "expected", "warned"),
    [
        ("dark", "textual-dark", False),
        ("light", "textual-light", False),
        ("nord", "nord", False),
        ("no-such-theme", "textual-dark", True),
    ],
)
async def test_theme_aliases_and_unknown_theme(theme: str, expected: str, warned: bool) -> None:
    sup = ScriptedSupervisor(config_of([spec("api", 8080)], theme=theme))
    app, _ = build(sup)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == expected
        assert any("Unknown theme" in m for m in notifications(app)) is warned


async def test_config_warnings_are_notified() -> None:
    config = replace(
        config_of([spec("api", 8080)]), warnings=(ConfigWarning("unknown key", "/c.yaml", 3, "x"),)
    )
    app, _ = build(ScriptedSupervisor(config))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert any("/c.yaml:3: x: unknown key" in m for m in notifications(app))


async def test_every_action_is_in_the_command_palette() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in (
            "Details",
            "Restart forward",
            "Stop / start forward",
            "Stop / start group",
            "Live log",
            "Open URL",
            "Copy address",
            "Web UI",
            "Add forwards",
            "Filter",
            "Clear filter",
            "Sort by name",
            "Sort by status",
            "Sort by type",
            "Sort by port",
            "Sort by uptime",
            "Reverse sort",
            "Reload config",
            "Help",
            "Quit",
            "Theme",
        ):
            assert title in titles
        palette_sort = next(
            c for c in app.get_system_commands(app.screen) if c.title == "Sort by port"
        )
        palette_sort.callback()
        assert app.main_screen.table.sort_key == "port"


async def test_slow_quit_says_so_and_a_second_q_exits_at_once() -> None:
    app, sup = build()
    sup.shutdown_delay = 30
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await wait_for(pilot, lambda: sup.started)
        await pilot.press("q")
        await wait_for(
            pilot,
            lambda: any("Stopping" in m for m in notifications(app)),
            what="the slow-quit notice",
        )
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 130


async def test_details_follow_figures_that_change_without_a_transition() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("enter")
        api = sup.snapshot()[1]
        assert api.name == "api"
        # RSS, connections, traffic and probe latencies change with no state transition.
        assert api.traffic is not None
        traffic = replace(api.traffic, opened=43, active=1, bytes_out=2 * 1024 * 1024)
        sup.history["api"] = [(0, 0)] * 58 + [(1024, 3 * 1024 * 1024), (0, 2048)]
        sup._statuses["api"] = replace(api, rss=64 * 1024 * 1024, connections=43, traffic=traffic)
        await wait_for(pilot, lambda: "kubectl RSS  64.0 MiB" in screen_text(app))
        text = screen_text(app)
        assert "Connections  1 open · 43 relayed" in text
        assert "out 2.0 MiB" in text
        # The bytes/s sparkline of the last minute, with its scale.
        assert "Traffic through the front door" in text
        assert "now 2.0 KiB/s · peak 3.0 MiB/s · 3.0 MiB in 60 s" in text
        # Without a door there is no traffic pane, and Details says why.
        sup._statuses["api"] = replace(api, traffic=None, connections=7)
        await wait_for(pilot, lambda: "Front door" in screen_text(app))
        text = screen_text(app)
        assert "off: kubectl listens on the port itself" in text
        assert "Connections  7 (kubectl's count" in text
        assert "Traffic through the front door" not in text


async def test_a_broken_event_stream_is_notified_and_snapshots_take_over() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        sup.break_stream()
        await wait_for(pilot, lambda: any("event stream broke" in m for m in notifications(app)))
        assert app.is_running
        sup.set_quietly("ghost", state=S.RUNNING, reason="ready", pid=4321)
        await wait_for(pilot, lambda: app.main_screen.table.status_of("ghost").pid == 4321)


async def test_ctrl_c_quits_like_q() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.is_running)
    assert sup.shutdown_calls == 1 and app.return_code == 0


async def test_reload_config_from_the_palette(tmp_path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        "portForwards:\n  fresh:\n    target: service/fresh\n    targetPort: 80\n"
        "    localPort: 18123\n"
    )
    app, sup = build()
    app.config_arg = str(config_file)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        app.action_reload_config()
        await wait_for(pilot, lambda: ("reload", "") in sup.calls)
        await wait_for(pilot, lambda: app.main_screen.table.visible_names == ("fresh",))
        config_file.write_text("portForwards: [not, a, mapping\n")
        app.action_reload_config()
        await wait_for(pilot, lambda: any("Config not reloaded" in m for m in notifications(app)))
        assert app.is_running and app.main_screen.table.visible_names == ("fresh",)


def test_no_console_browser_takes_over_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from kportforward.ui import app

    opened: list[str] = []
    monkeypatch.setattr(app.webbrowser, "open", lambda url: opened.append(url) or True)
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert app.open_in_browser("http://localhost:1") is False and opened == []
    monkeypatch.setenv("DISPLAY", ":0")
    assert app.open_in_browser("http://localhost:1") is True and opened == ["http://localhost:1"]


async def test_h_shows_the_http_request_log_and_follows_new_requests() -> None:
    from kportforward.supervisor.httplog import HttpRequest
    from kportforward.ui.screens.requests import RequestsScreen

    app, sup = build()
    t = FROZEN_NOW - 30
    sup.requests["api"] = [
        HttpRequest(t, "GET", "/healthz", 200, 0.0031, 78, 120),
        HttpRequest(t + 1, "POST", "/v1/orders", 201, 0.0123, 2048, 310),
        HttpRequest(t + 2, "GET", "/v1/missing", 404, 0.0012, 80, 96),
        HttpRequest(t + 3, "", "", None, 0.0, 7, 0, "not HTTP"),
    ]
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("h")
        assert isinstance(app.screen, RequestsScreen)
        await wait_for(pilot, lambda: "/v1/orders" in screen_text(app), what="the log")
        text = screen_text(app)
        assert "HTTP requests  http://localhost:8080" in text
        assert "4 requests · 2 2xx · 1 4xx · 1 not HTTP · median 3.1 ms" in text
        row = next(line for line in text.splitlines() if "/v1/orders" in line)
        assert "POST" in row and "201" in row and "12.3" in row and "2.0 KiB" in row
        assert "not HTTP" in text
        # h again does not stack a second screen; a new request appears at the bottom.
        await pilot.press("h")
        assert len(app.screen_stack) == 2
        sup.requests["api"].append(HttpRequest(t + 4, "DELETE", "/v1/orders/7", 204, 0.002, 90, 0))
        await wait_for(pilot, lambda: "/v1/orders/7" in screen_text(app), what="a new request")
        lines = [line for line in screen_text(app).splitlines() if "/v1/" in line]
        assert "/v1/orders/7" in lines[-1]
        # The ring dropped its oldest entries: the table drops them too, nothing is repeated.
        del sup.requests["api"][:2]
        sup.requests["api"].append(HttpRequest(t + 5, "GET", "/last", 200, 0.001, 70, 10))
        await wait_for(pilot, lambda: "/last" in screen_text(app), what="the last request")
        text = screen_text(app)
        assert "/healthz" not in text and text.count("/v1/orders/7") == 1
        await pilot.press("escape")
        # A forward that is not HTTP, or that has no front door, says why there is no log.
        app.main_screen.table.move_cursor_to("cache")
        sup._statuses["cache"] = replace(
            sup._statuses["cache"], traffic=sup._statuses["api"].traffic
        )
        await pilot.press("h")
        await wait_for(pilot, lambda: "HTTP only on type web and rest" in screen_text(app))
        await pilot.press("escape")
        app.main_screen.table.move_cursor_to("search")
        await pilot.press("h")
        await wait_for(pilot, lambda: "frontDoor is off for this forward" in screen_text(app))
