"""Pilot tests for what issue 15 fixed: widths, the status strip, footers, group names,
screenshots, web UIs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kportforward.core.models import ForwardStatus
from kportforward.core.states import ForwardState
from kportforward.ui.screens.details import DetailsScreen
from kportforward.ui.screens.grpc import GrpcScreen
from kportforward.ui.screens.help import HelpScreen
from tests.ui.helpers import screen_text, wait_for
from tests.ui.test_app import build, notifications


@pytest.mark.parametrize(
    ("size", "columns"),
    [
        ((80, 24), ("NAME", "STATUS", "LOCAL", "UPTIME", "RESTARTS", "REASON / POD")),
        ((120, 30), ("NAME", "STATUS", "LOCAL", "UPTIME", "RESTARTS", "TRAFFIC", "TYPE",
                     "NAMESPACE", "GROUP", "REASON / POD")),
        ((100, 30), ("NAME", "STATUS", "LOCAL", "UPTIME", "RESTARTS", "TRAFFIC", "TYPE",
                     "REASON / POD")),
        ((200, 50), ("NAME", "STATUS", "LOCAL", "UPTIME", "RESTARTS", "TRAFFIC", "TYPE",
                     "NAMESPACE", "GROUP", "REASON / POD")),
    ],
)  # fmt: skip
async def test_columns_follow_the_width_and_the_reason_always_stays(
    size: tuple[int, int], columns: tuple[str, ...]
) -> None:
    app, sup = build()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: sup.started)
        await pilot.pause()
        table = app.main_screen.table
        assert table.shown_columns == columns
        text = screen_text(app)
        row = next(line for line in text.splitlines() if " ghost " in line)
        assert "✗ Failed" in row and 'services "ghost"' in row
        # The whole reason of the selected row, whatever the width, in the status strip.
        table.move_cursor_to("staging-db")
        await pilot.pause()
        assert "cluster unreachable: connection refused" in screen_text(app)
        footer = text.splitlines()[-1]
        assert "^p palette" in footer and "Quit" in footer and "Help" in footer


async def test_help_footer_names_the_helps_own_keys() -> None:
    app, sup = build()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        footer = screen_text(app).splitlines()[-1]
        assert "Close help" in footer and "Quit" not in footer
        await pilot.press("q")  # closes the help, does not quit
        assert app.screen is app.main_screen and app.is_running


async def test_group_key_names_the_group() -> None:
    app, sup = build()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("g")
        await wait_for(pilot, lambda: any("group core" in m for m in notifications(app)))
        assert "Stopping group core (2 forwards)" in notifications(app)


async def test_screenshots_go_to_a_directory_that_exists_and_say_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "shots" / "new"
    monkeypatch.setenv("KPORTFORWARD_SCREENSHOT_DIR", str(target))
    app, sup = build()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        saved = app.deliver_screenshot()
        assert saved is not None and Path(saved).parent == target
        assert Path(saved).read_text().startswith("<svg")
        await pilot.pause()
        assert f"Saved {saved}" in notifications(app), notifications(app)
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        monkeypatch.setenv("KPORTFORWARD_SCREENSHOT_DIR", str(blocker / "sub"))
        assert app.deliver_screenshot() is None
        await pilot.pause()
        failure = notifications(app)[-1]
        assert str(blocker / "sub") in failure and "Not a directory" in failure


@dataclass
class FakeWebUIs:
    """What the dashboard uses of ``kportforward.webui.WebUIs``."""

    urls: dict[str, str]
    opened: list[str]

    def url(self, name: str) -> str | None:
        return self.urls.get(name)

    def grpcui_status(self, name: str) -> None:
        return None

    async def open_swagger(self, status: ForwardStatus) -> str:
        self.opened.append(status.name)
        url = f"http://127.0.0.1:9100/{status.name}/"
        self.urls[status.name] = url
        return url


async def test_web_uis_open_copy_details_and_the_w_key() -> None:
    opened: list[str] = []
    app, sup = build(opened=opened)
    webuis = FakeWebUIs({}, [])
    app.webuis = webuis  # type: ignore[assignment]
    api = sup.status("api")
    sup.put_status(
        ForwardStatus(
            spec=type(api.spec)(**{**{f: getattr(api.spec, f) for f in api.spec.__slots__},
                                   "swagger_path": "openapi.json", "api_path": "api"}),
            state=ForwardState.RUNNING, local_port=8080, running_since=api.running_since,
        )
    )  # fmt: skip
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        await wait_for(pilot, lambda: app.statuses["api"].spec.swagger_path == "openapi.json")
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("w")
        await wait_for(pilot, lambda: opened == ["http://127.0.0.1:9100/api/"])
        assert webuis.opened == ["api"]
        await pilot.press("c")
        assert app.clipboard == "http://127.0.0.1:9100/api/"
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        text = screen_text(app)
        assert "Swagger UI   http://127.0.0.1:9100/api/" in text
        assert "swaggerPath  openapi.json" in text and "apiPath      api" in text
        await pilot.press("escape")
        app.main_screen.table.move_cursor_to("cache")  # type other: no web UI
        await pilot.press("w")
        await wait_for(pilot, lambda: any("has no web UI" in m for m in notifications(app)))
        app.main_screen.table.move_cursor_to("grpc")  # type rpc: the gRPC screen
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, GrpcScreen))
        assert app.screen.target == "127.0.0.1:9090"  # type: ignore[attr-defined]


async def test_details_fit_a_narrow_terminal_and_the_sparkline_has_a_scale() -> None:
    app, sup = build()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        app.main_screen.table.move_cursor_to("api")
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailsScreen) and screen.has_class("narrow")
        history = screen.query_one("#details-history")
        assert history.size.width >= 60  # stacked under the fields, not a 14-column strip
        scale = str(screen.query_one("#no-latency").render())
        assert scale == "last 6.0 ms · min 4.0 ms · max 12.0 ms (9 probes)"
