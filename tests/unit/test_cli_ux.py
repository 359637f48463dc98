"""The CLI corpus of issue 15: every rejected combination is exit 2 with one line; each
subcommand's help lists only the options it uses; init, add and discover from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kportforward.cli import build_parser, main


def run_cli(
    *argv: str, stdin: int | None = subprocess.DEVNULL, **kw
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kportforward", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=stdin,
        check=False,
        **kw,
    )


REJECTED = [
    (["demo", "--json"], "--json only applies with --headless"),
    (["demo", "--duration", "2s"], "--duration only applies with --headless"),
    (["demo", "--json", "--duration", "2s"], "--json and --duration only apply with --headless"),
    (["--kubeconfig", "/nonexistent/kpf-x", "sim"], "--kubeconfig does not apply to sim"),
    (["--config", "/nonexistent/kpf-x", "demo", "--headless"], "--config does not apply to demo"),
    (["--kubectl", "/nonexistent/kpf-x", "init"], "--kubectl does not apply to init"),
    (["-n", "shop", "sim"], "-n/--namespace does not apply to sim"),
    (["sim", "--kubeconfig", "/nonexistent/kpf-x"], "unrecognized arguments: --kubeconfig"),
    (["version", "--config", "/nonexistent/kpf-x"], "unrecognized arguments: --config"),
    (["completion", "tcsh"], "invalid choice: 'tcsh'"),
    (["add", "--all", "web"], "--all and SERVICE names exclude each other"),
    ([], "the dashboard needs a terminal"),
    (["dashboard"], "the dashboard needs a terminal"),
    (["demo"], "the demo needs a terminal"),
]


@pytest.mark.parametrize(
    ("argv", "words"), REJECTED, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_rejected_combinations_are_exit_2_and_one_line(argv: list[str], words: str) -> None:
    done = run_cli(*argv)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr
    assert "Traceback" not in done.stderr and "\x1b[" not in done.stdout  # no escape codes


@pytest.mark.parametrize(
    ("command", "has", "has_not"),
    [
        (
            "sim",
            ["--log-file", "--kubeconfig-out"],
            ["--kubeconfig ", "--kubectl", "--config", "--context"],
        ),
        ("version", [], ["--kubeconfig", "--kubectl", "--config", "--log-file"]),
        ("init", [], ["--kubeconfig", "--kubectl", "--config"]),
        ("completion", [], ["--kubeconfig", "--config"]),
        ("demo", ["--kubectl", "--headless"], ["--kubeconfig", "--config ", "--context"]),
        ("run", ["--config", "--kubeconfig", "--kubectl", "--context", "-n NS"], []),
        ("check", ["--offline", "--kubeconfig", "--kubectl"], []),
        ("add", ["--context", "--namespace", "--dry-run", "--all"], ["--kubectl"]),
        ("discover", ["--context", "--namespace", "--json"], ["--kubectl", "--config "]),
    ],
)
def test_each_subcommands_help_lists_only_its_options(
    command: str, has: list[str], has_not: list[str]
) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    text = sub.choices[command].format_help()  # type: ignore[attr-defined]
    for option in has:
        assert option in text, (command, option)
    for option in has_not:
        assert option not in text, (command, option)


def test_init_writes_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    path = tmp_path / "kpf" / "config.yaml"
    monkeypatch.setenv("KPORTFORWARD_CONFIG", str(path))
    assert main(["init"]) == 0
    assert path.read_text().startswith("# kportforward config")
    assert main(["init"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already there; init never overwrites one" in err[0]


def test_check_looks_at_kubeconfig_contexts_and_kubectl(tmp_path: Path) -> None:
    import json
    import shutil

    config = tmp_path / "config.yaml"
    config.write_text(
        "portForwards:\n  a:\n    target: service/a\n    targetPort: 80\n    localPort: 18001\n"
    )
    missing = str(tmp_path / "nonexistent")
    done = run_cli("check", "--config", str(config), "--kubeconfig", missing)
    assert done.returncode == 2 and "nonexistent" in done.stderr, done.stderr
    done = run_cli("check", "--config", str(config), "--kubeconfig", missing, "--json")
    doc = json.loads(done.stdout)
    assert done.returncode == 2 and doc["ok"] is False and "nonexistent" in str(doc["errors"])
    done = run_cli("check", "--config", str(config), "--kubeconfig", missing, "--offline")
    assert done.returncode == 0, done.stderr
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
        "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "users:\n- name: u\n  user: {}\n"
        "contexts:\n- name: dev\n  context: {cluster: c, user: u}\n"
    )
    done = run_cli(
        "check", "--config", str(config), "--kubeconfig", str(kubeconfig), "--kubectl", "/bin/false"
    )
    assert done.returncode == 2 and "/bin/false is not kubectl" in done.stderr
    if shutil.which("kubectl"):
        done = run_cli("check", "--config", str(config), "--kubeconfig", str(kubeconfig))
        assert done.returncode == 0 and "kubectl v1." in done.stderr, done.stderr
