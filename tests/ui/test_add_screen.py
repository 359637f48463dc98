"""The ``a`` screen over a scripted discovery: pick, preview, append, reload; and its errors."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from kportforward.core.config import load_config
from kportforward.kube.classify import KubeApiError
from kportforward.kube.discover import Discovery, ServiceInfo, ServicePort
from kportforward.ui.app import KPortForwardApp, make_app
from kportforward.ui.screens.add import AddScreen
from tests.ui.fakes import FROZEN_NOW, ScriptedSupervisor, config_of, spec
from tests.ui.helpers import screen_text, wait_for

SERVICES = (
    ServiceInfo("api", "shop", (ServicePort(80, "http", 8080),)),
    ServiceInfo("orders", "shop", (ServicePort(9090, "grpc", 9090), ServicePort(8080, "metrics"))),
)
ORIGINAL = (
    "portForwards:\n  api:\n    target: service/api\n    targetPort: 80\n    localPort: 8080\n"
)


def build(tmp_path: Path, discover) -> tuple[KPortForwardApp, ScriptedSupervisor, Path]:
    path = tmp_path / "config.yaml"
    path.write_text(ORIGINAL)
    sup = ScriptedSupervisor(config_of([spec("api", 8080, namespace="shop")]))
    app = make_app(
        sup,
        config_path=str(path),
        config_arg=str(path),
        clock=lambda: FROZEN_NOW,
        tz=UTC,
        handle_signals=False,
    )
    app.discover = discover  # type: ignore[method-assign]
    return app, sup, path


async def test_pick_two_ports_append_and_reload(tmp_path: Path) -> None:
    asked: list[str | None] = []

    async def discover(namespace: str | None) -> Discovery:
        asked.append(namespace)
        return Discovery("shop", "kind-dev", SERVICES)

    app, sup, path = build(tmp_path, discover)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        await pilot.press("a")
        await wait_for(pilot, lambda: "3 ports in 2 services" in screen_text(app))
        assert asked == ["shop"]  # the selected forward's namespace
        await pilot.press("space", "down", "space")
        text = screen_text(app)
        assert "api-2  service/api:80 → localhost:8081  web" in text
        assert "orders  service/orders:9090 → localhost:9090  rpc" in text
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, AddScreen))
        await wait_for(pilot, lambda: sup.calls and sup.calls[-1][0] == "reload", what="reload")
        after = path.read_text()
        assert after.startswith(ORIGINAL)
        assert "  # Added by kportforward on 2026-09-21 14:13 UTC from namespace shop" in after
        names = [s.name for s in load_config(str(path)).forwards]
        assert names == ["api", "api-2", "orders"]
        assert any("Added api-2, orders to" in n.message for n in app._notifications)


async def test_discovery_errors_and_refusals_are_one_line_and_write_nothing(
    tmp_path: Path,
) -> None:
    async def discover(namespace: str | None) -> Discovery:
        raise KubeApiError("forbidden", "cannot list services in namespace shop", "ask an admin")

    app, sup, path = build(tmp_path, discover)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        await pilot.press("a")
        await wait_for(pilot, lambda: "cannot list services" in screen_text(app))
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, AddScreen) and path.read_text() == ORIGINAL
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AddScreen))
    assert path.read_text() == ORIGINAL


async def test_a_file_that_cannot_take_an_append_says_why(tmp_path: Path) -> None:
    async def discover(namespace: str | None) -> Discovery:
        return Discovery("shop", "kind-dev", SERVICES)

    app, sup, path = build(tmp_path, discover)
    odd = ORIGINAL + "uiOptions:\n  theme: dark\n"
    path.write_text(odd)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: sup.started)
        await pilot.press("a")
        await wait_for(pilot, lambda: "3 ports" in screen_text(app))
        await pilot.press("space", "ctrl+s")
        await wait_for(pilot, lambda: "not the last top-level key" in screen_text(app))
        assert isinstance(app.screen, AddScreen)
    assert path.read_text() == odd
