"""``kportforward start|stop|restart NAME…|--group G|--all``: act on the running instance.

``stop --instance`` stops the instance itself (every forward, then the process). Exit 0 when every
action was accepted, 2 for an unknown forward or group, 3 when no instance runs.
"""

from __future__ import annotations

import sys
from typing import Any

from kportforward.control.client import RemoteError, connect_or_raise
from kportforward.errors import ArgumentError


def main(args: Any) -> int:
    """Send ``start``/``stop``/``restart`` for each named forward or group; print the results."""
    verb = str(args.command)
    names: list[str] = list(getattr(args, "names", None) or [])
    groups: list[str] = list(getattr(args, "group", None) or [])
    everything = bool(getattr(args, "all", False))
    instance = bool(getattr(args, "instance", False))
    if not (names or groups or everything or instance):
        raise ArgumentError(
            f"{verb}: name a forward, --group G or --all", f"e.g. kportforward {verb} api"
        )
    client, info = connect_or_raise(getattr(args, "config", None), timeout=30.0)
    with client:
        if instance:
            client.call("shutdown")
            print(f"stopping the instance (pid {info.pid}); every kubectl stops with it")
            return 0
        if everything:
            names = [f["name"] for f in client.call("snapshot")["forwards"]]
        try:
            for group in groups:
                if verb == "restart":  # no group restart op: restart each member
                    forwards = client.call("snapshot")["forwards"]
                    members = [f["name"] for f in forwards if f["spec"].get("group") == group]
                    if not members:
                        raise RemoteError("unknown_forward", f"no group '{group}'")
                    names += members
                    continue
                members = client.call(f"{verb}_group", group=group)
                print(f"{verb} group {group}: {', '.join(members)}")
            for name in names:
                status = client.call(verb, name=name)
                print(f"{name}: {status['state']} — {status.get('reason', '')}")
        except RemoteError as exc:
            if exc.code == "unknown_forward":
                raise ArgumentError(exc.message, "see `kportforward status`") from None
            print(f"kportforward: error: {exc.message}", file=sys.stderr)
            return 1
    return 0
