"""Shared fixtures. Every test is hermetic: temporary HOME, XDG dirs, KUBECONFIG, KUBECACHEDIR."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME, XDG dirs, KUBECONFIG and KUBECACHEDIR into a fresh temporary directory."""
    home = tmp_path_factory.mktemp("home")
    for name, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(home / sub))
    # The control socket's directory: short (a socket path must fit ~104 bytes), private, per
    # test, and apart from HOME (tests that check "no file written" watch HOME).
    run = tmp_path_factory.mktemp("run")
    run.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", str(home / ".kube" / "config"))
    monkeypatch.setenv("KUBECACHEDIR", str(home / ".kube" / "cache"))
    monkeypatch.delenv("KPORTFORWARD_CONFIG", raising=False)
    monkeypatch.delenv("KUBECTL_PORT_FORWARD_WEBSOCKETS", raising=False)
    return home


@pytest.fixture
def kubectl() -> str:
    """The real kubectl; skipped without it, failed if KPORTFORWARD_REQUIRE_KUBECTL=1."""
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("KPORTFORWARD_REQUIRE_KUBECTL") == "1":
            pytest.fail("kubectl not found on PATH and KPORTFORWARD_REQUIRE_KUBECTL=1")
        pytest.skip("kubectl not found on PATH")
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60, **kw):
    """Run ``python -m kportforward ARGS`` in a subprocess with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "kportforward", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **kw,
    )


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago on 127.0.0.1 (all bound at once)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
