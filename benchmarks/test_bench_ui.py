"""Dashboard table refresh: 500 forwards that all change between two refreshes (4 Hz).

Run: .venv/bin/pytest benchmarks/test_bench_ui.py --benchmark-only

One measured round is one refresh of the running app, driven through Textual's own machinery: the
event worker's side (500 new statuses into the coalescer and the doorbell message), the doorbell
handler (drain, rows updated in place, re-sort, header counts and clusters), the refreshRate tick,
and the screen's next frame (compositor update and the render of the visible lines). The timer is
``time.thread_time``: CPU time of the main thread, the thread Textual and the supervisor share, so
the 60 Hz frame timer's idle wait is not counted. At 4 Hz every forward changes once per refresh,
2,000 status changes a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC
from typing import Any

import pytest

from kportforward.core.models import ForwardStatus
from kportforward.core.states import ForwardState
from kportforward.ui.app import KPortForwardApp, StatusesPending, make_app
from tests.ui.fakes import FROZEN_NOW, ScriptedSupervisor, config_of, spec

N = 500


def batches(statuses: tuple[ForwardStatus, ...]) -> list[list[ForwardStatus]]:
    """Two alternating generations in which every forward changes state, pid and restarts."""
    out = []
    for gen in range(2):
        batch = []
        for i, s in enumerate(statuses):
            running = (i + gen) % 3 != 0
            batch.append(
                replace(
                    s,
                    state=ForwardState.RUNNING if running else ForwardState.RECONNECTING,
                    reason="ready" if running else "pod replaced",
                    pid=10_000 + i * 2 + gen if running else None,
                    restarts=s.restarts + gen,
                    running_since=FROZEN_NOW - i if running else None,
                )
            )
        out.append(batch)
    return out


class Running:
    """The app under ``run_test`` in one long-lived task; each refresh is a request to that task.

    (Textual's context variables belong to the task that entered ``run_test``, so the app is
    driven from inside it while this sync benchmark times each request from outside.)
    """

    def __init__(self, sort_key: str, size: tuple[int, int]) -> None:
        specs = [
            spec(f"svc-{i:03d}", 20000 + i, namespace=f"ns-{i % 7}", group=f"g{i % 5}")
            for i in range(N)
        ]
        self.sup = ScriptedSupervisor(config_of(specs))
        self.app: KPortForwardApp = make_app(
            self.sup, config_path="c.yaml", clock=lambda: FROZEN_NOW, tz=UTC, handle_signals=False
        )
        self.sort_key = sort_key
        self.size = size
        self.turn = 0
        self.loop = asyncio.new_event_loop()
        self.requests: asyncio.Queue[asyncio.Future[None] | None] = asyncio.Queue()
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.session = self.loop.create_task(self._session())
        self.loop.run_until_complete(self.ready)
        self.table = self.app.main_screen.table

    async def _session(self) -> None:
        async with self.app.run_test(size=self.size) as pilot:
            while not self.sup.started:
                await pilot.pause(0.01)
            table = self.app.main_screen.table
            table.sort_by(self.sort_key)
            await pilot.pause()
            frame = asyncio.Event()
            original = table.render_line
            last_line = self.size[1] // 2  # a line every frame of a full table repaints

            def render_line(y: int) -> Any:
                if y == last_line:
                    frame.set()
                return original(y)

            table.render_line = render_line  # type: ignore[method-assign]
            gens = batches(self.sup.snapshot())
            self.ready.set_result(None)
            while (request := await self.requests.get()) is not None:
                batch = gens[self.turn % 2]
                self.turn += 1
                frame.clear()
                for status in batch:  # the event worker's side
                    self.app.coalescer.put(status)
                self.app.post_message(StatusesPending())
                table.refresh_time()  # the refreshRate tick
                await frame.wait()  # the frame that shows the batch has been rendered
                request.set_result(None)

    def refresh(self) -> None:
        """One refresh, from new statuses to the rendered frame."""
        done = self.loop.create_future()
        self.requests.put_nowait(done)
        self.loop.run_until_complete(done)

    def close(self) -> None:
        """End the session (the app shuts its supervisor down) and close the loop."""
        self.requests.put_nowait(None)
        self.loop.run_until_complete(self.session)
        self.loop.close()


@pytest.fixture(params=["name", "status"])
def sort_key(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=[(120, 30), (160, 50)], ids=["120x30", "160x50"])
def running(request: pytest.FixtureRequest, sort_key: str) -> Iterator[Running]:
    r = Running(sort_key, request.param)
    yield r
    r.close()


@pytest.mark.benchmark(group="ui-refresh", timer=time.thread_time)
def test_refresh_500_forwards_all_changing(benchmark, running: Running) -> None:
    """Main-thread CPU per refresh (sorted by name: rows in place; by status: re-sorted too)."""
    benchmark.pedantic(running.refresh, rounds=80, warmup_rounds=5, iterations=1)
    table = running.table
    assert len(table.visible_names) == N
    svc = table.status_of("svc-001")
    assert svc is not None and svc.restarts in (0, 1)
    assert running.app.coalescer.delivered >= 80 * N


IDLE_WINDOW = 2.0


@pytest.mark.benchmark(group="ui-idle", timer=time.thread_time)
@pytest.mark.parametrize("n", [16, 500])
def test_idle_dashboard_cpu(benchmark, n: int) -> None:
    """Main-thread CPU of an idle dashboard over a 2 s window: nothing changes but the uptimes
    (real clock, refreshRate 250ms). Divide by the window for the share of one core."""
    specs = [spec(f"svc-{i:03d}", 20000 + i) for i in range(n)]
    sup = ScriptedSupervisor(config_of(specs, refresh_rate=0.25))
    for s in specs:
        sup.set_quietly(s.name, state=ForwardState.RUNNING, running_since=time.time() - 100, pid=1)
    app = make_app(sup, config_path="c.yaml", tz=UTC, handle_signals=False)
    loop = asyncio.new_event_loop()
    requests: asyncio.Queue[asyncio.Future[None] | None] = asyncio.Queue()
    ready: asyncio.Future[None] = loop.create_future()

    async def session() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            while not sup.started:
                await pilot.pause(0.01)
            await asyncio.sleep(1.0)
            ready.set_result(None)
            while (request := await requests.get()) is not None:
                await asyncio.sleep(IDLE_WINDOW)
                request.set_result(None)

    task = loop.create_task(session())
    loop.run_until_complete(ready)

    def window() -> None:
        done = loop.create_future()
        requests.put_nowait(done)
        loop.run_until_complete(done)

    try:
        benchmark.pedantic(window, rounds=3, iterations=1)
    finally:
        requests.put_nowait(None)
        loop.run_until_complete(task)
        loop.close()
    benchmark.extra_info["window_s"] = IDLE_WINDOW
    assert len(app.main_screen.table.visible_names) == n
