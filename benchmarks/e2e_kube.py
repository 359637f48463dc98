"""End-to-end figures for the kube layer against the simulator (printed; docs/PERFORMANCE.md).

    .venv/bin/python benchmarks/e2e_kube.py [--rounds 20]

- access probe: the first (imports kubernetes, builds the client) and warm ones (cached client);
  against a hung simulator (bounded by the timeout).
- pod watch: from a fault method returning (delete/restart a pod, make it not ready) to the
  PodChange reaching the asyncio callback; and how long ``PodWatcher.close()`` takes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time

from kportforward.kube.access import probe_access
from kportforward.kube.pods import PodChange, PodWatcher
from kportforward.sim import Simulator


def _fmt(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    median = statistics.median(ms)
    return f"median {median:.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)})"


async def _wait_change(changes: list[PodChange], name: str, kind: str) -> float:
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        for change in changes:
            if change.name == name and change.kind == kind:
                return time.perf_counter()
        await asyncio.sleep(0.001)
    raise TimeoutError(f"no {kind} for {name}")


async def main(rounds: int) -> None:
    sim = Simulator()
    sim.start_in_thread()
    try:
        kubeconfig = str(sim.kubeconfig_path)
        t0 = time.perf_counter()
        first = await probe_access(kubeconfig=kubeconfig)
        cold = time.perf_counter() - t0
        assert first.ok, first
        print(f"probe, first in process (import kubernetes + build client): {cold * 1000:.0f} ms")
        warm = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            assert (await probe_access(kubeconfig=kubeconfig)).ok
            warm.append(time.perf_counter() - t0)
        print(f"probe, warm (cached client; GET /version + list pods limit=1): {_fmt(warm)}")
        sim.hang()
        t0 = time.perf_counter()
        hung = await probe_access(kubeconfig=kubeconfig, timeout=1.0)
        print(f"probe, hung server, timeout=1.0 s: {hung.kind} after "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms")  # fmt: skip
        sim.resume()

        changes: list[PodChange] = []
        watcher = PodWatcher(asyncio.get_running_loop(), changes.append)
        watcher.watch(kubeconfig, None, "default")
        while not watcher.synced(kubeconfig, None, "default"):
            await asyncio.sleep(0.01)
        not_ready, deleted = [], []
        pod = "debug-shell"
        for _ in range(rounds):
            changes.clear()
            t0 = time.perf_counter()
            sim.set_pod_ready("default", pod, False)
            not_ready.append(await _wait_change(changes, pod, "not_ready") - t0)
            sim.set_pod_ready("default", pod, True)
            await _wait_change(changes, pod, "ready")
        victim = sorted(n for n in sim.pods("default") if n.startswith("web-frontend"))[0]
        for _ in range(rounds):
            changes.clear()
            t0 = time.perf_counter()
            replacement = sim.restart_pod("default", victim)
            deleted.append(await _wait_change(changes, victim, "deleted") - t0)
            await _wait_change(changes, replacement, "added")
            victim = replacement
        print(f"watch, set_pod_ready(False) -> not_ready delivered: {_fmt(not_ready)}")
        print(f"watch, restart_pod -> deleted delivered: {_fmt(deleted)}")
        threads_before = threading.active_count()
        t0 = time.perf_counter()
        watcher.close()
        took = (time.perf_counter() - t0) * 1000
        print(f"PodWatcher.close() with one live watch: {took:.1f} ms; "
              f"threads {threads_before} -> {threading.active_count()}")  # fmt: skip
    finally:
        sim.stop_in_thread()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(main(parser.parse_args().rounds))
