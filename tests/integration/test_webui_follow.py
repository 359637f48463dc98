"""WebUIs follows forward snapshots: Swagger UI published/kept/withdrawn by state, grpcui started,
restarted with the forward (a new kubectl pid) and stopped; on-demand Swagger UI without the flag.
Real servers and processes: the Swagger UI server, a stand-in grpcui, the simulator's OpenAPI
backend behind a real kubectl tunnel."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest

from kportforward.core.models import ForwardSpec, ForwardStatus
from kportforward.core.states import ForwardState
from kportforward.webui import swagger_ui_available
from kportforward.webui.follow import WebUIs

from .test_grpcui import gone, launches, standin, until  # noqa: F401 - the fixture
from .test_swaggerui_server import api_world

pytestmark = pytest.mark.skipif(
    not swagger_ui_available(), reason="needs the swaggerui extra (swagger-ui-bundle)"
)
S = ForwardState


def rest(port: int, **kw) -> ForwardSpec:  # type: ignore[no-untyped-def]
    """A REST forward with a swaggerPath, like the Go tool's configs."""
    kw.setdefault("swagger_path", "openapi.json")
    kw.setdefault("api_path", "api")
    return ForwardSpec(
        name=kw.pop("name", "api"), target="service/api", target_port=80, local_port=port,
        type="rest", **kw,
    )  # fmt: skip


def rpc(port: int) -> ForwardSpec:
    """An rpc forward."""
    return ForwardSpec(name="orders", target="service/orders", target_port=9000,
                       local_port=port, type="rpc")  # fmt: skip


async def get_json(url: str) -> tuple[int, dict]:
    def fetch() -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(url, timeout=20) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return await asyncio.to_thread(fetch)


async def test_swagger_follows_the_forward(sim_factory, port_forward) -> None:
    sim = sim_factory(api_world())
    pf = port_forward(sim, "service/api", 80)
    spec = rest(pf.local_port or 0)
    notices: list[str] = []
    uis = WebUIs(swaggerui=True, on_notice=notices.append)
    await uis.start()
    try:
        uis.update(ForwardStatus(spec=spec, state=S.CONNECTING))
        assert uis.url("api") is None  # nothing before it runs
        uis.update(ForwardStatus(spec=spec, state=S.RUNNING, local_port=pf.local_port or 0))
        url = uis.url("api")
        assert url is not None and url.endswith("/api/")
        status, doc = await get_json(url + "spec")
        assert status == 200 and doc["info"]["title"] == "Simulated pod API"

        # Reconnecting, then Running on another port (the resolver moved it): same URL.
        uis.update(ForwardStatus(spec=spec, state=S.RECONNECTING, local_port=pf.local_port or 0))
        assert uis.url("api") == url
        pf.kill()
        pf2 = port_forward(sim, "service/api", 80)
        uis.update(ForwardStatus(spec=spec, state=S.RUNNING, local_port=pf2.local_port or 0))
        assert uis.url("api") == url
        assert (await get_json(url + "spec"))[0] == 200

        uis.update(ForwardStatus(spec=spec, state=S.STOPPED))
        assert uis.url("api") is None
        assert notices == []

        # Forwards without a swaggerPath, or not REST, get nothing.
        other = rest(1, name="plain", swagger_path=None)
        uis.update(ForwardStatus(spec=other, state=S.RUNNING, local_port=1))
        assert uis.url("plain") is None
    finally:
        await uis.close()


async def test_on_demand_swagger_without_the_flag(sim_factory, port_forward) -> None:
    sim = sim_factory(api_world())
    pf = port_forward(sim, "service/api", 80)
    spec = rest(pf.local_port or 0)
    uis = WebUIs()  # no --swaggerui
    await uis.start()
    running = ForwardStatus(spec=spec, state=S.RUNNING, local_port=pf.local_port or 0)
    try:
        uis.update(running)
        assert uis.url("api") is None and not uis.swagger.running
        url = await uis.open_swagger(running)
        assert uis.url("api") == url and (await get_json(url + "spec"))[0] == 200
        with pytest.raises(ValueError, match="no swaggerPath"):
            await uis.open_swagger(ForwardStatus(spec=rpc(1), state=S.RUNNING))
    finally:
        await uis.close()


async def test_missing_assets_are_one_notice_not_a_failure(monkeypatch) -> None:
    from kportforward.webui import server

    monkeypatch.setattr(server, "find_assets", lambda: None)
    notices: list[str] = []
    uis = WebUIs(swaggerui=True, on_notice=notices.append)
    await uis.start()
    uis.update(ForwardStatus(spec=rest(8080), state=S.RUNNING, local_port=8080))
    assert uis.url("api") is None
    assert len(notices) == 1 and "pip install 'kportforward[swaggerui]'" in notices[0]
    await uis.close()


async def test_grpcui_follows_the_forward(standin: Path) -> None:  # noqa: F811
    changed: list[str] = []
    uis = WebUIs(grpcui=True, on_change=changed.append)
    await uis.start()
    spec = rpc(31100)
    try:
        uis.update(ForwardStatus(spec=spec, state=S.CONNECTING))
        assert uis.grpcui_status("orders") is None
        uis.update(ForwardStatus(spec=spec, state=S.RUNNING, local_port=31100, pid=1001))
        await until(lambda: uis.url("orders") is not None)
        first = uis.grpcui_status("orders")
        assert first is not None and "orders" in changed

        # Same kubectl: nothing happens. A new kubectl (restart, coalesced): grpcui restarts.
        uis.update(ForwardStatus(spec=spec, state=S.DEGRADED, local_port=31100, pid=1001))
        uis.update(ForwardStatus(spec=spec, state=S.RUNNING, local_port=31100, pid=1002))
        await until(lambda: len(launches(standin)) == 2 and uis.url("orders") is not None)
        assert uis.url("orders") == first.url

        # The forward backs off: grpcui is stopped with it.
        second = uis.grpcui_status("orders")
        uis.update(ForwardStatus(spec=spec, state=S.COOLDOWN, local_port=31100))
        await until(lambda: uis.grpcui_status("orders") is None)
        assert second is not None and second.pid is not None
        await until(lambda: gone(second.pid or 0))
        uis.forget("orders")
    finally:
        await uis.close()
    assert all(gone(launch["pid"]) for launch in launches(standin))
