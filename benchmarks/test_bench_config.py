"""load_config: a cold parse of a 200-forward user config against a cached hit (one group).

Run:   .venv/bin/pytest benchmarks/test_bench_config.py --benchmark-only --benchmark-json=OUT.json
Ratio: .venv/bin/python benchmarks/test_bench_config.py OUT.json

"cold" = ``load_config.cache_clear()`` then ``load_config()``: the embedded defaults and the user
file are read, parsed (libyaml's composer when available), checked and merged. "hit" =
``load_config()`` again with nothing changed: the environment lookups that decide which user file
applies, one ``os.stat`` of that file, and a dict lookup; it returns the very same Config object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kportforward.core.config import load_config
from kportforward.core.config_yaml import _Loader

FORWARDS = 200


def user_config_text(n: int = FORWARDS) -> str:
    """A realistic user config: n forwards using most keys, with comments, like a real file."""
    lines = ["# generated for the benchmark", "portForwards:"]
    for i in range(n):
        lines += [
            f"  svc-{i}:   # forward {i}",
            f"    target: {('service', 'deployment', 'statefulset', 'pod')[i % 4]}/svc-{i}",
            f"    targetPort: {'http' if i % 3 == 0 else 8000 + i % 100}",
            f"    localPort: {10000 + i}",
            f"    namespace: team-{i % 7}",
            f"    type: {('rest', 'rpc', 'web', 'other')[i % 4]}",
            "    swaggerPath: docs/swagger.json",
            "    apiPath: api/v1",
            f"    group: group-{i % 5}",
        ]
        if i % 10 == 0:
            lines.append("    context: staging")
    lines += ["monitoringInterval: 2s", "uiOptions:", "  refreshRate: 250ms", "  theme: dark"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The config at the default user path inside a temporary HOME (resolved via XDG)."""
    path = tmp_path / ".config" / "kportforward" / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(user_config_text())
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.delenv("KPORTFORWARD_CONFIG", raising=False)
    load_config.cache_clear()
    yield path
    load_config.cache_clear()


@pytest.mark.benchmark(group="config-load")
def test_cold_parse_200_forwards(benchmark, user_config: Path) -> None:
    def cold() -> object:
        load_config.cache_clear()
        return load_config()

    config = benchmark.pedantic(cold, rounds=60, iterations=1, warmup_rounds=3)
    assert len(config.forwards) == FORWARDS
    benchmark.extra_info["loader"] = _Loader.__name__


@pytest.mark.benchmark(group="config-load")
def test_cached_hit_200_forwards(benchmark, user_config: Path) -> None:
    first = load_config()
    # Many calls per timed round, so the timer's own overhead does not count as the hit's.
    config = benchmark.pedantic(load_config, rounds=2000, iterations=100, warmup_rounds=10)
    assert config is first
    assert load_config.cache_info().misses == 1


@pytest.mark.benchmark(group="config-load")
def test_cached_hit_named_by_env_var(
    benchmark, user_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same file named by $KPORTFORWARD_CONFIG: one environment lookup of a variable that is
    # set, instead of lookups of unset ones (CPython's os.environ.get raises and catches KeyError
    # inside for an unset variable, which costs more than a set one).
    monkeypatch.setenv("KPORTFORWARD_CONFIG", str(user_config))
    first = load_config()
    config = benchmark.pedantic(load_config, rounds=2000, iterations=100, warmup_rounds=10)
    assert config is first


def ratio(report: dict) -> str:
    """The cold/hit ratio of medians and of minima from a --benchmark-json report."""
    stats = {b["name"]: b["stats"] for b in report["benchmarks"] if b["group"] == "config-load"}
    cold = stats["test_cold_parse_200_forwards"]
    lines = [f"cold: median {cold['median'] * 1e3:.2f} ms, min {cold['min'] * 1e3:.2f} ms"]
    for name in ("test_cached_hit_200_forwards", "test_cached_hit_named_by_env_var"):
        hit = stats[name]
        lines.append(
            f"{name}: median {hit['median'] * 1e6:.2f} µs, min {hit['min'] * 1e6:.2f} µs; "
            f"cold/hit = {cold['median'] / hit['median']:,.0f}x (medians), "
            f"{cold['min'] / hit['min']:,.0f}x (minima)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(ratio(json.loads(Path(sys.argv[1]).read_text())))
