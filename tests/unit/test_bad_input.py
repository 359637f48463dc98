"""Bad input at the command line, through the real entry point: every case exits 2 with exactly one
line on stderr naming what is wrong (and what to do), no traceback, and nothing created or changed
in the hermetic HOME, in the working directory or next to the inputs.

The config corpus is tests/unit/test_config_bad.py (tests/data/config/bad), the kubeconfig corpus
for ``run`` is tests/unit/test_kubeconfig.py; this file adds the CLI-level cases: arguments,
kubectl, log file, output directories, config files that are not config files, and kubeconfig
problems for the dashboard. Cases once broken live in tests/integration/test_regressions.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DATA, run_cli

KUBECONFIGS = DATA / "kubeconfig"
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
GOOD_CONFIG = (
    "portForwards:\n  api:\n    target: service/api\n    targetPort: 80\n    localPort: 18080\n"
)


@dataclass(frozen=True)
class Case:
    """One bad command line: ``args`` with ``{in}`` for the inputs directory; every string in
    ``expect`` must appear in the single stderr line."""

    id: str
    args: tuple[str, ...]
    expect: tuple[str, ...]
    needs_non_root: bool = False


C = Case
CASES = [
    # -- arguments
    C("unknown-flag", ("--no-such-flag",), ("--no-such-flag", "--help")),
    C("unknown-flag-on-run", ("run", "--bogus"), ("--bogus", "--help")),
    C("unknown-flag-on-demo", ("demo", "--headless", "--forwards", "3"), ("--forwards",)),
    C("unknown-command", ("frobnicate",), ("frobnicate", "--help")),
    C("typo-command", ("rnu",), ("rnu",)),
    C("profile-duration-word", ("profile", "--duration", "x"), ("--duration", "'x'", "30s")),
    C("profile-duration-negative", ("profile", "--duration=-1s"), ("--duration", "-1s")),
    C("profile-duration-zero", ("profile", "--duration", "0s"), ("--duration", "longer than 0")),
    C("profile-duration-no-value", ("profile", "--duration"), ("--duration",)),
    C("demo-duration-word", ("demo", "--headless", "--duration", "soon"), ("--duration", "soon")),
    C("demo-duration-negative", ("demo", "--headless", "--duration=-1s"), ("--duration", "-1s")),
    C("profile-forwards-zero", ("profile", "--forwards", "0"), ("--forwards", "at least 1")),
    C("profile-forwards-negative", ("profile", "--forwards", "-3"), ("--forwards", "-3")),
    C("profile-forwards-word", ("profile", "--forwards", "many"), ("--forwards", "many")),
    C("profile-churn-negative", ("profile", "--churn", "-1"), ("--churn",)),
    C("sim-port-out-of-range", ("sim", "--port", "99999"), ("--port", "99999")),
    C("sim-world-missing", ("sim", "--world", "{in}/no-world.yaml"), ("no-world.yaml",)),
    # -- kubectl
    C("run-kubectl-missing", ("run", "--config", "{in}/good.yaml", "--kubectl", "{in}/nope"),
      ("--kubectl", "nope", "no such file")),
    C("run-kubectl-directory", ("run", "--config", "{in}/good.yaml", "--kubectl", "{in}/adir"),
      ("--kubectl", "adir", "not an executable")),
    C("run-kubectl-not-executable",
      ("run", "--config", "{in}/good.yaml", "--kubectl", "{in}/plain-kubectl"),
      ("--kubectl", "plain-kubectl", "not an executable")),
    C("dashboard-kubectl-missing", ("--config", "{in}/good.yaml", "--kubectl", "{in}/nope"),
      ("--kubectl", "nope")),
    C("dashboard-kubectl-not-executable",
      ("dashboard", "--config", "{in}/good.yaml", "--kubectl", "{in}/plain-kubectl"),
      ("--kubectl", "plain-kubectl")),
    C("demo-kubectl-missing", ("demo", "--kubectl", "{in}/nope"), ("--kubectl", "nope")),
    C("demo-headless-kubectl-directory", ("demo", "--headless", "--kubectl", "{in}/adir"),
      ("--kubectl", "adir")),
    C("profile-kubectl-missing", ("profile", "--kubectl", "{in}/nope"), ("kubectl", "nope")),
    # -- output paths (the --log-file cases are in tests/integration/test_regressions.py)
    C("profile-output-is-a-file", ("profile", "--output", "{in}/good.yaml"), ("--output",)),
    C("profile-output-under-a-file", ("profile", "--output", "{in}/good.yaml/out"),
      ("--output",)),
    C("profile-output-unwritable-proc", ("profile", "--output", "/proc/kportforward-out"),
      ("--output", "/proc/kportforward-out")),
    C("profile-output-read-only-dir", ("profile", "--output", "{in}/ro/out"), ("--output",),
      needs_non_root=True),
    C("profile-memprofile-is-a-dir",
      ("profile", "--output", "{in}/adir", "--memprofile", "{in}/adir"), ("--memprofile",)),
    # -- --config that is not a config file
    C("config-is-a-directory", ("run", "--config", "{in}/adir"), ("adir", "directory")),
    C("config-missing", ("run", "--config", "{in}/missing.yaml"), ("missing.yaml", "not found")),
    C("config-binary-garbage", ("run", "--config", "{in}/garbage.bin"), ("garbage.bin",)),
    C("config-huge", ("check", "--config", "{in}/huge.yaml"), ("huge.yaml", "too large")),
    C("config-unreadable-proc", ("check", "--config", "/proc/self/mem"), ("/proc/self/mem",)),
    C("config-unreadable-mode", ("run", "--config", "{in}/secret.yaml"), ("secret.yaml",),
      needs_non_root=True),
    C("dashboard-config-missing", ("--config", "{in}/missing.yaml"), ("missing.yaml",)),
    C("config-empty-forwards-run", ("run", "--config", "{in}/empty.yaml"),
      ("no forwards", "portForwards")),
    # -- kubeconfig problems for the dashboard (run's are in tests/unit/test_kubeconfig.py)
    C("dashboard-kubeconfig-missing",
      ("--config", "{in}/good.yaml", "--kubeconfig", "{in}/no-kubeconfig"),
      ("no-kubeconfig", "does not exist")),
    C("dashboard-kubeconfig-corrupt",
      ("--config", "{in}/good.yaml", "--kubeconfig", str(KUBECONFIGS / "corrupt.yaml")),
      ("corrupt.yaml",)),
    C("dashboard-kubeconfig-garbage",
      ("--config", "{in}/good.yaml", "--kubeconfig", str(KUBECONFIGS / "garbage.bin")),
      ("garbage.bin",)),
    C("dashboard-kubeconfig-no-current-context",
      ("--config", "{in}/good.yaml", "--kubeconfig", str(KUBECONFIGS / "no_current_context.yaml")),
      ("no current context", "use-context")),
    C("dashboard-kubeconfig-missing-cluster",
      ("--config", "{in}/good.yaml", "--kubeconfig", str(KUBECONFIGS / "missing_cluster.yaml")),
      ("cluster 'ghost'",)),
    C("dashboard-kubeconfig-missing-user",
      ("--config", "{in}/good.yaml", "--kubeconfig", str(KUBECONFIGS / "missing_user.yaml")),
      ("user 'ghost'",)),
    C("dashboard-kubeconfig-is-a-directory",
      ("--config", "{in}/good.yaml", "--kubeconfig", "{in}/adir"), ("adir",)),
    C("run-kubeconfig-missing-with-verbose",
      ("run", "-v", "--config", "{in}/good.yaml", "--kubeconfig", "{in}/no-kubeconfig"),
      ("no-kubeconfig",)),
]  # fmt: skip


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """The input files every case may name, in their own directory."""
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.yaml").write_text(GOOD_CONFIG)
    (d / "empty.yaml").write_text("portForwards: {}\n")
    (d / "adir").mkdir()
    plain = d / "plain-kubectl"
    plain.write_text("#!/bin/sh\necho should never run >&2\n")
    plain.chmod(0o644)
    (d / "garbage.bin").write_bytes(bytes(range(256)) * 8)
    with (d / "huge.yaml").open("w") as fh:  # ~12 MB of well-formed YAML
        fh.write("portForwards:\n")
        entry = "    target: service/a\n    targetPort: 80\n    localPort: {}\n"
        for i in range(160_000):
            fh.write(f"  f{i}:\n" + entry.format(1 + i % 60000))
    secret = d / "secret.yaml"
    secret.write_text(GOOD_CONFIG)
    secret.chmod(0)
    ro = d / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return d


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a digest of its content (or its kind)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = f"dir:{p.stat().st_mode:o}"
        else:
            try:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            except PermissionError:
                out[rel] = f"unreadable:{p.stat().st_size}:{p.stat().st_mtime_ns}"
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_command_line_is_one_line_exit_2_and_writes_nothing(
    case: Case, inputs: Path, tmp_path: Path, hermetic_env: Path
) -> None:
    if case.needs_non_root and AS_ROOT:
        pytest.skip("root reads and writes regardless of permissions")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    args = [a.replace("{in}", str(inputs)) for a in case.args]
    before = (tree(hermetic_env), tree(inputs), tree(cwd))
    result = run_cli(*args, cwd=cwd, timeout=30)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert lines[0].startswith("kportforward: error: "), lines[0]
    for part in case.expect:
        assert part.replace("{in}", str(inputs)) in lines[0], (part, lines[0])
    assert result.stdout == ""
    assert (tree(hermetic_env), tree(inputs), tree(cwd)) == before


def test_the_corpus_across_the_project_has_at_least_forty_cases() -> None:
    config_bad = [p for p in (DATA / "config" / "bad").iterdir()]
    kubeconfigs = [p for p in KUBECONFIGS.iterdir() if p.is_file()]
    assert len(CASES) + len(config_bad) + len(kubeconfigs) >= 40
    assert len(CASES) >= 40


def test_non_executable_kubectl_was_not_run(inputs: Path, tmp_path: Path) -> None:
    # The plain file says so on stderr if it is ever executed (e.g. through a shell).
    shutil.copy(inputs / "plain-kubectl", tmp_path / "kubectl")
    result = run_cli("run", "--config", str(inputs / "good.yaml"), "--kubectl",
                     str(tmp_path / "kubectl"), timeout=30)  # fmt: skip
    assert result.returncode == 2
    assert "should never run" not in result.stderr
