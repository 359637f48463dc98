"""After a wake: how long until every forward is usable, and how many kubectl were spawned.

`kportforward run --json` keeps N forwards (default 100) against the simulator with the real
kubectl. It is SIGSTOPped as a suspended laptop would stop it, the simulator replaces D pods
(default 10) meanwhile, and after SIGCONT the script measures until each local port echoes again,
and counts the kubectl spawned after the stop (the goal: exactly D; working tunnels keep theirs).

    python benchmarks/e2e_wake.py [--forwards 100] [--dead 10] [--sleep 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from kportforward.sim import Simulator, generated_world


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def echo(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"ping")
            sock.shutdown(socket.SHUT_WR)
            return sock.recv(16) == b"ping"
    except OSError:
        return False


def one_round(n: int, dead: int, sleep: float, tmp: Path) -> tuple[float, int, int]:
    sim = Simulator(generated_world(n))
    sim.start_in_thread()
    ports = free_ports(n)
    config = tmp / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "portForwards": {
                    f"f{i:03d}": {"target": f"service/svc-{i:03d}", "targetPort": 9000,
                                  "localPort": ports[i], "namespace": "default"}
                    for i in range(n)
                }
            }
        )
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "kportforward", "run", "--json", "--config", str(config),
         "--kubeconfig", str(sim.kubeconfig_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    objects: list[dict] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            objects.append(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while True:
            states = {o["forward"]: o["state"] for o in objects if o.get("event") == "forward"}
            if len(states) == n and all(s == "Running" for s in states.values()):
                break
            if time.monotonic() > deadline:
                raise SystemExit("forwards did not all become Running")
            time.sleep(0.1)
        time.sleep(6.0)  # past the stability window
        victims = [p for p in sim.pods("default")][:dead]
        stopped_at = time.time()
        proc.send_signal(signal.SIGSTOP)
        try:
            for pod in victims:
                sim.restart_pod("default", pod)
            time.sleep(sleep)
        finally:
            proc.send_signal(signal.SIGCONT)
        woke = time.monotonic()
        pending = set(range(n))
        while pending:
            pending = {i for i in pending if not echo(ports[i])}
            if time.monotonic() - woke > 60:
                break
        usable = time.monotonic() - woke
        time.sleep(1.0)
        spawned = sum(
            1 for o in objects if o.get("state") == "Connecting" and o["ts"] >= stopped_at
        )
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        return usable, spawned, len(pending)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        sim.stop_in_thread()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forwards", type=int, default=100)
    parser.add_argument("--dead", type=int, default=10)
    parser.add_argument("--sleep", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("KUBECACHEDIR", tempfile.mkdtemp(prefix="kpf-bench-cache-"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            usable, spawned, left = one_round(args.forwards, args.dead, args.sleep, Path(tmp))
            print(f"round {r + 1}: all usable {usable:.2f} s after SIGCONT; kubectl spawned "
                  f"{spawned} for {args.dead} dead tunnels; not usable: {left}")  # fmt: skip
            results.append((usable, spawned))
    times = [u for u, _ in results]
    print(f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}); "
          f"spawns per round {[s for _, s in results]}")  # fmt: skip


if __name__ == "__main__":
    main()
