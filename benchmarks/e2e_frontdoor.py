"""The front door against kubectl's own listener, side by side in one run.

    .venv/bin/python benchmarks/e2e_frontdoor.py [--mb 50] [--rounds 3] [--kills 20]

The simulator runs in a child process (``generated_world(1)``: svc-000, echo on 9000); kubectl
1.32 is the real one. The doors run on a :class:`DoorLoop` thread of this process (their CPU is
that thread's CPU time); every client runs in a child process of its own (``--client``), so the
clients never take the doors' GIL or CPU. Figures:

- bulk echo throughput (MB/s, both directions at once) direct vs through a door, over WebSocket
  and over SPDY (KUBECTL_PORT_FORWARD_WEBSOCKETS=false); the door's and kubectl's CPU per MB;
- connection + first 100-byte echo, p50/p99, direct vs door;
- 200 concurrent connections: failures direct vs door;
- a client connecting every 10 ms while kubectl is SIGKILLed ``--kills`` times and respawned at
  once: refused connections without the door (kubectl on the user's port) and with it;
- idle cost: RSS per door (listening, no connection) and per open relayed connection, and the CPU
  of 100 idle doors;
- frame budget: lateness of a 60 fps timer while a bulk transfer (4 × ``--mb``) runs through a
  door on the same loop, against the door on its own loop in a thread.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

# -- clients (child processes: stdlib only) ----------------------------------------------------


def _echo(port: int, data: bytes, timeout: float = 60) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:

        def send() -> None:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # cut meanwhile: the reader sees it

        t = threading.Thread(target=send, daemon=True)
        t.start()
        chunks = []
        while chunk := s.recv(1 << 18):
            chunks.append(chunk)
        t.join()
    return b"".join(chunks)


def client_main(mode: str, port: int, arg: int) -> None:
    """One client job; prints one JSON line."""
    if mode == "bulk":
        data = os.urandom(1 << 20) * arg
        t0 = time.perf_counter()
        ok = _echo(port, data) == data
        print(json.dumps({"seconds": time.perf_counter() - t0, "ok": ok}))
    elif mode == "latency":
        times = []
        for _ in range(arg):
            t0 = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"x" * 100)
                got = b""
                while len(got) < 100:
                    got += s.recv(100)
            times.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({"ms": times}))
    elif mode == "concurrent":
        barrier = threading.Barrier(arg, timeout=30)
        failures: list[str] = []

        def one() -> None:
            try:
                barrier.wait()
                if _echo(port, b"y" * 8192) != b"y" * 8192:
                    failures.append("short")
            except Exception as exc:
                failures.append(type(exc).__name__)

        threads = [threading.Thread(target=one) for _ in range(arg)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(json.dumps({"failures": failures}))
    elif mode == "ticker":  # a connection every 10 ms until stdin closes
        counts = {"ok": 0, "refused": 0, "cut": 0, "error": 0}
        stop = threading.Event()

        def watch_stdin() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        while not stop.is_set():
            try:
                counts["ok" if _echo(port, b"z" * 100, 30) == b"z" * 100 else "cut"] += 1
            except ConnectionRefusedError:
                counts["refused"] += 1
            except ConnectionResetError:
                counts["cut"] += 1
            except OSError:
                counts["error"] += 1
            time.sleep(0.01)
        print(json.dumps(counts))
    elif mode == "hold":  # open ``arg`` connections, echo once on each, wait for stdin to close
        socks = []
        for _ in range(arg):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"h")
            s.recv(1)
            socks.append(s)
        print(json.dumps({"open": len(socks)}), flush=True)
        sys.stdin.read()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--client":
    client_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    sys.exit(0)


# -- the benchmark -----------------------------------------------------------------------------

import argparse  # noqa: E402
import asyncio  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402

from kportforward.profiling import SimProcess  # noqa: E402
from kportforward.supervisor.doorloop import DoorLoop  # noqa: E402
from kportforward.supervisor.frontdoor import FrontDoor  # noqa: E402

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")
SPDY = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}


class Kubectl:
    """One ``kubectl port-forward`` of svc-000:9000 (argv, own session; killed by us only)."""

    def __init__(self, kubeconfig: Path, local: int = 0, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            ["kubectl", "port-forward", "--address", "127.0.0.1", "--kubeconfig", str(kubeconfig),
             "service/svc-000", f"{local}:9000"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            text=True, env={**os.environ, **(env or {})}, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = FORWARDING.search(line)
        if not m:
            self.kill()
            raise RuntimeError(f"kubectl did not forward: {line!r}")
        self.port = int(m.group(1))
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def client(mode: str, port: int, arg: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--client", mode, str(port), str(arg)],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def spawn_client(mode: str, port: int, arg: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--client", mode, str(port), str(arg)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait(120)
    return json.loads(out.strip().splitlines()[-1])


class Doors:
    """Doors on a DoorLoop thread; ``cpu()`` is that thread's CPU time."""

    def __init__(self) -> None:
        self.loop = DoorLoop().start()
        ident = self.loop._thread.ident if self.loop._thread else None
        assert ident is not None
        self._clock = time.pthread_getcpuclockid(ident)

    def open(self, **kw: Any) -> FrontDoor:
        async def make() -> FrontDoor:
            door = FrontDoor("bench", "127.0.0.1", 0, **kw)
            await door.start()
            return door

        return self.loop.call(make)

    def cpu(self) -> float:
        return time.clock_gettime(self._clock)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def bench_throughput(kc: Path, doors: Doors, mb: int, rounds: int, env: dict[str, str] | None):
    k = Kubectl(kc, env=env)
    door = doors.open()
    doors.loop.call(door.set_target, ("127.0.0.1", k.port))
    res: dict[str, list[float]] = {"direct": [], "door": [], "door_cpu": [], "kubectl_cpu": []}
    client("bulk", k.port, 1)  # warm up
    for _ in range(rounds):
        r = client("bulk", k.port, mb)
        assert r["ok"]
        res["direct"].append(2 * mb / r["seconds"])
        c0, k0 = doors.cpu(), k.cpu()
        r = client("bulk", door.port, mb)
        assert r["ok"]
        res["door"].append(2 * mb / r["seconds"])
        res["door_cpu"].append((doors.cpu() - c0) * 1000 / (2 * mb))
        res["kubectl_cpu"].append((k.cpu() - k0) * 1000 / (2 * mb))
    doors.loop.call(door.close)
    k.kill()
    return {key: statistics.median(v) for key, v in res.items()}


def bench_latency_and_concurrency(kc: Path, doors: Doors) -> dict[str, Any]:
    k = Kubectl(kc)
    door = doors.open()
    doors.loop.call(door.set_target, ("127.0.0.1", k.port))
    direct: list[float] = []
    through: list[float] = []
    for _ in range(3):
        direct += client("latency", k.port, 100)["ms"]
        through += client("latency", door.port, 100)["ms"]
    conc = {
        "direct": client("concurrent", k.port, 200)["failures"],
        "door": client("concurrent", door.port, 200)["failures"],
    }
    doors.loop.call(door.close)
    k.kill()
    return {
        "p50": (statistics.median(direct), statistics.median(through)),
        "p99": (pct(direct, 0.99), pct(through, 0.99)),
        "concurrent_failures": {key: len(v) for key, v in conc.items()},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_kills(kc: Path, doors: Doors, kills: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # Without the door: kubectl on the user's port, respawned at once on the same port.
    port = free_port()
    k = Kubectl(kc, local=port)
    ticker = spawn_client("ticker", port, 0)
    for _ in range(kills):
        time.sleep(0.3)
        k.kill()
        k = Kubectl(kc, local=port)
    time.sleep(0.3)
    assert ticker.stdin is not None
    ticker.stdin.close()
    out["direct"] = finish(ticker)
    k.kill()
    # With the door: hold on the kill, release on the new kubectl's readiness.
    door = doors.open(hold_timeout=30.0)
    k = Kubectl(kc)
    doors.loop.call(door.set_target, ("127.0.0.1", k.port))
    ticker = spawn_client("ticker", door.port, 0)
    for _ in range(kills):
        time.sleep(0.3)
        k.kill()
        doors.loop.call(door.hold, "kubectl exited")
        k = Kubectl(kc)
        doors.loop.call(door.set_target, ("127.0.0.1", k.port))
    time.sleep(0.3)
    assert ticker.stdin is not None
    ticker.stdin.close()
    out["door"] = finish(ticker)
    out["door_stats"] = doors.loop.call(door.stats).as_json()
    doors.loop.call(door.close)
    k.kill()
    return out


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def bench_idle(kc: Path, doors: Doors, n_doors: int = 500, n_conns: int = 500) -> dict[str, Any]:
    """RSS and Python heap (tracemalloc) per idle door and per open relayed connection, and the
    CPU of ``n_doors`` idle doors over 10 s."""
    import tracemalloc

    tracemalloc.start()
    base, heap0 = rss(), tracemalloc.get_traced_memory()[0]
    opened = [doors.open() for _ in range(n_doors)]
    time.sleep(0.5)
    per_door = (rss() - base) / n_doors
    heap_door = (tracemalloc.get_traced_memory()[0] - heap0) / n_doors
    tracemalloc.stop()
    proc = psutil.Process()
    c0 = proc.cpu_times()
    time.sleep(10)
    c1 = proc.cpu_times()
    idle_cpu = ((c1.user + c1.system) - (c0.user + c0.system)) / 10 * 100
    k = Kubectl(kc)
    door = opened[0]
    doors.loop.call(door.set_target, ("127.0.0.1", k.port))
    warm = spawn_client("hold", door.port, 50)  # warm the allocator's arenas first
    assert warm.stdout is not None and warm.stdin is not None
    warm.stdout.readline()
    tracemalloc.start()
    before, heap0 = rss(), tracemalloc.get_traced_memory()[0]
    holder = spawn_client("hold", door.port, n_conns)
    assert holder.stdout is not None
    assert json.loads(holder.stdout.readline())["open"] == n_conns
    time.sleep(0.5)
    per_conn = (rss() - before) / n_conns
    heap_conn = (tracemalloc.get_traced_memory()[0] - heap0) / n_conns
    tracemalloc.stop()
    for p in (holder, warm):
        assert p.stdin is not None
        p.stdin.close()
        p.wait(60)
    for d in opened:
        doors.loop.call(d.close)
    k.kill()
    return {
        "n_doors": n_doors,
        "rss_per_door": per_door,
        "heap_per_door": heap_door,
        "rss_per_conn": per_conn,
        "heap_per_conn": heap_conn,
        "idle_cpu_pct": idle_cpu,
    }


def bench_frames(kc: Path, mb: int) -> dict[str, Any]:
    """A 60 fps timer on this loop while ``mb`` MB echo through a door, same loop vs thread."""
    k = Kubectl(kc)
    results: dict[str, Any] = {}

    async def measure(port: int | None, label: str) -> None:
        period = 1 / 60
        late: list[float] = []
        done = asyncio.Event()
        proc = None
        if port is not None:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--client", "bulk", str(port), str(mb),
                stdout=subprocess.PIPE,
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        next_at = loop.time() + period
        t_end = loop.time() + 3.0

        def tick() -> None:
            nonlocal next_at
            late.append((loop.time() - next_at) * 1000)
            next_at += period
            if proc is None and loop.time() > t_end:
                done.set()
                return
            loop.call_at(next_at, tick)

        loop.call_at(next_at, tick)
        if proc is not None:
            await proc.communicate()
            done.set()
        await done.wait()
        results[label] = {
            "p50": statistics.median(late),
            "p99": pct(late, 0.99),
            "max": max(late),
            "frames_late_gt_8ms": sum(1 for v in late if v > 8),
            "frames": len(late),
        }

    async def same_loop() -> None:
        door = FrontDoor("bench", "127.0.0.1", 0)
        await door.start()
        door.set_target(("127.0.0.1", k.port))
        await measure(None, "idle")
        await measure(door.port, "door on the same loop")
        await door.close()

    asyncio.run(same_loop())
    doors = Doors()
    door = doors.open()
    doors.loop.call(door.set_target, ("127.0.0.1", k.port))
    asyncio.run(measure(door.port, "door on its own loop (thread)"))
    doors.loop.call(door.close)
    doors.loop.stop()
    k.kill()
    return results


def main() -> int:
    """Run everything and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--only", default="", help="comma list: bulk,latency,kills,idle,frames")
    opts = parser.parse_args()
    only = set(filter(None, opts.only.split(",")))
    want = lambda name: not only or name in only  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp, SimProcess(1, Path(tmp)) as sim:
        kc = sim.kubeconfig
        doors = Doors()
        try:
            if want("bulk"):
                for label, env in (("websocket", None), ("spdy", SPDY)):
                    r = bench_throughput(kc, doors, opts.mb, opts.rounds, env)
                    print(
                        f"bulk {label}: direct {r['direct']:.0f} MB/s, door {r['door']:.0f} "
                        f"MB/s ({r['door'] / r['direct']:.2f}x); CPU per MB: door "
                        f"{r['door_cpu']:.2f} ms, kubectl {r['kubectl_cpu']:.2f} ms "
                        f"(medians of {opts.rounds}, {opts.mb} MB each way)",
                        flush=True,
                    )
            if want("latency"):
                r = bench_latency_and_concurrency(kc, doors)
                print(
                    f"connect + first 100 B echo: p50 direct {r['p50'][0]:.2f} ms, door "
                    f"{r['p50'][1]:.2f} ms; p99 direct {r['p99'][0]:.2f} ms, door "
                    f"{r['p99'][1]:.2f} ms (300 each)",
                    flush=True,
                )
                print(
                    f"200 concurrent connections: failures direct "
                    f"{r['concurrent_failures']['direct']}, door "
                    f"{r['concurrent_failures']['door']}",
                    flush=True,
                )
            if want("kills"):
                r = bench_kills(kc, doors, opts.kills)
                print(
                    f"{opts.kills} kubectl SIGKILLs, a client every 10 ms: without the door "
                    f"{r['direct']}, with the door {r['door']}; door counters "
                    f"{r['door_stats']}",
                    flush=True,
                )
            if want("idle"):
                r = bench_idle(kc, doors)
                print(
                    f"idle: per door RSS {r['rss_per_door'] / 1024:.1f} KiB (Python heap "
                    f"{r['heap_per_door'] / 1024:.1f} KiB); per open relayed connection RSS "
                    f"{r['rss_per_conn'] / 1024:.1f} KiB (heap {r['heap_per_conn'] / 1024:.1f} "
                    f"KiB); CPU of {r['n_doors']} idle doors {r['idle_cpu_pct']:.2f} % of a core",
                    flush=True,
                )
        finally:
            doors.loop.stop()
        if want("frames"):
            for label, f in bench_frames(kc, 4 * opts.mb).items():
                print(
                    f"60 fps timer, {label}: lateness p50 {f['p50']:.2f} ms, p99 "
                    f"{f['p99']:.2f} ms, max {f['max']:.1f} ms, {f['frames_late_gt_8ms']} of "
                    f"{f['frames']} frames > 8 ms late",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
