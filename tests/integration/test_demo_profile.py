"""``kportforward demo --headless`` and ``kportforward profile``: the real CLI, the real kubectl."""

from __future__ import annotations

import json
import os
import pstats
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from kportforward.supervisor.reclaim import OWNER_ENV
from tests.conftest import run_cli


def _our_kubectls(owner: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if "port-forward" in (proc.info["cmdline"] or []) and proc.environ().get(
                OWNER_ENV
            ) == str(owner):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.usefixtures("kubectl")
def test_demo_headless_serves_real_pods_and_cleans_up(hermetic_env: Path) -> None:
    before = sorted(p.relative_to(hermetic_env) for p in hermetic_env.rglob("*"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kportforward", "demo", "--headless", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events: list[dict] = []
    reader = threading.Thread(
        target=lambda: events.extend(json.loads(line) for line in proc.stdout),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:

        def state(name: str) -> dict | None:
            return next(
                (e for e in reversed(events) if e.get("forward") == name and "state" in e), None
            )

        web = _wait(
            lambda: (e := state("web-frontend")) and e["state"] == "Running" and e,
            60,
            "web-frontend Running",
        )
        body = urllib.request.urlopen(f"http://127.0.0.1:{web['localPort']}/", timeout=10).read()
        assert b"web-frontend" in body  # the HTTP backend names the pod that served it
        failed = _wait(
            lambda: (e := state("legacy-reports")) and e["state"] == "Failed" and e,
            60,
            "legacy-reports Failed",
        )
        assert 'services "legacy-reports" not found' in failed["reason"]
        _wait(
            lambda: (e := state("search-indexer")) and e["state"] == "Running",
            60,
            "the slow service to come up",
        )
        assert _our_kubectls(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert proc.returncode == 0, proc.stderr.read()  # type: ignore[union-attr]
    assert _our_kubectls(proc.pid) == []
    tmpdir = Path(
        next(line for line in proc.stderr.read().splitlines() if "kubeconfig" in line)  # type: ignore[union-attr]
        .split("kubeconfig ", 1)[1]
        .split(";", 1)[0]
    ).parent
    assert not tmpdir.exists()
    # Nothing of the user's was written: the hermetic HOME is exactly as before.
    assert sorted(p.relative_to(hermetic_env) for p in hermetic_env.rglob("*")) == before


@pytest.mark.usefixtures("kubectl")
def test_profile_writes_sane_reports(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = run_cli(
        "profile",
        "--duration",
        "8s",
        "--forwards",
        "6",
        "--churn",
        "1",
        "--output",
        str(out),
        "--cpuprofile",
        str(tmp_path / "go-style.prof"),
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert "reports:" in result.stdout
    stats = pstats.Stats(str(out / "cpu.prof"))
    assert stats.total_calls > 1000  # type: ignore[attr-defined]
    pstats.Stats(str(tmp_path / "go-style.prof"))
    cpu = (out / "cpu.txt").read_text()
    assert "cumulative" in cpu and "own time" in cpu
    memory = (out / "memory.txt").read_text()
    assert "peak" in memory and "growths" in memory
    summary = json.loads((out / "summary.json").read_text())
    assert summary["forwards"] == 6
    assert summary["events"] > 0
    assert summary["kubectl_killed"] >= 1
    assert summary["restarts"] >= summary["kubectl_killed"]
    assert summary["rss_bytes"]["start"] > 0
    assert summary["rss_bytes"]["peak"] >= summary["rss_bytes"]["end"] > 0
    assert summary["cpu_seconds"]["kubectl_children"] > 0
    assert summary["caches"]["ports"]["misses"] > 0
    assert _our_kubectls(os.getpid()) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--forwards", "0"], "--forwards"),
        (["--churn", "-1"], "--churn"),
        (["--duration", "soon"], "--duration"),
        (["--output", "/proc/nope/out"], "output directory"),
        (["--cpuprofile", "/nonexistent-dir/cpu.prof"], "--cpuprofile"),
    ],
)
def test_profile_bad_input_is_one_line_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    result = run_cli("profile", "--output", str(tmp_path / "o"), *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert needle in result.stderr
