"""``kportforward profile``: cProfile and tracemalloc reports of the real supervisor under load.

By default the workload is N forwards on a simulator started in a child process (so neither its CPU
nor its memory pollutes the manager's figures), with the real kubectl, optionally killing random
kubectl processes at a given rate. With ``--config`` the user's own config and cluster are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import json
import logging
import os
import pstats
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from kportforward.core.config import load_config
from kportforward.core.models import Config
from kportforward.errors import BadInputError, OutputPathError
from kportforward.owned import make_owned_dir

log = logging.getLogger(__name__)

REPORT_FILES = ("cpu.prof", "cpu.txt", "memory.txt", "summary.json")


@dataclass
class ProfileOptions:
    """What to profile and where to write the reports."""

    duration: float = 30.0
    output: Path = Path("profile-out")
    forwards: int = 50
    churn: float = 0.0
    """kubectl processes SIGKILLed per second."""
    config: str | None = None
    kubeconfig: str | None = None
    kubectl: str = "kubectl"
    cpuprofile: Path | None = None
    memprofile: Path | None = None


@dataclass
class Workload:
    """What happened while profiling."""

    events: int = 0
    kills: int = 0
    restarts: int = 0
    running_at_end: int = 0
    tasks: int = 0
    rss_samples: list[int] = field(default_factory=list)
    fds: int = 0
    threads: int = 0
    cache: dict[str, Any] = field(default_factory=dict)


def _write_generated_config(n: int, path: Path) -> None:
    """A config of ``n`` REST forwards onto ``generated_world(n)``'s services."""
    width = max(3, len(str(n - 1)))
    lines = ["portForwards:"]
    for i in range(n):
        name = f"svc-{i:0{width}d}"
        lines += [
            f"  {name}:",
            f"    target: service/{name}",
            "    targetPort: 80",
            f"    localPort: {20000 + i}",
            "    namespace: default",
            "    type: rest",
        ]
    lines.append("monitoringInterval: 1s")
    path.write_text("\n".join(lines) + "\n")


class SimProcess:
    """The simulator in a child process, serving ``generated_world(n)``."""

    def __init__(self, n: int, workdir: Path) -> None:
        self.n = n
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig"
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SimProcess:
        code = (
            "import sys\n"
            "from kportforward.sim import Simulator\n"
            "from kportforward.sim.worlds import generated_world\n"
            "sim = Simulator(generated_world(int(sys.argv[1])))\n"
            "sim.start_in_thread()\n"
            "import shutil; shutil.copy(sim.kubeconfig_path, sys.argv[2])\n"
            "print('ready', flush=True)\n"
            "try:\n"
            "    sys.stdin.read()\n"
            "finally:\n"
            "    sim.stop_in_thread()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(self.n), str(self.kubeconfig)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.__exit__()
            raise RuntimeError("the simulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _workload(
    opts: ProfileOptions, config: Config, config_path: str | None, kubeconfig: str | None
) -> Workload:
    from kportforward.core.ports import PortChecker
    from kportforward.core.states import ForwardState
    from kportforward.supervisor.supervisor import Supervisor

    me = psutil.Process()
    work = Workload()
    checker = PortChecker(ttl=2.0)
    supervisor = Supervisor(
        config,
        kubectl=opts.kubectl,
        kubeconfig=kubeconfig,
        config_path=config_path,
        watch_config=True,
        port_checker=checker,
    )
    await supervisor.start()

    async def count_events() -> None:
        async for _ in supervisor.events():
            work.events += 1

    async def churn() -> None:
        if opts.churn <= 0:
            return
        rng = random.Random(1)
        # Stop killing a little before the end so every kill inflicted has been recovered from.
        until = time.monotonic() + opts.duration - min(3.0, opts.duration / 4)
        while True:
            await asyncio.sleep(rng.expovariate(opts.churn))
            if time.monotonic() >= until:
                return
            pids = [s.pid for s in supervisor.snapshot() if s.pid]
            if pids:
                try:
                    if sys.platform == "win32":  # os.kill is TerminateProcess there
                        os.kill(rng.choice(pids), signal.SIGTERM)
                    else:
                        os.kill(rng.choice(pids), signal.SIGKILL)
                    work.kills += 1
                except ProcessLookupError:
                    pass

    async def sample() -> None:
        while True:
            work.rss_samples.append(me.memory_info().rss)
            await asyncio.sleep(0.5)

    helpers = [asyncio.create_task(c()) for c in (count_events, churn, sample)]
    try:
        await asyncio.sleep(opts.duration)
    finally:
        statuses = supervisor.snapshot()
        work.restarts = sum(s.restarts for s in statuses)
        work.running_at_end = sum(s.state is ForwardState.RUNNING for s in statuses)
        work.tasks = len(asyncio.all_tasks())
        work.fds = me.num_fds() if hasattr(me, "num_fds") else 0
        work.threads = threading.active_count()
        work.cache = {
            "config": _as_dict(load_config.cache_info()),
            "ports": _as_dict(checker.cache_info()),
        }
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await supervisor.shutdown()
    return work


def _as_dict(info: Any) -> dict[str, Any]:
    if isinstance(info, dict):
        return info
    if dataclasses.is_dataclass(info) and not isinstance(info, type):
        return dataclasses.asdict(info)
    return dict(info._asdict())  # a namedtuple


def profile(opts: ProfileOptions) -> dict[str, Any]:
    """Run the workload under cProfile and tracemalloc; write the reports; return the summary."""
    with _owned_dir() as tmp:
        if opts.config:
            config = load_config(opts.config)
            if not config.forwards:
                raise BadInputError(
                    f"{opts.config}: no enabled forwards to profile", "add portForwards entries"
                )
            return _profile_run(opts, config, opts.config, opts.kubeconfig)
        # The generated workload must not see the user's config, kubeconfig or kubectl cache.
        generated = Path(tmp) / "config.yaml"
        _write_generated_config(opts.forwards, generated)
        os.environ["KPORTFORWARD_CONFIG"] = str(generated)
        os.environ["KUBECACHEDIR"] = str(Path(tmp) / "kubecache")
        with SimProcess(opts.forwards, Path(tmp)) as sim:
            os.environ["KUBECONFIG"] = str(sim.kubeconfig)
            return _profile_run(opts, load_config(), str(generated), str(sim.kubeconfig))


@contextlib.contextmanager
def _owned_dir() -> Iterator[str]:
    """An owned temporary directory (``owned.make_owned_dir``), removed on exit; a profile killed
    with SIGKILL leaves it for the next start to remove."""
    path = make_owned_dir("profile")
    try:
        yield str(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _profile_run(
    opts: ProfileOptions, config: Config, config_path: str | None, kubeconfig: str | None
) -> dict[str, Any]:
    try:
        opts.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"cannot create the output directory {opts.output}: {exc.strerror or exc}",
            "choose a writable --output DIR",
        ) from None
    me = psutil.Process()
    cpu_before = me.cpu_times()
    children_before = os.times()
    rss_start = me.memory_info().rss
    gc_before = [s["collections"] for s in gc.get_stats()]
    tracemalloc.start(10)
    start_snapshot = tracemalloc.take_snapshot()
    profiler = cProfile.Profile()
    started = time.monotonic()
    profiler.enable()
    try:
        work = asyncio.run(_workload(opts, config, config_path, kubeconfig))
    finally:
        profiler.disable()
    elapsed = time.monotonic() - started
    end_snapshot = tracemalloc.take_snapshot()
    traced_now, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cpu_after = me.cpu_times()
    children_after = os.times()
    rss_end = me.memory_info().rss

    out = opts.output
    profiler.dump_stats(str(out / "cpu.prof"))
    _write_cpu_text(out / "cpu.prof", out / "cpu.txt")
    _write_memory_text(start_snapshot, end_snapshot, traced_now, traced_peak, out / "memory.txt")
    summary = {
        "duration_s": round(elapsed, 3),
        "forwards": len(config.forwards),
        "workload": "config" if opts.config else "simulator",
        "churn_per_s": opts.churn,
        "kubectl_killed": work.kills,
        "events": work.events,
        "restarts": work.restarts,
        "running_at_end": work.running_at_end,
        "rss_bytes": {
            "start": rss_start,
            "end": rss_end,
            "peak": max([rss_start, rss_end, *work.rss_samples]),
        },
        "tracemalloc_bytes": {"current": traced_now, "peak": traced_peak},
        "gc_collections": [
            after - before
            for after, before in zip(
                [s["collections"] for s in gc.get_stats()], gc_before, strict=True
            )
        ],
        "threads": work.threads,
        "asyncio_tasks": work.tasks,
        "open_fds": work.fds,
        "cpu_seconds": {
            "manager": round(
                (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system), 3
            ),
            "kubectl_children": round(
                (children_after.children_user - children_before.children_user)
                + (children_after.children_system - children_before.children_system),
                3,
            ),
        },
        "caches": work.cache,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if opts.cpuprofile:
        profiler.dump_stats(str(opts.cpuprofile))
    if opts.memprofile:
        shutil.copyfile(out / "memory.txt", opts.memprofile)
    return summary


def _write_cpu_text(prof: Path, target: Path) -> None:
    with target.open("w") as fh:
        stats = pstats.Stats(str(prof), stream=fh)
        stats.strip_dirs()
        fh.write("Top 40 functions by cumulative time\n\n")
        stats.sort_stats("cumulative").print_stats(40)
        fh.write("\nTop 40 functions by own time\n\n")
        stats.sort_stats("tottime").print_stats(40)


def _write_memory_text(
    start: tracemalloc.Snapshot, end: tracemalloc.Snapshot, now: int, peak: int, target: Path
) -> None:
    filters = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    ]
    start, end = start.filter_traces(filters), end.filter_traces(filters)
    lines = [
        f"traced memory at end: {now / 1024:.1f} KiB; peak: {peak / 1024:.1f} KiB",
        "",
        "Top 30 allocations by line (end snapshot)",
    ]
    for stat in end.statistics("lineno")[:30]:
        lines.append(f"  {stat}")
    lines += ["", "Top 30 growths between the start and end snapshots"]
    for diff in end.compare_to(start, "lineno")[:30]:
        lines.append(f"  {diff}")
    target.write_text("\n".join(lines) + "\n")


def print_summary(summary: dict[str, Any], output: Path) -> None:
    """A few lines for the terminal."""
    rss = summary["rss_bytes"]
    cpu = summary["cpu_seconds"]
    print(
        f"profiled {summary['forwards']} forwards for {summary['duration_s']:.1f}s: "
        f"{summary['events']} events, {summary['restarts']} restarts "
        f"({summary['kubectl_killed']} kubectl killed), "
        f"{summary['running_at_end']} running at the end"
    )
    print(
        f"manager CPU {cpu['manager']:.2f}s vs kubectl {cpu['kubectl_children']:.2f}s; "
        f"RSS start {rss['start'] / 2**20:.1f} MiB, peak {rss['peak'] / 2**20:.1f} MiB, "
        f"end {rss['end'] / 2**20:.1f} MiB"
    )
    print(f"reports: {', '.join(str(output / f) for f in REPORT_FILES)}")
