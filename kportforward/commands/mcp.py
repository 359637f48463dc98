"""``kportforward mcp``: an MCP server on stdio for the running instance (``kportforward[mcp]``).

Tools: ``list_forwards``, ``status``, ``wait``, ``start``, ``stop``, ``restart``, ``logs``. Each
talks to the instance running on this config through the control socket (a short blocking
connection in a worker thread). ``--start`` starts an instance (headless, detached) if none runs;
the ``wait`` tool can do the same with ``start=true``. Nothing but the MCP protocol is written on
stdout; tool errors (no instance, an unknown forward) come back as MCP tool errors with the
one-line message a person would see.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from kportforward.errors import BadInputError

INSTRUCTIONS = (
    "kportforward keeps kubectl port-forwards alive. Use list_forwards or status to see them, "
    "wait before talking to a forwarded service (it returns once the tunnel is verified: "
    "a probe crossed it), start/stop/restart to act, logs for kubectl's own lines."
)


def _sdk() -> tuple[Any, type[Exception]]:
    """The SDK's server class and the tool error whose message reaches the client."""
    try:
        from mcp.server.mcpserver import MCPServer  # mcp >= 2
        from mcp.server.mcpserver.exceptions import ToolError

        return MCPServer, ToolError
    except ImportError:
        pass
    try:
        from mcp.server.fastmcp import FastMCP  # type: ignore[attr-defined, unused-ignore]
        from mcp.server.fastmcp.exceptions import ToolError as ToolError1

        return FastMCP, ToolError1
    except ImportError:
        raise BadInputError(
            "the MCP server needs the mcp package", "pip install 'kportforward[mcp]'"
        ) from None


def build_server(config_arg: str | None, common: dict[str, Any] | None = None) -> Any:
    """The MCP server with kportforward's tools, for the instance on ``config_arg``."""
    from kportforward.commands import status as status_cmd
    from kportforward.commands import wait as wait_cmd
    from kportforward.control.client import RemoteError, connect_or_raise
    from kportforward.errors import KPortForwardError

    common = dict(common or {})
    server_class, tool_error = _sdk()
    server = server_class("kportforward", instructions=INSTRUCTIONS)

    def call(op: str, **kw: Any) -> Any:
        try:
            client, info = connect_or_raise(config_arg, timeout=30.0)
            with client:
                return client.call(op, **kw), info
        except RemoteError as exc:
            raise tool_error(exc.message) from None
        except KPortForwardError as exc:
            raise tool_error(str(exc)) from None

    async def run(op: str, **kw: Any) -> Any:
        return await asyncio.to_thread(call, op, **kw)

    @server.tool()
    async def list_forwards() -> dict[str, Any]:
        """Every forward of the running kportforward: name, state, local port, URL, group."""
        snap, _ = await run("snapshot")
        rows = [status_cmd.forward_row(f, snap["now"]) for f in snap["forwards"]]
        return {"forwards": [{k: r[k] for k in ("name", "state", "localPort", "url", "group")}
                             for r in rows]}  # fmt: skip

    @server.tool()
    async def status(name: str | None = None) -> dict[str, Any]:
        """The instance (pid, mode, config) and each forward's state, port, pod, uptime,
        restarts and reason; only ``name`` when given."""
        snap, info = await run("snapshot")
        rows = [status_cmd.forward_row(f, snap["now"]) for f in snap["forwards"]]
        if name is not None:
            rows = [r for r in rows if r["name"] == name]
            if not rows:
                raise tool_error(f"no forward '{name}'")
        return {"instance": status_cmd.instance_json(info), "forwards": rows}

    @server.tool()
    async def wait(
        names: list[str] | None = None,
        group: str | None = None,
        timeout: float = 60.0,
        start: bool = False,
    ) -> dict[str, Any]:
        """Wait until the named forwards (default: all, or the group) are verified — Running,
        a probe crossed the tunnel. ``start``: start kportforward headless if none runs.
        Returns verified (bool), and each forward still waiting with its state and reason."""
        ns = argparse.Namespace(
            names=names or [],
            group=[group] if group else [],
            config=config_arg,
            start=start,
            **common,
        )
        try:
            targets, waiting, current, took = await asyncio.to_thread(
                wait_cmd.wait_verified, ns, max(0.0, min(timeout, 3600.0))
            )
        except KPortForwardError as exc:
            raise tool_error(str(exc)) from None
        return {
            "verified": not waiting,
            "forwards": targets,
            "waiting": [
                {"name": n, "state": current[n]["state"], "reason": current[n].get("reason", "")}
                for n in waiting
            ],
            "seconds": round(took, 3),
        }

    async def act(verb: str, name: str) -> dict[str, Any]:
        result, _ = await run(verb, name=name)
        return {"name": name, "state": result["state"], "reason": result.get("reason", "")}

    @server.tool()
    async def start(name: str) -> dict[str, Any]:
        """Start a stopped forward, or retry a failed one now."""
        return await act("start", name)

    @server.tool()
    async def stop(name: str) -> dict[str, Any]:
        """Stop one forward (its kubectl exits); it stays Stopped until started."""
        return await act("stop", name)

    @server.tool()
    async def restart(name: str) -> dict[str, Any]:
        """Restart one forward now (a new kubectl)."""
        return await act("restart", name)

    @server.tool()
    async def logs(name: str, lines: int = 100) -> dict[str, Any]:
        """The last ``lines`` lines kubectl printed for forward ``name``."""
        result, _ = await run("logs", name=name)
        return {"name": name, "lines": list(result)[-max(1, min(lines, 1000)) :]}

    @server.tool()
    async def http_requests(name: str, limit: int = 50) -> dict[str, Any]:
        """The last ``limit`` HTTP requests through a web/rest forward's front door, oldest
        first: method, path, status, durationMs, bytesIn, bytesOut, note ("not HTTP", "no
        response"); no bodies or headers are ever kept."""
        result, _ = await run("requests", name=name)
        return {"name": name, "requests": list(result)[-max(1, min(limit, 500)) :]}

    return server


def main(args: Any) -> int:
    """Serve MCP on stdio until the client closes it."""
    common = {k: getattr(args, k, None) for k in ("kubeconfig", "kubectl", "log_file")}
    server = build_server(getattr(args, "config", None), common)
    if getattr(args, "start", False):
        from kportforward.commands import wait as wait_cmd
        from kportforward.control.client import connect

        found = connect(getattr(args, "config", None))
        if found is None:
            wait_cmd.start_detached(args)
        else:
            found[0].close()
    server.run()
    return 0
