"""``kportforward wait [NAME…|--all|--group G] [--timeout D] [--start]``: block until verified.

A forward is *verified* when it is Running: in this engine a forward becomes Running only after a
probe crossed its tunnel to a listening socket in the pod, so "Running" already means "a probe
passed since kubectl became ready". Exit 0 as soon as every named forward is Running; 1 at the
timeout, naming each forward not verified with its state and reason; 3 when no instance runs
(``--start`` starts one headless and detached instead). Imports neither textual, kubernetes nor
asyncio: it subscribes to the instance's events and returns on the event that completes the set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from kportforward.control.client import (
    Client,
    InstanceGone,
    NotRunningError,
    RemoteError,
    connect,
    not_running_message,
)
from kportforward.control.paths import InstanceInfo, paths_for
from kportforward.core.durations import parse_duration
from kportforward.errors import ArgumentError, KPortForwardError

VERIFIED = "Running"


def _timeout(args: Any) -> float:
    try:
        return parse_duration(getattr(args, "timeout", None) or "60s")
    except ValueError as exc:
        raise ArgumentError(f"--timeout: {exc}", "e.g. --timeout 30s") from None


def start_detached(args: Any) -> subprocess.Popen[bytes]:
    """``kportforward run`` with the same common flags, in its own session, output to a log."""
    argv = [sys.executable, "-m", "kportforward"]
    for flag in ("config", "kubeconfig", "kubectl", "log_file"):
        value = getattr(args, flag, None)
        if value:
            argv += [f"--{flag.replace('_', '-')}", os.path.abspath(os.path.expanduser(value))]
    argv.append("run")
    log_path = paths_for(getattr(args, "config", None)).log
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True
        )
    finally:
        os.close(fd)


def _connect_until(args: Any, deadline: float, start: bool) -> tuple[Client, InstanceInfo]:
    """Connect to the instance, starting one first if asked; NotRunningError otherwise."""
    config_arg = getattr(args, "config", None)
    found = connect(config_arg, grace=max(0.0, deadline - time.monotonic()))
    if found is not None:
        return found
    child = start_detached(args) if start else None
    from kportforward.control.paths import read_info

    while time.monotonic() < deadline:
        # A lock held but no socket yet: the instance is starting; keep trying.
        if child is None and read_info(paths_for(config_arg, create=False).lock) is None:
            break
        found = connect(config_arg, grace=0.0)
        if found is not None:
            return found
        if child is not None and child.poll() is not None:
            log = paths_for(config_arg).log
            last = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise KPortForwardError(
                f"the instance started by --start exited ({child.returncode})"
                + (f": {last[0]}" if last else ""),
                f"its output is in {log}",
            )
        time.sleep(0.05)
    message, hint = not_running_message(config_arg)
    if "others" not in message:
        hint = "start one with `kportforward run`, or pass --start"
    raise NotRunningError(message, hint)


def _targets(args: Any, forwards: list[dict[str, Any]]) -> list[str]:
    names = [f["name"] for f in forwards]
    wanted: list[str] = list(getattr(args, "names", None) or [])
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ArgumentError(
            f"no forward named {', '.join(unknown)}", f"known: {', '.join(names) or 'none'}"
        )
    for group in getattr(args, "group", None) or []:
        members = [f["name"] for f in forwards if f["spec"].get("group") == group]
        if not members:
            raise ArgumentError(f"no forward in group {group!r}", "see `kportforward status`")
        wanted += members
    if not wanted:
        wanted = names  # --all, or nothing named
    return sorted(set(wanted))


def wait_verified(
    args: Any, timeout: float
) -> tuple[list[str], list[str], dict[str, dict[str, Any]], float]:
    """Wait until every target is Running or ``timeout`` passes.

    Returns (targets, still waiting, each forward's last status as protocol JSON, seconds taken).
    Raises NotRunningError when no instance runs (or it stops meanwhile), ArgumentError for an
    unknown name or group. ``args`` carries names, group, config and start as ``wait`` parses them.
    """
    started = time.monotonic()
    deadline = started + timeout
    client, _info = _connect_until(args, deadline, bool(getattr(args, "start", False)))
    with client:
        try:
            snap = client.call("subscribe")
        except RemoteError as exc:
            raise KPortForwardError(f"the instance refused: {exc.message}") from None
        current = {f["name"]: f for f in snap["forwards"]}
        targets = _targets(args, snap["forwards"])
        try:
            while True:
                waiting = [n for n in targets if current[n]["state"] != VERIFIED]
                if not waiting:
                    break
                event = client.next_event(deadline)
                if event is None:
                    break
                if event.get("event") == "forward" and event.get("forward") in current:
                    current[event["forward"]] = event["status"]
        except InstanceGone:
            raise NotRunningError(
                "the instance stopped while waiting", "see its output or `kportforward status`"
            ) from None
    return targets, waiting, current, time.monotonic() - started


def main(args: Any) -> int:
    """Wait; 0 verified, 1 timeout, 3 no instance."""
    timeout = _timeout(args)
    as_json = bool(getattr(args, "json", False))
    targets, waiting, current, took = wait_verified(args, timeout)
    if waiting:
        return _timed_out(targets, waiting, current, timeout, as_json)
    return _done(targets, current, took, as_json)


def _done(targets: list[str], current: dict[str, Any], took: float, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"verified": targets, "waiting": [], "seconds": round(took, 3)}))
    else:
        ports = ", ".join(f"{n} :{current[n].get('localPort')}" for n in targets)
        print(f"verified: {ports}" if targets else "no forwards to wait for")
    return 0


def _timed_out(
    targets: list[str], waiting: list[str], current: dict[str, Any], timeout: float, as_json: bool
) -> int:
    if as_json:
        rows = [{"name": n, "state": current[n]["state"], "reason": current[n].get("reason", "")}
                for n in waiting]  # fmt: skip
        verified = [n for n in targets if n not in waiting]
        print(json.dumps({"verified": verified, "waiting": rows, "timeout": timeout}))
        return 1
    print(f"kportforward: wait: timed out after {timeout:g}s; not verified:", file=sys.stderr)
    width = max(len(n) for n in waiting)
    for n in waiting:
        f = current[n]
        print(f"  {n:<{width}}  {f['state']:<12}  {f.get('reason', '')}", file=sys.stderr)
    return 1
