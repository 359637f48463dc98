"""``kportforward mcp`` driven by the MCP SDK's own stdio client against a real instance.

Skipped only when the ``mcp`` extra is not installed (CI installs it with the test extra).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from typing import Any

import pytest
import yaml

from kportforward.sim import generated_world
from tests.conftest import free_ports
from tests.control_helpers import runtime_dir  # noqa: F401 - autouse fixture
from tests.integration.test_control_cli import start_run, stop_run, write_config

pytest.importorskip("mcp")
pytestmark = pytest.mark.integration

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402


def _result(res: Any) -> tuple[bool, Any]:
    error = getattr(res, "is_error", None)
    if error is None:  # mcp 1.x spelling
        error = res.isError
    structured = getattr(res, "structured_content", None) or getattr(res, "structuredContent", None)
    return bool(error), structured if structured is not None else [c.text for c in res.content]


async def test_mcp_tools_over_stdio(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(2))
    config = tmp_path / "kpf.yaml"
    ports = write_config(config, 2, bad=True)
    # And a web forward to the HTTP backend, for the request log.
    doc = yaml.safe_load(config.read_text())
    (web_port,) = free_ports(1)
    doc["portForwards"]["web"] = {"target": "service/svc-000", "targetPort": 80, "type": "web",
                                  "localPort": web_port, "namespace": "default"}  # fmt: skip
    config.write_text(yaml.safe_dump(doc))
    run = start_run(config, sim)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "kportforward", "--config", str(config), "mcp"],
        env=dict(os.environ),  # the hermetic HOME/XDG dirs, so it finds this instance
    )
    try:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name for t in (await session.list_tools()).tools}
            assert tools == {"list_forwards", "status", "wait", "start", "stop", "restart",
                             "logs", "http_requests"}  # fmt: skip

            error, waited = _result(await session.call_tool("wait", {"names": ["f0", "f1", "web"],
                                                                     "timeout": 60}))  # fmt: skip
            assert not error and waited["verified"] is True, waited
            url = f"http://127.0.0.1:{web_port}/orders?id=7"
            with urllib.request.urlopen(url, timeout=10) as reply:
                assert reply.status == 200
                reply.read()
            deadline = time.monotonic() + 10
            seen: list[dict[str, Any]] = []
            while not seen and time.monotonic() < deadline:
                error, got = _result(await session.call_tool("http_requests", {"name": "web"}))
                assert not error
                seen = [r for r in got["requests"] if r["path"] == "/orders?id=7"]
            assert seen and seen[0]["method"] == "GET" and seen[0]["status"] == 200, got
            assert seen[0]["bytesOut"] > 0 and seen[0]["durationMs"] >= 0
            error, listed = _result(await session.call_tool("list_forwards", {}))
            assert not error
            rows = {f["name"]: f for f in listed["forwards"]}
            assert rows["f0"]["localPort"] == ports[0] and rows["f0"]["state"] == "Running"
            error, status = _result(await session.call_tool("status", {"name": "f1"}))
            assert not error and status["instance"]["pid"] == run.proc.pid
            assert [f["name"] for f in status["forwards"]] == ["f1"]
            error, never = _result(await session.call_tool("wait", {"names": ["bad"],
                                                                    "timeout": 2}))  # fmt: skip
            assert not error and never["verified"] is False
            assert never["waiting"][0]["name"] == "bad" and never["waiting"][0]["reason"]
            error, restarted = _result(await session.call_tool("restart", {"name": "f0"}))
            assert not error and restarted["name"] == "f0"
            error, stopped = _result(await session.call_tool("stop", {"name": "f1"}))
            assert not error and stopped["state"] == "Stopped"
            error, _started = _result(await session.call_tool("start", {"name": "f1"}))
            assert not error
            error, logs = _result(await session.call_tool("logs", {"name": "f0", "lines": 5}))
            assert not error and any("Forwarding from" in line for line in logs["lines"])
            error, unknown = _result(await session.call_tool("stop", {"name": "nope"}))
            assert error and "nope" in " ".join(unknown)
    finally:
        stop_run(run)


async def test_mcp_says_when_no_instance_runs(tmp_path):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "kportforward", "--config", str(tmp_path / "none.yaml"), "mcp"],
        env=dict(os.environ),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        error, text = _result(await session.call_tool("list_forwards", {}))
        assert error and "no kportforward is running" in " ".join(text)
