"""The built-in gRPC screen (Pilot) against the simulator's gRPC backend through a real kubectl
tunnel: services listed by reflection, a unary call with JSON, a failing status shown; and the
install hint when grpcio is missing."""

from __future__ import annotations

import json

import pytest
from textual.app import App
from textual.widgets import TextArea, Tree

from kportforward.ui.screens import grpc as grpc_screen
from kportforward.ui.screens.grpc import GrpcScreen
from tests.integration.conftest import port_forward, sim_factory  # noqa: F401 - fixtures
from tests.integration.test_grpc_client import grpc_world
from tests.ui.helpers import screen_text, wait_for


class Host(App[None]):
    """A bare app that shows one GrpcScreen."""

    def __init__(self, screen: GrpcScreen) -> None:
        super().__init__()
        self._grpc = screen

    def on_mount(self) -> None:
        self.push_screen(self._grpc)


def _method_node(tree: Tree, name: str):  # type: ignore[no-untyped-def]
    for service in tree.root.children:
        for leaf in service.children:
            if leaf.data is not None and leaf.data.name == name:
                return leaf
    raise AssertionError(f"no method {name} in the tree")


@pytest.mark.timeout(120)
async def test_list_call_and_failing_status(sim_factory, port_forward) -> None:  # noqa: F811
    pytest.importorskip("grpc")
    sim = sim_factory(grpc_world())
    pf = port_forward(sim, "service/rpc", 50051)
    screen = GrpcScreen("rpc", f"127.0.0.1:{pf.local_port}")
    app = Host(screen)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: screen.services, timeout=30, what="services listed")
        text = screen_text(app)
        for word in ("kportforward.sim.v1.Pods", "Hello", "Count", "(server streaming)",
                     "grpc.health.v1.Health", "3 services, 4 methods"):  # fmt: skip
            assert word in text, word

        tree = screen.query_one("#grpc-services", Tree)
        tree.select_node(_method_node(tree, "Hello"))
        request = screen.query_one("#grpc-request", TextArea)
        await wait_for(pilot, lambda: '"name"' in request.text, what="request template")
        request.text = '{"name": "pilot"}'
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.last_result is not None, timeout=30, what="reply")
        assert screen.last_result is not None and screen.last_result.ok
        reply = json.loads(screen.query_one("#grpc-result", TextArea).text)
        assert reply["message"] == "hello pilot"
        assert reply["pod"] in sim.pods("default", {"app": "rpc"})
        assert "reply · OK" in screen_text(app)

        # A failing call shows the status code and details.
        request.text = '{"name": ""}'
        screen.last_result = None
        await pilot.click("#grpc-call")
        await wait_for(pilot, lambda: screen.last_result is not None, timeout=30, what="status")
        shown = screen.query_one("#grpc-result", TextArea).text
        assert shown == "INVALID_ARGUMENT: name must not be empty"
        assert "reply · INVALID_ARGUMENT" in screen_text(app)

        # A body that does not fit the message is refused before sending.
        request.text = '{"nme": 1}'
        await pilot.press("ctrl+r")
        await wait_for(
            pilot,
            lambda: "no field named" in screen.query_one("#grpc-result", TextArea).text,
            what="bad body",
        )

        # A streaming method is listed but not called.
        tree.select_node(_method_node(tree, "Count"))
        await wait_for(pilot, lambda: "upTo" in request.text, what="Count template")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "only unary methods" in screen_text(app), what="refusal")

        # Back to Hello: what was typed there is still there.
        tree.select_node(_method_node(tree, "Hello"))
        await wait_for(pilot, lambda: request.text == '{"nme": 1}', what="Hello body kept")


async def test_unreachable_forward_says_so(sim_factory, port_forward) -> None:  # noqa: F811
    pytest.importorskip("grpc")
    screen = GrpcScreen("gone", "127.0.0.1:1", timeout=3)
    app = Host(screen)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(
            pilot,
            lambda: "cannot reach a gRPC server at 127.0.0.1:1" in screen_text(app),
            timeout=20,
            what="unreachable message",
        )


async def test_without_grpcio_the_screen_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setattr(grpc_screen, "grpc_available", lambda: False)
    screen = GrpcScreen("rpc", "127.0.0.1:50051")
    app = Host(screen)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "needs grpcio and grpcio-reflection" in text
        assert "pip install 'kportforward[grpc]'" in text
        assert screen.client is None
