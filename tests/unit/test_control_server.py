"""The control server over a real Unix socket, fed by a scripted supervisor.

Bad input gets error replies and never ends the server; 20 subscribers each get every event in
order; a subscriber that stops reading is dropped; RemoteSupervisor mirrors the instance.
(The same against the real ``run`` + kubectl + simulator: tests/integration/test_control_cli.py.)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kportforward.control import codec
from kportforward.control import server as server_mod
from kportforward.control.fanout import SharedSupervisor
from kportforward.control.paths import InstanceInfo
from kportforward.control.remote import RemoteSupervisor
from kportforward.control.server import ControlServer
from kportforward.core.models import Config, ForwardSpec, ForwardStatus
from kportforward.core.states import ForwardState
from kportforward.supervisor.events import ForwardEvent
from tests.unit.test_control_codec import CORPUS

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")

S = ForwardState
_END = object()


class ScriptedSupervisor:
    """Statuses and events set by the test; commands recorded."""

    def __init__(self, names: list[str]) -> None:
        specs = tuple(ForwardSpec(n, f"service/{n}", 80, 8000 + i, group="g")
                      for i, n in enumerate(names))  # fmt: skip
        self.config = Config(forwards=specs)
        self.statuses = {s.name: ForwardStatus(s, S.CONNECTING, "connecting") for s in specs}
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.calls: list[tuple[str, str]] = []

    def emit(self, name: str, state: ForwardState, reason: str) -> None:
        old = self.statuses[name]
        self.statuses[name] = replace(old, state=state, reason=reason)
        self.queue.put_nowait(ForwardEvent(time.time(), self.statuses[name], old.state, reason))

    async def start(self) -> None:
        pass

    def snapshot(self) -> tuple[ForwardStatus, ...]:
        return tuple(self.statuses[n] for n in sorted(self.statuses))

    def status(self, name: str) -> ForwardStatus:
        return self.statuses[name]

    def clusters(self) -> tuple[()]:
        return ()

    async def events(self) -> Any:
        while (item := await self.queue.get()) is not _END:
            yield item

    def log_lines(self, name: str) -> tuple[str, ...]:
        return (f"Forwarding from 127.0.0.1:80 -> 80 ({name})",)

    async def _record(self, verb: str, name: str) -> None:
        self.calls.append((verb, name))

    async def stop(self, name: str) -> None:
        await self._record("stop", name)
        self.emit(name, S.STOPPED, "stopped by user")

    async def start_forward(self, name: str) -> None:
        await self._record("start", name)

    async def restart(self, name: str) -> None:
        await self._record("restart", name)

    async def stop_group(self, group: str) -> None:
        await self._record("stop_group", group)

    async def start_group(self, group: str) -> None:
        await self._record("start_group", group)

    async def reload(self, config: Config) -> None:
        pass

    async def shutdown(self) -> None:
        self.queue.put_nowait(_END)

    def kill_all(self) -> int:
        return 0


@pytest.fixture
def sock_path() -> Any:
    base = Path(tempfile.mkdtemp(prefix="kpfsrv"))
    yield base / "c.sock"
    shutil.rmtree(base, ignore_errors=True)


async def _serve(sock_path: Path, names: list[str]) -> tuple[ScriptedSupervisor, Any, Any]:
    sup = ScriptedSupervisor(names)
    shared = SharedSupervisor(sup)
    info = InstanceInfo(os.getpid(), time.time(), str(sock_path), mode="run")
    srv = ControlServer(shared, sock_path, info)
    shared.on_start, shared.on_close = srv.start, srv.close
    stopped: list[bool] = []
    shared.set_stop_handler(lambda: stopped.append(True))
    await shared.start()
    return sup, shared, stopped


async def _request(reader: Any, writer: Any, raw: bytes) -> dict[str, Any]:
    writer.write(raw if raw.endswith(b"\n") else raw + b"\n")
    await writer.drain()
    return json.loads(await asyncio.wait_for(reader.readline(), 5))


async def test_socket_is_0600_and_answers(sock_path: Path) -> None:
    _sup, shared, _ = await _serve(sock_path, ["api"])
    assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600
    r, w = await asyncio.open_unix_connection(str(sock_path))
    hello = await _request(r, w, codec.encode(codec.request("hello", 1)))
    assert (
        hello["ok"] and hello["result"]["pid"] == os.getpid() and hello["result"]["protocol"] == 1
    )
    assert "env" not in json.dumps(hello["result"]).lower()
    w.close()
    await shared.shutdown()
    assert not sock_path.exists()


async def test_malformed_corpus_gets_errors_and_the_connection_stays_usable(
    sock_path: Path,
) -> None:
    _sup, shared, _ = await _serve(sock_path, ["api"])
    r, w = await asyncio.open_unix_connection(str(sock_path), limit=1 << 20)
    for line, code in CORPUS:
        if code == "too_large" or b"\n" in line[:-1]:
            continue
        if not line.strip():
            continue
        answer = await _request(r, w, line)
        assert answer["ok"] is False and answer["error"]["code"] == code, line[:80]
    status = await _request(r, w, codec.encode(codec.request("status", 9, name="nope")))
    assert status["error"]["code"] == "unknown_forward" and "api" in status["error"]["message"]
    ok = await _request(r, w, codec.encode(codec.request("status", 10, name="api")))
    assert ok["id"] == 10 and ok["result"]["state"] == "Connecting"
    w.close()
    await shared.shutdown()


async def test_random_garbage_and_a_huge_line_never_end_the_server(sock_path: Path) -> None:
    _sup, shared, _ = await _serve(sock_path, ["api"])
    rng = random.Random(1)
    r, w = await asyncio.open_unix_connection(str(sock_path), limit=1 << 20)
    for _ in range(300):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b" ")
        answer = await _request(r, w, junk)
        assert answer["ok"] is False
    w.close()
    r2, w2 = await asyncio.open_unix_connection(str(sock_path))
    w2.write(b"{" * (codec.MAX_REQUEST_BYTES + 10) + b"\n")
    await w2.drain()
    answer = json.loads(await asyncio.wait_for(r2.readline(), 5))
    assert answer["error"]["code"] == "too_large"
    assert await asyncio.wait_for(r2.read(), 5) == b""  # closed after it
    r3, w3 = await asyncio.open_unix_connection(str(sock_path))
    assert (await _request(r3, w3, codec.encode(codec.request("hello", 1))))["ok"]
    w3.close()
    await shared.shutdown()


async def test_twenty_subscribers_each_get_every_event_in_order(sock_path: Path) -> None:
    sup, shared, _ = await _serve(sock_path, ["api", "db"])
    clients = []
    for i in range(20):
        r, w = await asyncio.open_unix_connection(str(sock_path), limit=1 << 20)
        snap = await _request(r, w, codec.encode(codec.request("subscribe", i)))
        assert snap["id"] == i and len(snap["result"]["forwards"]) == 2
        clients.append((r, w))
    states = [S.RUNNING, S.DEGRADED, S.RUNNING] * 30
    for n, state in enumerate(states):
        sup.emit("api", state, f"step {n}")

    async def read_all(r: Any) -> list[str]:
        return [json.loads(await r.readline())["event"]["reason"] for _ in states]

    got = await asyncio.wait_for(asyncio.gather(*(read_all(r) for r, _ in clients)), 20)
    assert all(reasons == [f"step {n}" for n in range(len(states))] for reasons in got)
    for _, w in clients:
        w.close()
    await shared.shutdown()


async def test_a_subscriber_that_stops_reading_is_dropped(
    sock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_mod, "SUBSCRIBER_BACKLOG", 5)
    sup, shared, _ = await _serve(sock_path, ["api"])
    r, w = await asyncio.open_unix_connection(str(sock_path))
    await _request(r, w, codec.encode(codec.request("subscribe", 1)))
    reason = "x" * 4000  # fill the socket buffers quickly
    for n in range(3000):
        sup.emit("api", S.RUNNING if n % 2 else S.DEGRADED, reason)
        if n % 100 == 0:
            await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    assert len(shared._subs) == 1  # only the local reader is left
    w.close()
    await shared.shutdown()


async def test_commands_and_shutdown_request(sock_path: Path) -> None:
    sup, shared, stopped = await _serve(sock_path, ["api", "db"])
    r, w = await asyncio.open_unix_connection(str(sock_path))
    stop = await _request(r, w, codec.encode(codec.request("stop", 1, name="db")))
    assert stop["result"]["state"] == "Stopped"
    group = await _request(r, w, codec.encode(codec.request("start_group", 2, group="g")))
    assert group["result"] == ["api", "db"]
    nogroup = await _request(r, w, codec.encode(codec.request("stop_group", 3, group="zz")))
    assert nogroup["error"]["code"] == "unknown_forward"
    logs = await _request(r, w, codec.encode(codec.request("logs", 4, name="api")))
    assert logs["result"] == ["Forwarding from 127.0.0.1:80 -> 80 (api)"]
    reload = await _request(r, w, codec.encode(codec.request("reload", 5)))
    assert reload["error"]["code"] == "internal"  # this server was given no reload
    bye = await _request(r, w, codec.encode(codec.request("shutdown", 6)))
    assert bye["ok"] and stopped == [True]
    assert sup.calls == [("stop", "db"), ("start_group", "g")]
    w.close()
    await shared.shutdown()


async def test_remote_supervisor_mirrors_the_instance(sock_path: Path) -> None:
    sup, shared, stopped = await _serve(sock_path, ["api", "db"])
    hello_snap = await asyncio.to_thread(RemoteSupervisor.probe, str(sock_path))
    remote: RemoteSupervisor = hello_snap
    assert [s.name for s in remote.snapshot()] == ["api", "db"]
    assert [s.name for s in remote.config.forwards] == ["api", "db"]
    await remote.start()
    events = remote.events()
    sup.emit("api", S.RUNNING, "probe passed")
    event = await asyncio.wait_for(events.__anext__(), 5)
    assert isinstance(event, ForwardEvent) and event.status.state is S.RUNNING
    assert remote.status("api").state is S.RUNNING
    await remote.restart("api")
    await remote.stop("db")
    assert remote.status("db").state is S.STOPPED
    assert remote.log_lines("api") == ()  # fetched in the background
    await asyncio.sleep(0.2)
    assert remote.log_lines("api") == ("Forwarding from 127.0.0.1:80 -> 80 (api)",)
    assert remote.kill_all() == 0
    await remote.shutdown()  # detaches: the instance is not asked to stop
    assert stopped == [] and remote.detached and not remote.lost
    assert ("restart", "api") in sup.calls
    await shared.shutdown()


async def test_remote_events_asked_for_before_start_still_arrive(sock_path: Path) -> None:
    """The dashboard starts reading events() before it calls start() (it did lose them once)."""
    sup, shared, _ = await _serve(sock_path, ["api"])
    remote = await asyncio.to_thread(RemoteSupervisor.probe, str(sock_path))
    events = remote.events()
    first = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0)
    await remote.start()
    sup.emit("api", S.RUNNING, "probe passed")
    event = await asyncio.wait_for(first, 5)
    assert event.status.state is S.RUNNING
    await remote.shutdown()
    await shared.shutdown()


async def test_the_socket_appears_only_once_the_supervisor_knows_its_forwards(
    sock_path: Path,
) -> None:
    """A client's first snapshot is never empty (``wait`` once saw ``known: none``)."""
    gate = asyncio.Event()
    sup = ScriptedSupervisor(["api"])
    real = sup.statuses
    sup.statuses = {}

    async def slow_start() -> None:
        await gate.wait()
        sup.statuses = real

    sup.start = slow_start  # type: ignore[method-assign]
    shared = SharedSupervisor(sup)
    srv = ControlServer(shared, sock_path, InstanceInfo(os.getpid(), time.time(), str(sock_path)))
    shared.on_start, shared.on_close = srv.start, srv.close
    starting = asyncio.ensure_future(shared.start())
    await asyncio.sleep(0.1)
    assert not sock_path.exists()
    gate.set()
    await starting
    r, w = await asyncio.open_unix_connection(str(sock_path))
    snap = await _request(r, w, codec.encode(codec.request("subscribe", 1)))
    assert [f["name"] for f in snap["result"]["forwards"]] == ["api"]
    w.close()
    await shared.shutdown()


PEER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
print(s.makefile().readline().strip())  # refused at once, before any request
"""


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not sys.platform.startswith("linux"),
    reason="needs root to run a client as another uid; SO_PEERCRED is Linux's",
)
async def test_another_user_is_refused_even_if_the_file_modes_let_it_in(sock_path: Path) -> None:
    """The 0600/0700 modes keep other users out; SO_PEERCRED is the second lock, tested alone."""
    import subprocess

    python = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)),
                  None)  # fmt: skip
    if python is None:  # the venv's interpreter may sit under /root, which nobody can enter
        pytest.skip("no system python3 another user can run")
    _sup, shared, _ = await _serve(sock_path, ["api"])
    os.chmod(sock_path.parent, 0o755)
    os.chmod(sock_path, 0o666)
    probe = sock_path.parent / "peer.py"
    probe.write_text(PEER)
    probe.chmod(0o644)
    result = await asyncio.to_thread(
        subprocess.run,
        [python, "-I", str(probe), str(sock_path)],
        capture_output=True, text=True, timeout=30, user=65534, group=65534,
    )  # fmt: skip
    await shared.shutdown()
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and answer["error"]["code"] == "forbidden"
