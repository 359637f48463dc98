"""``kportforward status [--json]``: the running instance's forwards; exit 3 when none runs.

Imports neither textual nor kubernetes nor asyncio: one blocking round trip on the control socket.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from kportforward.control.client import NotRunningError, connect_or_raise
from kportforward.control.paths import InstanceInfo
from kportforward.core.durations import format_duration


def forward_row(f: dict[str, Any], now: float) -> dict[str, Any]:
    """The fields ``status --json`` prints for one forward (from the protocol's status)."""
    since = f.get("runningSince")
    return {
        "name": f["name"],
        "state": f["state"],
        "localPort": f.get("localPort") or f["spec"]["localPort"],
        "url": f.get("url"),
        "pod": f.get("pod"),
        "group": f["spec"].get("group"),
        "uptime": round(now - since, 3) if since else None,
        "restarts": f.get("restarts", 0),
        "reason": f.get("reason", ""),
        "pid": f.get("pid"),
        # the front door's counters (connections, bytes, rates); null without a door
        "traffic": f.get("traffic"),
    }


def instance_json(info: InstanceInfo) -> dict[str, Any]:
    """Who runs: pid, start time, mode and config files."""
    return {
        "pid": info.pid,
        "started": info.started,
        "mode": info.mode,
        "config": info.config,
        "version": info.version,
    }


def render_table(rows: list[dict[str, Any]]) -> list[str]:
    """Aligned text lines: NAME STATE PORT POD UPTIME RESTARTS REASON."""
    head = ("NAME", "STATE", "PORT", "POD", "UPTIME", "RESTARTS", "REASON")
    cells = [head] + [
        (
            r["name"],
            r["state"],
            str(r["localPort"]),
            r["pod"] or "-",
            format_duration(r["uptime"]) if r["uptime"] is not None else "-",
            str(r["restarts"]),
            r["reason"],
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head) - 1)]
    return [
        "  ".join(c[i].ljust(widths[i]) for i in range(len(head) - 1)) + "  " + c[-1] for c in cells
    ]


def main(args: Any) -> int:
    """Print the running instance's forwards; 0, or 3 when no instance runs."""
    as_json = bool(getattr(args, "json", False))
    try:
        client, info = connect_or_raise(getattr(args, "config", None), timeout=5.0)
    except NotRunningError:
        if as_json:
            print(json.dumps({"running": False}))
        raise
    with client:
        snap = client.call("snapshot")
    now = float(snap.get("now") or time.time())
    rows = [forward_row(f, now) for f in snap["forwards"]]
    if as_json:
        doc = {"running": True, "instance": instance_json(info), "forwards": rows,
               "clusters": snap.get("clusters", [])}  # fmt: skip
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return 0
    running = sum(1 for r in rows if r["state"] == "Running")
    print(
        f"kportforward pid {info.pid} ({info.mode}) since {info.since}: "
        f"{running}/{len(rows)} running"
    )
    for line in render_table(rows):
        print(line)
    return 0
