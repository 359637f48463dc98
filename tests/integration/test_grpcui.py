"""grpcui supervision with a stand-in ``grpcui`` on PATH (the real one is a Go binary, not
installable here): argv, readiness, restart with the forward, backoff, no reflection, the stop
sequence, no orphan after SIGKILL of the manager, and the one notice when grpcui is missing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from kportforward.supervisor.grpcui import (
    INSTALL_HINT,
    GrpcUIState,
    GrpcUIStatus,
    GrpcUISupervisor,
)

STANDIN = textwrap.dedent(
    """\
    #!{python}
    # A stand-in for grpcui: prints what grpcui prints, per STANDIN_MODE; logs each launch.
    import json, os, signal, socket, sys, time
    args = sys.argv[1:]
    with open(os.environ["STANDIN_LOG"], "a") as f:
        f.write(json.dumps({{"pid": os.getpid(), "args": args}}) + "\\n")
    mode = os.environ.get("STANDIN_MODE", "ok")
    if mode == "noreflection":
        print("Failed to compute set of methods to expose: "
              "server does not support the reflection API", flush=True)
        sys.exit(1)
    if mode == "ignore-sigint":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    port = int(args[args.index("-port") + 1])
    if mode != "silent":
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(8)
        print(f"gRPC Web UI available at http://127.0.0.1:{{port}}/", flush=True)
    if mode == "crash":
        time.sleep(0.2)
        print("Failed to dial target host: connection refused", flush=True)
        sys.exit(1)
    while True:
        if mode == "silent":
            time.sleep(1)
            continue
        conn, _ = s.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 8\\r\\n"
                     b"Connection: close\\r\\n\\r\\nstand-in")
        conn.close()
    """
)


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``grpcui`` stand-in first on PATH; returns its launch log (one JSON line per launch)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "grpcui"
    exe.write_text(STANDIN.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "launches.jsonl"
    log.touch()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_LOG", str(log))
    return log


def launches(log: Path) -> list[dict]:
    """Every launch of the stand-in so far."""
    return [json.loads(line) for line in log.read_text().splitlines()]


async def until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for a condition (a deadline so a broken supervisor fails instead of hanging)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_starts_on_a_port_from_9200_and_restarts_with_the_forward(standin: Path) -> None:
    changes: list[GrpcUIStatus] = []
    sup = GrpcUISupervisor(on_change=changes.append)
    try:
        sup.ensure("orders", 31000, generation=111)
        await until(lambda: sup.url("orders") is not None)
        first = sup.status("orders")
        assert first is not None and first.state is GrpcUIState.RUNNING
        assert first.port is not None and 9200 <= first.port < 9300
        assert first.url == f"http://127.0.0.1:{first.port}/"
        (launch,) = launches(standin)
        assert launch["args"] == ["-plaintext", "-bind", "127.0.0.1", "-port", str(first.port),
                                  "127.0.0.1:31000"]  # fmt: skip
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(first.url, timeout=10).read())
        assert page == b"stand-in"
        assert [c.state for c in changes] == [GrpcUIState.STARTING, GrpcUIState.RUNNING]

        sup.ensure("orders", 31000, generation=111)  # the same forward run: nothing happens
        await asyncio.sleep(0)
        assert len(launches(standin)) == 1

        # The forward restarted (kubectl's pid changed): grpcui restarts, on the same URL.
        sup.ensure("orders", 31000, generation=222)
        await until(lambda: len(launches(standin)) == 2 and sup.url("orders") is not None)
        second = sup.status("orders")
        assert second is not None and second.url == first.url and second.pid != first.pid
        assert second.restarts == 1
        assert first.pid is not None and gone(first.pid)

        await sup.stop("orders")
        assert second.pid is not None and gone(second.pid)
        assert sup.status("orders") is None and changes[-1].state is GrpcUIState.STOPPED
    finally:
        await sup.close()


async def test_two_forwards_get_two_ports(standin: Path) -> None:
    sup = GrpcUISupervisor()
    try:
        sup.ensure("a", 31001)
        sup.ensure("b", 31002)
        await until(lambda: sup.url("a") is not None and sup.url("b") is not None)
        assert sup.url("a") != sup.url("b")
        targets = sorted(launch["args"][-1] for launch in launches(standin))
        assert targets == ["127.0.0.1:31001", "127.0.0.1:31002"]
    finally:
        await sup.close()
    assert all(gone(launch["pid"]) for launch in launches(standin))


async def test_a_crashing_grpcui_is_restarted_with_backoff(
    standin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "crash")
    sup = GrpcUISupervisor(backoff=(0.05, 0.2))
    try:
        sup.ensure("flaky", 31003)
        await until(lambda: len(launches(standin)) >= 3)
        status = sup.status("flaky")
        assert status is not None and status.restarts >= 2
        assert "Failed to dial target host" in (status.last_error or "")
    finally:
        await sup.close()
    assert all(gone(launch["pid"]) for launch in launches(standin))


async def test_no_reflection_is_not_retried(standin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_MODE", "noreflection")
    sup = GrpcUISupervisor(backoff=(0.01, 0.01))
    try:
        sup.ensure("legacy", 31004)
        await until(lambda: (s := sup.status("legacy")) is not None
                    and s.state is GrpcUIState.UNSUPPORTED)  # fmt: skip
        task = sup._children["legacy"].task
        assert task is not None
        await asyncio.wait_for(task, 10)  # the loop ended: no retry is pending
        assert len(launches(standin)) == 1
        status = sup.status("legacy")
        assert status is not None and "reflection API" in (status.last_error or "")
        assert sup.url("legacy") is None
        # More snapshots of the same forward run change nothing; a restarted forward retries.
        sup.ensure("legacy", 31004)
        await asyncio.sleep(0.1)
        assert len(launches(standin)) == 1
        sup.ensure("legacy", 31004, generation="restarted")
        await until(lambda: len(launches(standin)) == 2)
    finally:
        await sup.close()


async def test_a_silent_grpcui_is_stopped_and_retried(
    standin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "silent")
    sup = GrpcUISupervisor(ready_timeout=0.5, backoff=(0.05, 0.05))
    try:
        sup.ensure("mute", 31005)
        await until(lambda: len(launches(standin)) >= 2)
        first = launches(standin)[0]["pid"]
        await until(lambda: gone(first))
        status = sup.status("mute")
        assert status is not None and sup.url("mute") is None
    finally:
        await sup.close()


async def test_stop_escalates_when_sigint_is_ignored(
    standin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "ignore-sigint")
    sup = GrpcUISupervisor()
    sup.ensure("stubborn", 31006)
    await until(lambda: sup.url("stubborn") is not None)
    status = sup.status("stubborn")
    assert status is not None and status.pid is not None
    await sup.stop("stubborn")
    assert gone(status.pid)


async def test_stop_then_start_in_one_breath_keeps_the_url(standin: Path) -> None:
    # A coalesced "stopped, then running again": the late stop must not kill the new grpcui.
    sup = GrpcUISupervisor()
    try:
        sup.ensure("quick", 31010, generation=1)
        await until(lambda: sup.url("quick") is not None)
        first = sup.status("quick")
        assert first is not None
        stopping = sup.stop_soon("quick")
        assert stopping is not None and sup.status("quick") is None and sup.url("quick") is None
        sup.ensure("quick", 31010, generation=2)
        await until(lambda: sup.url("quick") is not None)
        again = sup.status("quick")
        assert again is not None and again.url == first.url and again.pid != first.pid
        assert first.pid is not None and gone(first.pid)
        await asyncio.sleep(0.2)
        assert sup.url("quick") == first.url  # still up: nothing stopped it afterwards
    finally:
        await sup.close()
    assert all(gone(launch["pid"]) for launch in launches(standin))


async def test_missing_grpcui_gives_one_notice(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    notices: list[str] = []
    sup = GrpcUISupervisor(on_notice=notices.append)
    assert not sup.available()
    sup.ensure("a", 31007)
    sup.ensure("b", 31008)
    sup.ensure("a", 31007, generation=2)
    assert notices == [f"grpcui not found: {INSTALL_HINT}"]
    assert sup.status("a") is None and sup.url("a") is None
    await sup.close()


MANAGER = textwrap.dedent(
    """
    import asyncio, sys
    from kportforward.supervisor.grpcui import GrpcUISupervisor

    async def main():
        sup = GrpcUISupervisor()
        sup.ensure("orphan-check", 31009)
        while sup.status("orphan-check") is None or sup.status("orphan-check").pid is None \\
                or sup.url("orphan-check") is None:
            await asyncio.sleep(0.02)
        print(sup.status("orphan-check").pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_no_grpcui_outlives_a_killed_manager(standin: Path) -> None:
    manager = subprocess.Popen(
        [sys.executable, "-c", MANAGER], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert manager.stdout is not None
        child = int(manager.stdout.readline())
        assert not gone(child)
        os.kill(manager.pid, signal.SIGKILL)
        manager.wait(10)
        deadline = time.monotonic() + 20
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(child), "grpcui outlived its manager"
    finally:
        if manager.poll() is None:
            manager.kill()
            manager.wait(10)
