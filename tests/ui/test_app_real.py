"""Pilot tests of the dashboard over the real supervisor, the simulator and the real kubectl."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC

import psutil
import pytest

from kportforward.core.models import ForwardStatus
from kportforward.core.states import ForwardState
from kportforward.sim import Simulator, World
from kportforward.supervisor.supervisor import Supervisor
from kportforward.ui.app import KPortForwardApp, make_app
from kportforward.ui.screens.details import DetailsScreen
from kportforward.ui.screens.log import LogScreen
from tests.conftest import free_ports
from tests.ui.fakes import config_of, spec
from tests.ui.helpers import screen_text, wait_for

S = ForwardState
TIMEOUT = 30.0


def world() -> World:
    w = World(seed=3)
    w.add_app("web", port=80, target_port=8080, port_name="http")
    w.add_app("api", namespace="payments", port=80, target_port=8080, port_name="http")
    w.add_app("grpc", port=9090, target_port=9090, port_name="grpc", backend="echo")
    return w


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(world())
    simulator.start_in_thread()
    yield simulator
    simulator.stop_in_thread()


def build(sim: Simulator, kubectl: str) -> tuple[KPortForwardApp, Supervisor]:
    p = free_ports(4)
    config = config_of(
        [
            spec("web", p[0], target="service/web", type="web", group="front"),
            spec("api", p[1], target="service/api", namespace="payments", group="front"),
            spec("grpc", p[2], target="deployment/grpc", target_port=9090, type="rpc"),
            spec("ghost", p[3], target="service/ghost"),
        ],
        monitoring_interval=0.5,
        refresh_rate=0.1,
    )
    supervisor = Supervisor(config, kubectl=kubectl, kubeconfig=str(sim.kubeconfig_path))
    app = make_app(supervisor, config_path="config.yaml", tz=UTC, handle_signals=False)
    return app, supervisor


def status(app: KPortForwardApp, name: str) -> ForwardStatus:
    s = app.main_screen.table.status_of(name)
    assert s is not None
    return s


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def running(app: KPortForwardApp, *names: str) -> bool:
    return all(status(app, n).state is S.RUNNING for n in names)


async def test_real_forwards_keys_screens_and_quit_leaves_no_kubectl(
    sim: Simulator, kubectl: str
) -> None:
    app, supervisor = build(sim, kubectl)
    pids: set[int] = set()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.main_screen.table
        # Rows appear at once (from the snapshot), then turn Running.
        assert set(table.visible_names) == {"api", "ghost", "grpc", "web"}
        await wait_for(pilot, lambda: running(app, "web", "api", "grpc"), TIMEOUT, "Running")
        await wait_for(pilot, lambda: status(app, "ghost").state is S.FAILED, TIMEOUT, "ghost")
        assert "not found" in status(app, "ghost").reason + (status(app, "ghost").last_error or "")
        text = screen_text(app)
        assert (
            "● Running" in text
            and "✗ Failed" in text
            and "● 3/4 running" in text
            and "✗ 1 failed" in text
        )
        pids |= {status(app, n).pid for n in ("web", "api", "grpc")}  # type: ignore[misc]

        # R: a new kubectl, a new pid.
        table.move_cursor_to("web")
        old = status(app, "web").pid
        await pilot.press("R")
        await wait_for(
            pilot,
            lambda: running(app, "web") and status(app, "web").pid not in (None, old),
            TIMEOUT,
            "web restarted with a new pid",
        )
        assert old is not None and not alive(old)
        pids.add(status(app, "web").pid)  # type: ignore[arg-type]

        # space: stop, then start again.
        await pilot.press("space")
        await wait_for(pilot, lambda: status(app, "web").state is S.STOPPED, TIMEOUT, "stopped")
        assert status(app, "web").pid is None
        await pilot.press("space")
        await wait_for(pilot, lambda: running(app, "web"), TIMEOUT, "web running again")
        pids.add(status(app, "web").pid)  # type: ignore[arg-type]

        # Filter and every sort key, on real rows.
        await pilot.press("slash", *"payments", "enter")
        assert table.visible_names == ("api",)
        await pilot.press("escape")
        orders = {}
        for key in "nstpu":
            await pilot.press(key)
            orders[key] = table.visible_names
        assert orders["n"] == ("api", "ghost", "grpc", "web")
        assert orders["s"][0] == "ghost"  # the failed forward first
        assert orders["t"][-1] == "web"
        ports = [status(app, n).local_port for n in orders["p"]]
        assert ports == sorted(ports)
        assert orders["u"][-1] == "ghost"  # not running: after every running forward
        await pilot.press("n")

        # Details and log screens show real data.
        table.move_cursor_to("api")
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        pid = status(app, "api").pid
        await wait_for(pilot, lambda: f"PID          {pid}" in screen_text(app), TIMEOUT, "pid")
        text = screen_text(app)
        assert "service/api" in text and "payments" in text and "Running" in text
        await pilot.press("l")
        assert isinstance(app.screen, LogScreen)
        await wait_for(
            pilot, lambda: "Forwarding from 127.0.0.1:" in screen_text(app), TIMEOUT, "the log"
        )
        await pilot.press("escape", "escape")

        pids |= {s.pid for s in supervisor.snapshot() if s.pid}
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, TIMEOUT, "quit")
    assert pids
    assert not [p for p in pids if alive(p)], "kubectl left behind"
    children = psutil.Process(os.getpid()).children(recursive=True)
    assert not [c for c in children if "kubectl" in c.name() and c.status() != "zombie"]


async def test_pod_deletion_shows_reconnecting_then_running(sim: Simulator, kubectl: str) -> None:
    app, _ = build(sim, kubectl)
    seen: list[S] = []
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: running(app, "web"), TIMEOUT, "web Running")
        old_pid = status(app, "web").pid
        table = app.main_screen.table
        original = table.update_statuses

        def spy(changed: dict[str, ForwardStatus]) -> None:  # every state the table is given
            original(changed)
            if "web" in changed and (not seen or seen[-1] is not changed["web"].state):
                seen.append(changed["web"].state)

        table.update_statuses = spy  # type: ignore[method-assign,assignment]
        (pod,) = sim.pods("default", {"app": "web"})
        # The Deployment's pod is deleted and replaced (what Kubernetes does; the simulator's
        # restart_pod): the forward must notice, reconnect, and run on the new pod.
        new_pod = sim.restart_pod("default", pod)
        await wait_for(
            pilot,
            lambda: running(app, "web") and status(app, "web").pid != old_pid,
            TIMEOUT,
            "web Running again on a new kubectl",
        )
        states = [t.state for t in status(app, "web").history]
        assert S.RECONNECTING in states[states.index(S.RUNNING) :]
        assert S.RECONNECTING in seen and seen[-1] is S.RUNNING  # the table showed both
        assert new_pod in status(app, "web").reason
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, TIMEOUT, "quit")


async def test_real_http_requests_and_traffic_through_the_front_door(
    sim: Simulator, kubectl: str
) -> None:
    import asyncio
    import urllib.request

    from kportforward.ui.screens.requests import RequestsScreen

    app, _ = build(sim, kubectl)

    def get(port: int, path: str) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            reply.read()
            return int(reply.status)

    async with app.run_test(size=(140, 30)) as pilot:
        await wait_for(pilot, lambda: running(app, "web"), TIMEOUT, "web Running")
        port = status(app, "web").local_port
        for path in ("/first", "/second?x=1"):
            assert await asyncio.to_thread(get, port, path) == 200
        # The row counts the user's connections (probes go around the door).
        await wait_for(
            pilot,
            lambda: (t := status(app, "web").traffic) is not None and t.opened >= 2,
            TIMEOUT,
            "the door's counters in the table",
        )
        assert "TRAFFIC" in app.main_screen.table.shown_columns
        app.main_screen.table.move_cursor_to("web")
        await pilot.press("h")
        assert isinstance(app.screen, RequestsScreen)
        await wait_for(pilot, lambda: "/second?x=1" in screen_text(app), TIMEOUT, "the log")
        text = screen_text(app)
        row = next(line for line in text.splitlines() if "/first" in line)
        assert "GET" in row and "200" in row
        assert "2 requests · 2 2xx" in text
        await pilot.press("escape", "enter")
        assert isinstance(app.screen, DetailsScreen)
        await wait_for(pilot, lambda: "2 relayed" in screen_text(app), TIMEOUT, "details")
        text = screen_text(app)
        assert "Traffic through the front door" in text and "peak" in text
        await pilot.press("escape", "q")
        await wait_for(pilot, lambda: not app.is_running, TIMEOUT, "quit")
