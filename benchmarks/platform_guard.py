"""What the portable orphan guard costs: the watchdog's start time, RSS and CPU, the manager's cost
per registration, and how long after the manager's SIGKILL its children are gone.

    python benchmarks/platform_guard.py [--runs 9]

Prints one line per figure (medians over ``--runs``). Starts only processes it kills itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time

import psutil

from kportforward.platform import for_name
from kportforward.platform.guard import OrphanGuard, watchdog_argv


def start_to_exit(runs: int) -> float:
    """Interpreter start → reading its pipe → EOF → exit, for an idle watchdog (seconds)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(watchdog_argv(), stdin=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def footprint() -> tuple[float, float, float]:
    """(RSS MiB, USS MiB, CPU s) of a watchdog guarding 100 registered (fake) children."""
    proc = subprocess.Popen(watchdog_argv(), stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for i in range(100):
        proc.stdin.write(f"+ {10_000_000 + i} - 1.0 kubectl:f{i}\n".encode())
    proc.stdin.flush()
    time.sleep(1.0)
    p = psutil.Process(proc.pid)
    mem = p.memory_full_info()
    cpu = sum(p.cpu_times()[:2])
    proc.stdin.close()
    proc.wait(10)
    return mem.rss / 2**20, mem.uss / 2**20, cpu


def register_cost(n: int = 2000) -> float:
    """Microseconds per register+unregister pair in the manager (psutil start time + 2 writes)."""
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    keeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    guard = OrphanGuard(for_name(sys.platform), env={})
    try:
        guard.register(keeper.pid)  # keeps the watchdog up, as a busy manager does
        t0 = time.perf_counter()
        for _ in range(n):
            guard.register(child.pid)
            guard.unregister(child.pid)
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        guard.unregister(keeper.pid)
        guard.close()
        for p in (child, keeper):
            p.kill()
            p.wait()


_MANAGER = textwrap.dedent(
    """
    import subprocess, time
    from kportforward.platform.guard import default_guard
    g = default_guard()
    kids = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(20)]
    for k in kids:
        g.register(k.pid)
    print(*[k.pid for k in kids], flush=True)
    time.sleep(60)
    """
)


def kill_to_gone(runs: int) -> float:
    """Seconds from SIGKILL of a manager with 20 registered children to all of them gone."""
    times = []
    for _ in range(runs):
        m = subprocess.Popen([sys.executable, "-c", _MANAGER], stdout=subprocess.PIPE, text=True)
        assert m.stdout is not None
        pids = [int(x) for x in m.stdout.readline().split()]
        time.sleep(0.3)
        t0 = time.perf_counter()
        os.kill(m.pid, signal.SIGKILL)
        m.wait()
        while any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids):
            time.sleep(0.002)
        times.append(time.perf_counter() - t0)
        m.stdout.close()
    return statistics.median(times)


def main() -> None:
    """Print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    print(f"watchdog start→exit (idle):   {start_to_exit(runs) * 1000:.0f} ms median")
    rss, uss, cpu = footprint()
    print(f"watchdog, 100 children:       RSS {rss:.1f} MiB, USS {uss:.1f} MiB, CPU {cpu:.3f} s")
    print(f"manager register+unregister:  {register_cost():.0f} µs per child")
    print(f"SIGKILL → 20 children gone:   {kill_to_gone(runs) * 1000:.0f} ms median")


if __name__ == "__main__":
    main()
