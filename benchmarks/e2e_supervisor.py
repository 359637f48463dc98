"""End-to-end figures for the supervisor with the real kubectl (see docs/PERFORMANCE.md).

    .venv/bin/python benchmarks/e2e_supervisor.py [--forwards 100] [--idle 60]

The simulator runs in a child process (so its CPU is not ours); the Supervisor runs here with the
default tunings (monitoringInterval 1 s). In order:

1. launch: N forwards from ``start()`` to all Running, against the limit measured in the same run:
   the kubectl processes' CPU time (user+sys, summed) divided by the cores;
2. idle: the supervisor's own CPU over ``--idle`` seconds with N Running, its RSS, threads, tasks;
3. recovery: SIGKILL one kubectl → Running again, against one kubectl's spawn → ``Forwarding from``
   (measured alone, same kubeconfig, warm cache);
4. dead tunnel: a deleted pod (replaced) → the forward restarted; a hung API server → every forward
   restarted (time from the fault to the new kubectl's spawn), then resume → all Running.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from kportforward.core.models import Config, ForwardSpec, Settings
from kportforward.core.states import ForwardState
from kportforward.sim.control import SimulatorClient
from kportforward.supervisor.events import ForwardEvent
from kportforward.supervisor.supervisor import Supervisor

S = ForwardState


def _sim_main(n: int, workdir: str, conn: Any) -> None:
    from kportforward.sim import Simulator, generated_world

    async def serve() -> None:
        sim = Simulator(generated_world(n), workdir=workdir)
        await sim.start()
        conn.send((sim.url, str(sim.kubeconfig_path)))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await sim.stop()

    asyncio.run(serve())


def free_ports(n: int) -> list[int]:
    import socket

    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def one_kubectl_ready_time(kubeconfig: str, target: str, runs: int = 5) -> float:
    """Median seconds from spawn to ``Forwarding from`` for one kubectl alone."""
    times = []
    for _ in range(runs):
        start = time.monotonic()
        proc = subprocess.Popen(
            ["kubectl", "port-forward", "--address", "127.0.0.1", "--kubeconfig", kubeconfig,
             "-n", "default", target, "0:9000"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
        )  # fmt: skip
        assert proc.stdout is not None
        line = proc.stdout.readline()
        times.append(time.monotonic() - start)
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        if not re.match(r"Forwarding from", line):
            raise SystemExit(f"kubectl failed: {line!r}")
    return statistics.median(times)


class Watch:
    """Collects events and answers 'when did X happen' questions."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.events: list[Any] = []
        self.states: dict[str, S] = {}
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        async for ev in self.sup.events():
            self.events.append(ev)
            if isinstance(ev, ForwardEvent):
                self.states[ev.forward] = ev.status.state

    def all_running(self, n: int) -> bool:
        """From the events alone (polling snapshot() would steal CPU from what is measured)."""
        return len(self.states) == n and all(s is S.RUNNING for s in self.states.values())

    def first(self, name: str, state: S, after: float) -> float | None:
        for ev in self.events:
            st = getattr(ev, "status", None)
            if st is not None and st.name == name and st.state is state and ev.ts >= after:
                return float(ev.ts)
        return None

    async def until(self, pred: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {what}")
            await asyncio.sleep(0.05)


def all_running(sup: Supervisor) -> bool:
    return all(s.state is S.RUNNING for s in sup.snapshot())


async def bench(
    n: int, idle: float, url: str, kubeconfig: str, sim_pid: int, budget: float
) -> None:
    client = SimulatorClient(url)
    cores = os.cpu_count() or 1
    ports = free_ports(n)
    specs = tuple(
        ForwardSpec(f"f{i:03d}", f"service/svc-{i:03d}", 9000, ports[i], namespace="default")
        for i in range(n)
    )
    ref = one_kubectl_ready_time(kubeconfig, "service/svc-000")
    sup = Supervisor(Config(forwards=specs, settings=Settings()), kubectl="kubectl",
                     kubeconfig=kubeconfig, probe_budget=budget)  # fmt: skip
    me = psutil.Process()
    sim = psutil.Process(sim_pid)
    w = Watch(sup)
    try:
        # 1. launch
        t0 = time.monotonic()
        cpu0 = sum(me.cpu_times()[:2])
        sim0 = sum(sim.cpu_times()[:2])
        await sup.start()
        await w.until(lambda: w.all_running(n), 120, "all Running after launch")
        launch = time.monotonic() - t0
        cpu_sup = sum(me.cpu_times()[:2]) - cpu0
        cpu_sim = sum(sim.cpu_times()[:2]) - sim0
        kubectl_cpu = 0.0
        for s in sup.snapshot():
            assert s.pid is not None
            kubectl_cpu += sum(psutil.Process(s.pid).cpu_times()[:2])
        limit = kubectl_cpu / cores
        print(f"launch: {n} forwards all Running in {launch:.2f} s; limit (kubectl CPU "
              f"{kubectl_cpu:.2f} s / {cores} cores) = {limit:.2f} s; ratio {launch / limit:.2f}; "
              f"supervisor CPU {cpu_sup:.2f} s; simulator CPU {cpu_sim:.2f} s; floor with all "
              f"three = {(kubectl_cpu + cpu_sup + cpu_sim) / cores:.2f} s; load average "
              f"{os.getloadavg()[0]:.1f}")  # fmt: skip

        # 2. idle
        await asyncio.sleep(3.0)  # let the first probes and psutil samples settle
        c0, t1 = sum(me.cpu_times()[:2]), time.monotonic()
        await asyncio.sleep(idle)
        busy = sum(me.cpu_times()[:2]) - c0
        span = time.monotonic() - t1
        assert all_running(sup), "a forward left Running while idle"
        tasks = len(asyncio.all_tasks())
        kubectl_rss = sorted(
            psutil.Process(st.pid).memory_info().rss for st in sup.snapshot() if st.pid
        )
        print(f"kubectl RSS: median {statistics.median(kubectl_rss) / 2**20:.1f} MiB, max "
              f"{kubectl_rss[-1] / 2**20:.1f} MiB, total {sum(kubectl_rss) / 2**20:.0f} MiB "
              f"for {len(kubectl_rss)} processes")  # fmt: skip
        print(f"idle: supervisor CPU {busy:.2f} s over {span:.1f} s = {100 * busy / span:.2f}% of "
              f"one core (probe budget {budget:g}/s: each of {n} tunnels every "
              f"{max(1.0, n / budget):g} s; {sup.prober.ticks} ticks); RSS "
              f"{me.memory_info().rss / 2**20:.1f} MiB; threads {me.num_threads()}; tasks {tasks}; "
              f"fds {me.num_fds()}")  # fmt: skip

        # 3. recovery after SIGKILL, five victims one after another (medians: the box is shared)
        recs, news = [], []
        # five victims spread over the forwards (any N ≥ 5)
        for victim in [f"f{(n * k) // 10:03d}" for k in (1, 3, 5, 7, 9)]:
            old = sup.status(victim).pid
            assert old is not None
            t_kill = time.time()
            os.kill(old, signal.SIGKILL)
            await w.until(
                lambda v=victim, o=old: sup.status(v).state is S.RUNNING and sup.status(v).pid != o,
                30, "recovery")  # fmt: skip
            t_run = w.first(victim, S.RUNNING, t_kill)
            assert t_run is not None
            proc = sup._runners[victim].proc
            recs.append(t_run - t_kill)
            news.append(proc.ready_after if proc and proc.ready_after else 0.0)
            await asyncio.sleep(0.5)
        ref_now = one_kubectl_ready_time(kubeconfig, "service/svc-000", runs=3)
        rec, new = statistics.median(recs), statistics.median(news)
        print(
            f"recovery: SIGKILL → Running median {rec:.3f} s (of {len(recs)}); one kubectl spawn → "
            f"Forwarding alone {ref:.3f} s before, {ref_now:.3f} s now; the new kubectls' own "
            f"spawn → Forwarding median {new:.3f} s; ratio {rec / ref_now:.2f} "
            f"({rec / ref:.2f} against the earlier one); "
            f"supervisor's share {rec - new:.3f} s"
        )

        # 4a. a deleted (replaced) pod
        victim = f"f{n // 2 + 1:03d}" if n > 2 else "f000"
        pod = sup._runners[victim].proc.pod  # type: ignore[union-attr]
        t_del = time.time()
        client.restart_pod("default", pod)
        await w.until(lambda: w.first(victim, S.CONNECTING, t_del) is not None, 10, "pod restart")
        t_new = w.first(victim, S.CONNECTING, t_del)
        assert t_new is not None
        print(f"dead tunnel (pod replaced): fault → new kubectl spawned in {t_new - t_del:.3f} s")
        await w.until(lambda: w.all_running(n), 30, "back after pod restart")
        await asyncio.sleep(2.0)

        # 4b. a hung API server: every tunnel stalls
        t_hang = time.time()
        client.hang()
        names = [s.name for s in specs]
        await w.until(
            lambda: all(w.first(x, S.CONNECTING, t_hang) is not None for x in names), 20,
            "all restarted after hang")  # fmt: skip
        stopped = sorted(w.first(x, S.RECONNECTING, t_hang) or 0.0 for x in names)
        spawned = sorted(w.first(x, S.CONNECTING, t_hang) or 0.0 for x in names)
        stopped = [t - t_hang for t in stopped]
        spawned = [t - t_hang for t in spawned]
        print(f"dead tunnel (hung API server, {n} forwards): fault → detected, kubectl stopped "
              f"(Reconnecting): median {statistics.median(stopped):.2f} s, "
              f"max {stopped[-1]:.2f} s; "
              f"→ new kubectl spawned: median {statistics.median(spawned):.2f} s, "
              f"max {spawned[-1]:.2f} s (spawns bounded in flight)")  # fmt: skip
        t_resume = time.time()
        client.resume()
        await w.until(lambda: w.all_running(n), 120, "all Running after resume")
        print(f"resume → all {n} Running again in {time.time() - t_resume:.2f} s")
    finally:
        t_stop = time.monotonic()
        await sup.shutdown()
        print(f"shutdown: {time.monotonic() - t_stop:.2f} s")
        await w.task


def spawn_cost(n: int = 50) -> None:
    """CPU and blocked time per spawn from a 60 MB process: preexec_fn vs setpriv vs neither."""
    from kportforward.supervisor.kubectl import _pdeathsig_preexec

    ballast = bytearray(60 * 2**20)  # the size of a supervisor with a UI
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1

    def run(preexec: Any, argv: list[str]) -> str:
        t, w = os.times(), time.monotonic()
        procs = [
            subprocess.Popen(argv, start_new_session=True, preexec_fn=preexec) for _ in range(n)
        ]
        blocked = (time.monotonic() - w) / n
        for p in procs:
            p.wait()
        t2 = os.times()
        cpu = (t2.user - t.user + t2.system - t.system) / n
        return f"CPU {cpu * 1000:.2f} ms, caller blocked {blocked * 1000:.2f} ms per spawn"

    print("preexec_fn (prctl):      " + run(_pdeathsig_preexec(), ["/bin/true"]))
    print("setpriv --pdeathsig:     " + run(None, ["setpriv", "--pdeathsig", "KILL", "--", "true"]))
    print("neither (no death sig):  " + run(None, ["/bin/true"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forwards", type=int, default=100)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--probe-budget", type=float, default=20.0, help="probes per second")
    parser.add_argument("--spawn-cost", action="store_true", help="only measure spawn cost")
    args = parser.parse_args()
    if args.spawn_cost:
        spawn_cost()
        return
    home = Path(tempfile.mkdtemp(prefix="kpf-bench-"))
    os.environ["KUBECACHEDIR"] = str(home / "kube-cache")
    os.environ["HOME"] = str(home)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_sim_main, args=(args.forwards, str(home / "sim"), child))
    proc.start()
    try:
        url, kubeconfig = parent.recv()
        print(f"kubectl {subprocess.run(['kubectl', 'version', '--client'], capture_output=True, text=True).stdout.split()[2]}; "  # noqa: E501
              f"{os.cpu_count()} cores; Python {sys.version.split()[0]}")  # fmt: skip
        asyncio.run(bench(args.forwards, args.idle, url, kubeconfig, proc.pid, args.probe_budget))
    finally:
        parent.send("stop")
        proc.join(30)
        if proc.is_alive():
            proc.kill()


if __name__ == "__main__":
    main()
