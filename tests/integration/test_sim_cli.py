"""``kportforward sim``: foreground server for kubectl by hand."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.conftest import run_cli


def _start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kportforward", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("press Ctrl-C"):
            break
    return proc, lines


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_sim_command_serves_kubectl_and_stops_on_ctrl_c(kubectl, tmp_path, tls) -> None:
    kubeconfig = tmp_path / "out" / "kubeconfig"
    proc, lines = _start("--kubeconfig-out", str(kubeconfig), *(["--tls"] if tls else []))
    try:
        assert lines[0].startswith(
            f"simulator listening on {'https' if tls else 'http'}://127.0.0.1:"
        )
        assert lines[1] == f"kubeconfig: {kubeconfig} (context kportforward-sim)"
        assert f"kubectl --kubeconfig {kubeconfig} port-forward --address 127.0.0.1" in lines[3]
        got = subprocess.run(
            [
                kubectl,
                "--kubeconfig",
                str(kubeconfig),
                "get",
                "pods",
                "-n",
                "payments",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert got.returncode == 0, got.stderr
        assert "pod/fraud-model-0" in got.stdout.split()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip().endswith("stopping")


def test_bad_world_file_is_one_line_and_exit_2(tmp_path) -> None:
    world = tmp_path / "world.yaml"
    world.write_text("namespaces:\n  default:\n    pods:\n      - name: p\n        ports: [0]\n")
    result = run_cli("sim", "--world", str(world))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(world) in lines[0] and "port must be a number from 1 to 65535" in lines[0]


def test_missing_world_file(tmp_path) -> None:
    result = run_cli("sim", "--world", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read the world file" in result.stderr


def test_busy_port_is_one_line_and_leaves_nothing_behind(tmp_path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    try:
        result = run_cli("sim", "--port", str(port), env={"TMPDIR": str(scratch)})
    finally:
        holder.close()
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"kportforward: error: cannot listen on 127.0.0.1:{port}: address already in use "
        "— choose another --port, or leave it out to take any free port"
    )
    assert list(scratch.iterdir()) == []  # the simulator's temporary workdir is gone
