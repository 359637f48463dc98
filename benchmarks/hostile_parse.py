"""How fast kubeconfig parsing refuses a merge-key bomb and accepts a big real-shaped kubeconfig.

Run: ``python benchmarks/hostile_parse.py`` (prints two lines; figures quoted in
docs/PERFORMANCE.md). Not a test: nothing is asserted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from kportforward.errors import KubeconfigError
from kportforward.kube.kubeconfig import load_kubeconfig


def main() -> None:
    """Time the refusal of a 12-level, fan-4 merge bomb and the parse of a ~3.9 MiB kubeconfig."""
    with tempfile.TemporaryDirectory(prefix="kpf-bench-") as tmp:
        _run(Path(tmp))


def _run(d: Path) -> None:
    lines = ["l0: &l0 {a: 1, b: 2, c: 3, d: 4}"]
    for i in range(1, 12):
        lines.append(f"l{i}: &l{i} {{<<: [{', '.join([f'*l{i - 1}'] * 4)}], k{i}: 1}}")
    bomb = d / "bomb"
    bomb.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    try:
        load_kubeconfig([bomb])
    except KubeconfigError:
        print(f"merge bomb ({bomb.stat().st_size} bytes) refused in "
              f"{(time.perf_counter() - start) * 1000:.1f} ms")  # fmt: skip
    cert = "LS0t" + "A" * 1500
    parts = ["apiVersion: v1", "clusters:"]
    n = 0
    while sum(map(len, parts)) < 3.9 * 2**20:
        parts.append(f"- name: c{n}\n  cluster:\n    server: https://10.0.{n % 250}.1\n"
                     f"    certificate-authority-data: {cert}")  # fmt: skip
        n += 1
    parts.append("contexts:\n- name: x\n  context: {cluster: c0}\ncurrent-context: x")
    big = d / "big"
    big.write_text("\n".join(parts) + "\n")
    start = time.perf_counter()
    kc = load_kubeconfig([big])
    print(f"{big.stat().st_size / 2**20:.1f} MiB kubeconfig, {len(kc.clusters)} clusters, "
          f"parsed in {time.perf_counter() - start:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
