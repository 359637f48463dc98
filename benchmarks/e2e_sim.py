"""End-to-end figures for the simulator with the real kubectl (printed; see docs/PERFORMANCE.md).

    .venv/bin/python benchmarks/e2e_sim.py throughput [--mb 50] [--transport spdy|websocket]
    .venv/bin/python benchmarks/e2e_sim.py concurrent [--n 100]

``throughput``: one kubectl port-forward to an echo backend; MB sent through the tunnel and echoed
back, timed from the first byte to the last echoed byte. ``concurrent``: N kubectl port-forwards
(one per service of a generated world) started at once against one simulator; time until every one
printed ``Forwarding from`` and the process CPU time spent meanwhile (simulator thread plus this
script, which only waits), then one HTTP GET through each.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kportforward.sim import Simulator, World, generated_world

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


def _spawn(sim: Simulator, target: str, remote: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "kubectl",
            "port-forward",
            "--address",
            "127.0.0.1",
            "--kubeconfig",
            str(sim.kubeconfig_path),
            target,
            f"0:{remote}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )


def _ready_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = FORWARDING.search(line)
    if not m:
        raise SystemExit(f"kubectl failed: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return int(m.group(1))


def _env(transport: str) -> dict[str, str]:
    env = dict(os.environ)
    # A fresh discovery cache shared by this run's kubectls; never the user's ~/.kube/cache.
    env["KUBECACHEDIR"] = tempfile.mkdtemp(prefix="kpf-bench-cache-")
    env.pop("KUBECTL_PORT_FORWARD_WEBSOCKETS", None)
    if transport == "spdy":
        env["KUBECTL_PORT_FORWARD_WEBSOCKETS"] = "false"
    return env


def throughput(mb: int, transport: str) -> float:
    """MB/s of an echo round trip of ``mb`` MB through kubectl."""
    world = World()
    world.add_pod("echo", ports=[{"containerPort": 7000, "backend": "echo"}])
    with Simulator(world) as sim:
        proc = _spawn(sim, "pod/echo", 7000, _env(transport))
        try:
            port = _ready_port(proc)
            size = mb * 1_000_000
            block = os.urandom(1 << 20)
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)

                def send() -> None:
                    left = size
                    view = memoryview(block)
                    while left > 0:
                        n = min(left, len(block))
                        s.sendall(view[:n])
                        left -= n
                    s.shutdown(socket.SHUT_WR)

                start = time.perf_counter()
                sender = threading.Thread(target=send)
                sender.start()
                got = 0
                buf = bytearray(1 << 20)
                while True:
                    n = s.recv_into(buf)
                    if not n:
                        break
                    got += n
                elapsed = time.perf_counter() - start
                sender.join()
            if got != size:
                raise SystemExit(f"echoed {got} bytes of {size}")
        finally:
            proc.kill()
            proc.wait()
    rate = size / elapsed / 1e6
    print(
        f"throughput transport={transport} size={mb}MB elapsed={elapsed:.3f}s "
        f"rate={rate:.1f}MB/s (each byte through the tunnel both ways)"
    )
    return rate


def concurrent(n: int) -> float:
    """Seconds until ``n`` concurrent kubectl port-forwards all print ``Forwarding from``."""
    with Simulator(generated_world(n)) as sim:
        env = _env("websocket")
        cpu0 = time.process_time()
        procs: list[subprocess.Popen[str]] = []
        try:
            start = time.perf_counter()
            procs = [_spawn(sim, f"service/svc-{i:03d}", 80, env) for i in range(n)]
            ports = [_ready_port(p) for p in procs]
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu0
            ok = 0
            for port in ports:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = b""
                    while chunk := s.recv(4096):
                        data += chunk
                ok += data.startswith(b"HTTP/1.1 200")
        finally:
            for p in procs:
                p.kill()
            for p in procs:
                p.wait()
    print(
        f"concurrent kubectl={n} all_forwarding={elapsed:.2f}s "
        f"simulator_cpu={cpu:.2f}s http_ok={ok}/{n} api_requests={len(sim.request_log)}"
    )
    return elapsed


def main() -> int:
    """Parse arguments and run one measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--mb", type=int, default=50)
    t.add_argument("--transport", choices=["spdy", "websocket"], default="spdy")
    c = sub.add_parser("concurrent")
    c.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    if args.what == "throughput":
        throughput(args.mb, args.transport)
    else:
        concurrent(args.n)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
