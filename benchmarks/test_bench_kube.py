"""Micro-benchmarks for the kube layer's hot paths (run: pytest benchmarks --benchmark-only).

- ``KubeconfigWatcher.current()`` when nothing changed: what the supervisor pays per poll.
- ``load_kubeconfig``: a full parse of a kubeconfig with 20 contexts (on change only).
- ``pod_info``: one watch event's pod JSON reduced to a PodInfo.
"""

from __future__ import annotations

from pathlib import Path

from kportforward.kube.kubeconfig import KubeconfigWatcher, load_kubeconfig
from kportforward.kube.pods import pod_info


def _kubeconfig(path: Path, n: int = 20) -> Path:
    lines = ["apiVersion: v1", "kind: Config", "current-context: ctx-0", "clusters:"]
    for i in range(n):
        lines += [f"- name: c{i}", "  cluster:", f"    server: https://10.0.0.{i}:6443"]
        lines += ["    certificate-authority-data: " + "QUJD" * 300]
    lines.append("contexts:")
    for i in range(n):
        lines += [f"- name: ctx-{i}", "  context:", f"    cluster: c{i}", f"    user: u{i}"]
    lines.append("users:")
    for i in range(n):
        lines += [f"- name: u{i}", "  user:", f"    token: t{i}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bench_watcher_current_unchanged(benchmark, tmp_path: Path) -> None:
    watcher = KubeconfigWatcher(str(_kubeconfig(tmp_path / "config")))
    watcher.current()
    result = benchmark(watcher.current)
    assert result.current_context == "ctx-0" and watcher.loads == 1


def test_bench_load_kubeconfig(benchmark, tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config")
    result = benchmark(load_kubeconfig, [path])
    assert len(result.contexts) == 20


def test_bench_pod_info(benchmark) -> None:
    obj = {
        "metadata": {"name": "web-1", "namespace": "default", "resourceVersion": "42",
                     "uid": "u", "labels": {"app": "web", "tier": "front"}},
        "status": {"phase": "Running", "conditions": [
            {"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}]},
    }  # fmt: skip
    info = benchmark(pod_info, obj)
    assert info.ready
