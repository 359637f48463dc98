"""The reflection-driven gRPC client against the simulator's real gRPC backend, through the real
kubectl tunnel: list services, describe a request, call a unary method, show a failing status."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

pytest.importorskip("grpc", reason="the gRPC client needs the grpc extra")
pytest.importorskip("grpc_reflection", reason="the gRPC client needs the grpc extra")

from kportforward.grpcclient import (
    CallResult,
    GrpcClient,
    GrpcClientError,
    RequestBodyError,
)
from kportforward.sim import Simulator, World

HELLO = "/kportforward.sim.v1.Pods/Hello"
COUNT = "/kportforward.sim.v1.Pods/Count"


def grpc_world() -> World:
    """A gRPC deployment behind a service (two replicas), and a plain HTTP one."""
    w = World(seed=3)
    w.add_app("rpc", port=50051, target_port=50051, port_name="grpc", backend="grpc", replicas=2)
    w.add_app("web", port=80, target_port=8080)
    return w


@pytest.fixture
def rpc(sim_factory, port_forward):
    """(simulator, kubectl port-forward to service/rpc:50051)."""
    sim: Simulator = sim_factory(grpc_world())
    return sim, port_forward(sim, "service/rpc", 50051)


def test_lists_services_and_methods_through_the_tunnel(rpc) -> None:
    _sim, pf = rpc
    with GrpcClient(f"127.0.0.1:{pf.local_port}") as client:
        services = {s.name: s for s in client.list_services()}
    assert set(services) == {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "kportforward.sim.v1.Pods",
    }
    pods = services["kportforward.sim.v1.Pods"]
    assert [(m.name, m.kind, m.input_type) for m in pods.methods] == [
        ("Hello", "unary", "kportforward.sim.v1.HelloRequest"),
        ("Count", "server streaming", "kportforward.sim.v1.CountRequest"),
    ]
    assert all(not s.error for s in services.values())


def test_unary_call_with_json_reaches_the_pod(rpc) -> None:
    sim, pf = rpc
    with GrpcClient(f"127.0.0.1:{pf.local_port}") as client:
        assert json.loads(client.request_template(HELLO)) == {"name": ""}
        result = client.call(HELLO, '{"name": "kportforward"}')
    assert result.ok and result.code == "OK", result
    reply = json.loads(result.reply or "")
    assert reply["message"] == "hello kportforward"
    # The reply names the pod kubectl chose: one of the service's pods in the simulator.
    assert reply["pod"] in sim.pods("default", {"app": "rpc"})
    assert reply["port"] == 50051


def test_failing_call_shows_the_status(rpc) -> None:
    _sim, pf = rpc
    with GrpcClient(f"127.0.0.1:{pf.local_port}") as client:
        result = client.call(HELLO, "{}")
        health = client.call("/grpc.health.v1.Health/Check", '{"service": "nope"}')
    assert result == CallResult(
        ok=False,
        code="INVALID_ARGUMENT",
        details="name must not be empty",
        elapsed=result.elapsed,
    )
    assert health.code == "NOT_FOUND" and "nope" in health.details


def test_bad_body_and_streaming_methods_are_refused_before_sending(rpc) -> None:
    _sim, pf = rpc
    with GrpcClient(f"127.0.0.1:{pf.local_port}") as client:
        with pytest.raises(RequestBodyError, match='no field named "nme"') as bad:
            client.call(HELLO, '{"nme": "x"}')
        assert "\n" not in str(bad.value)
        with pytest.raises(RequestBodyError):
            client.call(HELLO, "{not json")
        with pytest.raises(GrpcClientError, match="server streaming method"):
            client.call(COUNT, "{}")
        with pytest.raises(GrpcClientError, match=r"no method /x\.Y/Z"):
            client.call("/x.Y/Z", "{}")


def test_async_wrappers(rpc) -> None:
    _sim, pf = rpc

    async def main() -> tuple[int, CallResult]:
        with GrpcClient(f"127.0.0.1:{pf.local_port}") as client:
            services = await client.alist_services()
            return len(services), await client.acall(HELLO, '{"name": "a"}')

    count, result = asyncio.run(main())
    assert count == 3 and result.ok


def test_a_server_without_grpc_says_so(sim_factory, port_forward) -> None:
    # An HTTP/1.1 server behind the tunnel: the HTTP/2 preface fails; reported, not hung.
    sim = sim_factory(grpc_world())
    pf = port_forward(sim, "service/web", 80)
    with (
        GrpcClient(f"127.0.0.1:{pf.local_port}", timeout=5) as client,
        pytest.raises(GrpcClientError, match=f"127.0.0.1:{pf.local_port}"),
    ):
        client.list_services()


def test_nothing_listening_is_unavailable_not_a_hang() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with (
            GrpcClient(f"127.0.0.1:{port}", timeout=3) as client,
            pytest.raises(GrpcClientError, match="cannot reach a gRPC server"),
        ):
            client.list_services()


@pytest.mark.timeout(30)
def test_a_silent_server_hits_the_deadline() -> None:
    # Listening but never answering: without a deadline on the reflection stream this would hang.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        with (
            GrpcClient(f"127.0.0.1:{port}", timeout=2) as client,
            pytest.raises(GrpcClientError, match="DEADLINE_EXCEEDED"),
        ):
            client.list_services()
