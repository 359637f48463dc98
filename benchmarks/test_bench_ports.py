"""Port checks and conflict resolution: cached vs uncached, batch vs naive, pool vs loop.

Run:   .venv/bin/pytest benchmarks/test_bench_ports.py --benchmark-only --benchmark-json=OUT.json
Table: .venv/bin/python benchmarks/test_bench_ports.py OUT.json

Every benchmark also records memory per operation with tracemalloc (``extra_info``):
``peak_b`` is the most memory the operation had allocated at once above what was live before it,
``net_b`` / ``net_blocks`` what stayed allocated after it (averaged over several runs). tracemalloc
cannot count blocks that were allocated and freed again, so there is no Go-style allocs/op here.
"""

from __future__ import annotations

import gc
import json
import socket
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from kportforward.core.conflicts import resolve_conflicts
from kportforward.core.models import ForwardSpec
from kportforward.core.ports import PortChecker, _probe_chunk

SIZES = (10, 100, 1000)
CONFLICT_SHARE = 0.30  # half held by a foreign socket, half shared with another forward


# -- the honest baseline ------------------------------------------------------------------------


def naive_port_free(port: int, address: str = "127.0.0.1") -> bool:
    """The straightforward check: try to bind, report whether it worked."""
    with socket.socket() as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
        return True


def naive_resolve(specs: list[ForwardSpec]) -> dict[str, int]:
    """The straightforward resolver: by name, take the configured port or walk upward, no cache."""
    taken: set[int] = set()
    out: dict[str, int] = {}
    for spec in sorted(specs, key=lambda s: s.name):
        port = spec.local_port
        while port in taken or not naive_port_free(port, spec.address):
            port += 1
        taken.add(port)
        out[spec.name] = port
    return out


# -- memory per op --------------------------------------------------------------------------------


_NOT_TRACEMALLOC = [tracemalloc.Filter(False, tracemalloc.__file__)]


def memory_per_op(fn: Callable[[], object], runs: int = 5) -> dict[str, float]:
    """tracemalloc figures for one call of ``fn`` (peak) and per call over ``runs`` (net)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()  # settle one-time allocations (lazy imports, pools) before measuring
        gc.collect()
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
        gc.collect()
        start = tracemalloc.take_snapshot().filter_traces(_NOT_TRACEMALLOC)
        for _ in range(runs):
            fn()
        gc.collect()
        end = tracemalloc.take_snapshot().filter_traces(_NOT_TRACEMALLOC)
    finally:
        tracemalloc.stop()
    diff = end.compare_to(start, "filename")
    net_b = sum(d.size_diff for d in diff) / runs
    net_blocks = sum(d.count_diff for d in diff) / runs
    return {"peak_b": peak - before, "net_b": net_b, "net_blocks": net_blocks}


# -- fixtures -------------------------------------------------------------------------------------


def _free_range(n: int, lo: int = 20000, hi: int = 32000) -> int:
    """The first port of ``n`` consecutive ports that all bind now (below the ephemeral range)."""
    base = lo
    while base + n <= hi:
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            base = port + 1
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports in {lo}-{hi}")


def _scenario(n: int, stack: ExitStack) -> list[ForwardSpec]:
    """``n`` forwards on every other port of a free range; of every 20, 3 have their port held by
    a foreign socket and 3 share another forward's port: 30% in conflict."""
    base = _free_range(2 * n + 4)
    specs = []
    for i in range(n):
        port = base + 2 * i
        if i % 20 in (3, 4, 5):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", port))
            s.listen(1)
        elif i % 20 in (11, 12, 13):
            port = base + 2 * (i - i % 20 + 10)  # forward ...10's port
        specs.append(ForwardSpec(f"svc{i:04d}", f"service/svc{i:04d}", 80, port))
    return specs


@pytest.fixture(scope="module")
def scenarios() -> Iterator[dict[int, list[ForwardSpec]]]:
    with ExitStack() as stack:
        yield {n: _scenario(n, stack) for n in SIZES}


@pytest.fixture
def port() -> int:
    return _free_range(1)


# -- is_available ---------------------------------------------------------------------------------


@pytest.mark.benchmark(group="is_available")
def test_is_available_cached(benchmark, port):
    checker = PortChecker(ttl=3600)
    checker.is_available(port)
    benchmark.extra_info.update(memory_per_op(lambda: checker.is_available(port), runs=1000))
    assert benchmark(checker.is_available, port) is True


@pytest.mark.benchmark(group="is_available")
def test_is_available_uncached(benchmark, port):
    checker = PortChecker(ttl=0)  # every answer has expired by the next call: always binds
    benchmark.extra_info.update(memory_per_op(lambda: checker.is_available(port), runs=100))
    assert benchmark(checker.is_available, port) is True
    assert checker.cache_info().hits == 0


# -- resolve_conflicts ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_resolve_warm(benchmark, scenarios, n):
    benchmark.group = f"resolve {n} forwards (30% conflicts)"
    specs = scenarios[n]
    checker = PortChecker(ttl=3600)
    first = resolve_conflicts(specs, checker)
    assert len(first.moves) == round(n * CONFLICT_SHARE) and not first.unresolved
    benchmark.extra_info.update(memory_per_op(lambda: resolve_conflicts(specs, checker)))
    assert benchmark(resolve_conflicts, specs, checker) == first


@pytest.mark.parametrize("n", SIZES)
def test_resolve_cold(benchmark, scenarios, n):
    benchmark.group = f"resolve {n} forwards (30% conflicts)"
    specs = scenarios[n]

    def cold():
        with PortChecker() as checker:  # a new cache (and pool) every time
            return resolve_conflicts(specs, checker)

    benchmark.extra_info.update(memory_per_op(cold, runs=2))
    assert not benchmark(cold).unresolved


@pytest.mark.parametrize("n", SIZES)
def test_resolve_cold_unnamed(benchmark, scenarios, n):
    """Cold, without asking psutil who holds the busy ports (one scan costs ~10–50 ms)."""
    benchmark.group = f"resolve {n} forwards (30% conflicts)"
    specs = scenarios[n]

    def cold():
        with PortChecker() as checker:
            return resolve_conflicts(specs, checker, name_holders=False)

    benchmark.extra_info.update(memory_per_op(cold, runs=2))
    assert not benchmark(cold).unresolved


@pytest.mark.parametrize("n", SIZES)
def test_resolve_naive(benchmark, scenarios, n):
    benchmark.group = f"resolve {n} forwards (30% conflicts)"
    specs = scenarios[n]
    benchmark.extra_info.update(memory_per_op(lambda: naive_resolve(specs), runs=2))
    ours = resolve_conflicts(specs, PortChecker())
    assert benchmark(naive_resolve, specs) == dict(ours.ports)  # same answer on this layout


# -- check_many -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cold_ports() -> list[int]:
    base = _free_range(200)
    return list(range(base, base + 200))


@pytest.mark.benchmark(group="200 cold ports")
def test_check_many_pool(benchmark, cold_ports):
    with PortChecker(max_workers=32) as checker:

        def run():
            checker.invalidate()  # cold cache, warm thread pool
            return checker.check_many(cold_ports)

        benchmark.extra_info.update(memory_per_op(run, runs=3))
        assert all(benchmark(run).values())


@pytest.mark.benchmark(group="200 cold ports")
def test_check_many_one_worker(benchmark, cold_ports):
    with PortChecker(max_workers=1) as checker:

        def run():
            checker.invalidate()
            return checker.check_many(cold_ports)

        benchmark.extra_info.update(memory_per_op(run, runs=3))
        assert all(benchmark(run).values())


@pytest.mark.benchmark(group="200 cold ports")
def test_sequential_is_available_loop(benchmark, cold_ports):
    checker = PortChecker()

    def run():
        checker.invalidate()
        return {p: checker.is_available(p) for p in cold_ports}

    benchmark.extra_info.update(memory_per_op(run, runs=3))
    assert all(benchmark(run).values())


@pytest.mark.benchmark(group="200 cold ports")
def test_sequential_naive_loop(benchmark, cold_ports):
    def run():
        return {p: naive_port_free(p) for p in cold_ports}

    benchmark.extra_info.update(memory_per_op(run, runs=3))
    assert all(benchmark(run).values())


@pytest.mark.parametrize("threads", [1, 2, 4, 8])
def test_probe_threads_uncapped(benchmark, cold_ports, threads):
    """The same 200 probes split into ``threads`` chunks on ``threads`` threads, without the
    checker's cap at the CPU count: does adding threads help bind probes at all?"""
    benchmark.group = "200 probes on N threads (no cap)"
    chunks = [cold_ports[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:

        def run():
            futures = [pool.submit(_probe_chunk, chunk, "127.0.0.1") for chunk in chunks]
            return [rec for f in futures for rec in f.result()]

        benchmark.extra_info.update(memory_per_op(run, runs=3))
        assert all(rec.available for rec in benchmark(run))


# -- the table for docs/PERFORMANCE.md -------------------------------------------------------------


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def render(path: str) -> str:
    """A markdown table: min and median time, speed-up against the group's slowest (by min, the
    figure least disturbed by other work on a shared machine), memory per op."""
    with open(path) as f:
        data = json.load(f)
    groups: dict[str, list[dict]] = {}
    for bench in data["benchmarks"]:
        groups.setdefault(bench["group"], []).append(bench)
    lines = [
        "| group | benchmark | min | median | × vs slowest (min) | peak B/op | net B/op "
        "| net blocks/op |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for group, benches in groups.items():
        slowest = max(b["stats"]["min"] for b in benches)
        for b in sorted(benches, key=lambda b: b["stats"]["min"]):
            stats, info = b["stats"], b.get("extra_info", {})
            lines.append(
                f"| {group} | `{b['name']}` | {_fmt_time(stats['min'])} | "
                f"{_fmt_time(stats['median'])} | {slowest / stats['min']:,.1f} | "
                f"{info.get('peak_b', 0):,.0f} | {info.get('net_b', 0):,.0f} | "
                f"{info.get('net_blocks', 0):,.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(sys.argv[1]))
