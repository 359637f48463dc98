"""The simulator's ``openapi`` and ``grpc`` backends: served through the real kubectl tunnel, and
the simulator still works (minus the grpc backend, with a hint) when grpcio is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest

from kportforward.sim import World
from kportforward.sim.backends import GRPC_MISSING, Backend


def api_world() -> World:
    """One REST service whose pod serves the OpenAPI backend."""
    w = World(seed=5)
    w.add_app("api", port=80, target_port=8080, backend="openapi")
    return w


def _get(url: str, data: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_openapi_backend_through_the_tunnel(sim_factory, port_forward) -> None:
    sim = sim_factory(api_world())
    pf = port_forward(sim, "service/api", 80)
    base = f"http://127.0.0.1:{pf.local_port}"
    (pod,) = sim.pods("default", {"app": "api"})

    status, spec = _get(f"{base}/api/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.0")
    assert set(spec["paths"]) == {"/whoami", "/echo", "/status/{code}"}
    assert spec["servers"] == [{"url": "/api"}]

    assert _get(f"{base}/api/whoami") == (
        200,
        {"pod": pod, "namespace": "default", "port": 8080},
    )
    status, echoed = _get(f"{base}/api/echo", b'{"a": [1, 2]}')
    assert status == 200 and echoed["echo"] == {"a": [1, 2]} and echoed["pod"] == pod
    assert _get(f"{base}/api/echo", b"{nope")[0] == 400
    assert _get(f"{base}/api/status/418")[0] == 418
    assert _get(f"{base}/api/nothing-here")[0] == 404


def test_grpc_backend_serves_health(sim_factory, port_forward) -> None:
    grpc = pytest.importorskip("grpc")
    from kportforward.sim.grpcsim import HealthCheckRequest, HealthCheckResponse

    w = World(seed=6)
    w.add_app("rpc", port=9000, target_port=9000, port_name="grpc", backend="grpc")
    sim = sim_factory(w)
    pf = port_forward(sim, "service/rpc", 9000)
    with grpc.insecure_channel(f"127.0.0.1:{pf.local_port}") as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString,
        )
        assert check(HealthCheckRequest(), timeout=10).status == 1  # SERVING


def test_simulator_without_grpcio(tmp_path) -> None:
    # grpc made unimportable: the simulator still imports and serves the openapi backend, and a
    # grpc backend fails with the install hint instead of an ImportError traceback.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["grpc"] = None  # import grpc now raises ImportError
        import json, urllib.request
        from kportforward.sim import Simulator, World
        from kportforward.sim.backends import Backend
        try:
            Backend("grpc", "default", "p", 1)
        except ValueError as exc:
            print("grpc:", exc)
        w = World(seed=1)
        w.add_app("api", port=80, target_port=8080, backend="openapi")
        sim = Simulator(w).start_in_thread()
        try:
            (pod,) = sim.pods("default", {"app": "api"})
            port = sim.backend_port("default", pod, 8080)
            url = f"http://127.0.0.1:{port}/api/whoami"
            print("whoami:", json.loads(urllib.request.urlopen(url, timeout=10).read())["pod"])
        finally:
            sim.stop_in_thread()
        print("grpc loaded:", any(m.startswith("grpc") and sys.modules[m] for m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert f"grpc: {GRPC_MISSING}" in out
    assert "whoami: api-" in out
    assert "grpc loaded: False" in out


def test_unknown_backend_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="openapi"):
        Backend("soap", "default", "p", 1)
