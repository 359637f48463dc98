"""Security: credentials never written anywhere, user-only files, loopback by default, exposure
only when configured (and marked), no shell anywhere, shell metacharacters never executed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml

from kportforward.core.config import load_config
from kportforward.core.states import ForwardState
from kportforward.sim import Simulator, generated_world
from kportforward.ui.presenters import EXPOSED_MARK, row_cells
from tests.conftest import REPO
from tests.integration.supervisor_helpers import Harness, free_ports, kubectls_of, make_supervisor

pytestmark = pytest.mark.integration

TOKEN = "kpf-sekrit-TOKEN-4b1d7e2c9a0f"
WRONG_TOKEN = "kpf-wrong-TOKEN-77aa0c3e5d21"


class Run:
    """``kportforward run ARGS`` in a subprocess; stdout lines collected by a thread."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kportforward", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.lines: list[str] = []
        self.err = ""
        self._out = threading.Thread(target=self._read, daemon=True)
        self._out.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def states(self) -> dict[str, str]:
        """The last state of each forward, from the JSON lines so far."""
        out = {}
        for line in list(self.lines):
            with contextlib.suppress(ValueError):
                ev = json.loads(line)
                if ev["event"] == "forward":
                    out[ev["forward"]] = ev["state"]
        return out

    def wait_for(self, pred: Callable[[dict[str, str]], bool], timeout: float = 60) -> None:
        """Poll until ``pred(states)``; fail with the output on timeout or early exit."""
        deadline = time.monotonic() + timeout
        while not pred(self.states()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(
                    f"never happened: {self.states()}\n{self.lines[-20:]}\n{self.err}"
                )
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, wait, collect stderr; SIGKILL if it will not go."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, self.err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.err = self.proc.communicate(timeout=5)
        self._out.join(5)
        deadline = time.monotonic() + 5
        while kubectls_of(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.proc.returncode


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def test_the_token_is_never_written_and_files_are_user_only(
    kubectl: str, sim_factory: Callable[..., Simulator], tmp_path: Path, hermetic_env: Path
) -> None:
    sim = sim_factory(generated_world(3), tls=True, token=TOKEN)
    assert sim.kubeconfig_path is not None
    wrong = sim.write_kubeconfig(tmp_path / "wrong-kubeconfig", token=WRONG_TOKEN)
    ports = free_ports(3)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "monitoringInterval": "300ms",
        "portForwards": {
            "good-0": {"target": "service/svc-000", "targetPort": 80, "localPort": ports[0]},
            "good-1": {"target": "service/svc-001", "targetPort": 9000, "localPort": ports[1]},
            # The same cluster through a kubeconfig with a wrong token: 401, Suspended.
            "bad-token": {"target": "service/svc-002", "targetPort": 80, "localPort": ports[2],
                          "kubeconfig": str(wrong)},
        },
    }))  # fmt: skip
    log_file = hermetic_env / "kpf.log"
    run = Run("-v", "--json", "--log-file", str(log_file), "--config", str(config),
              "--kubeconfig", str(sim.kubeconfig_path))  # fmt: skip
    try:
        run.wait_for(lambda s: s.get("good-0") == "Running" and s.get("good-1") == "Running"
                     and s.get("bad-token") == "Suspended")  # fmt: skip
        time.sleep(1.0)  # a few probe rounds, access probes and kubectl lines reach the log
    finally:
        code = run.stop()
    assert code == 0, run.err
    log_text = log_file.read_text()
    assert "DEBUG" in log_text, log_text  # -v really logged
    assert "401" in log_text, log_text  # ... including the rejected credentials

    written = {"stdout": "\n".join(run.lines), "stderr": run.err}
    for root in (hermetic_env, tmp_path):
        for path in _all_files(root):
            if path in (sim.kubeconfig_path, wrong):  # the inputs that hold the tokens
                continue
            written[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for where, text in written.items():
        for secret in (TOKEN, WRONG_TOKEN, TOKEN[-12:], WRONG_TOKEN[-12:]):
            assert secret not in text, f"credential found in {where}"

    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    # Any state file kportforward created under HOME is user-only too. (kubectl's own discovery
    # cache under KUBECACHEDIR follows kubectl's umask-based modes: not ours, but grepped above.)
    kube_cache = Path(os.environ["KUBECACHEDIR"])
    for path in _all_files(hermetic_env):
        if kube_cache in path.parents:
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is mode {mode:o}"


def test_a_pre_existing_log_file_is_not_widened(tmp_path: Path, hermetic_env: Path) -> None:
    from tests.conftest import run_cli

    log_file = hermetic_env / "kpf.log"
    result = run_cli("--log-file", str(log_file), "check", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600


def _listening(pid: int) -> set[tuple[str, int]]:
    with contextlib.suppress(psutil.Error):
        return {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
    return set()


async def test_loopback_by_default_and_explicit_exposure_is_honoured_and_marked(
    kubectl: str, sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = sim_factory(generated_world(3))
    ports = free_ports(3)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"portForwards": {
        "default-addr": {"target": "service/svc-000", "targetPort": 9000, "localPort": ports[0],
                         "namespace": "default"},
        "localhost": {"target": "service/svc-001", "targetPort": 9000, "localPort": ports[1],
                      "namespace": "default", "address": "localhost"},
        "exposed": {"target": "service/svc-002", "targetPort": 9000, "localPort": ports[2],
                    "namespace": "default", "address": "0.0.0.0"},
    }}))  # fmt: skip
    loaded = load_config(str(config))
    specs = {s.name: s for s in loaded.forwards}
    assert specs["default-addr"].address == "127.0.0.1"
    assert any("0.0.0.0" in str(w) for w in loaded.warnings)  # the loader says so, too
    h = Harness(make_supervisor(kubectl, str(sim.kubeconfig_path), loaded.forwards))
    try:
        await h.sup.start()
        await h.all_running()
        statuses = {s.name: s for s in h.sup.snapshot()}
        ours = _listening(os.getpid())  # the front doors: the user's ports are ours
        listen = {
            n: {(ip, port) for ip, port in ours if port == s.local_port}
            for n, s in statuses.items()
        }
        tunnels = {n: _listening(s.pid or 0) for n, s in statuses.items()}
    finally:
        await h.close()
    assert listen["default-addr"] == {("127.0.0.1", statuses["default-addr"].local_port)}
    assert {ip for ip, _ in listen["localhost"]} == {"127.0.0.1", "::1"} or {
        ip for ip, _ in listen["localhost"]
    } == {"127.0.0.1"}
    assert listen["exposed"] == {("0.0.0.0", statuses["exposed"].local_port)}
    # kubectl itself listens on loopback only, whatever the forward's address.
    for name, addrs in tunnels.items():
        assert addrs and {ip for ip, _ in addrs} == {"127.0.0.1"}, (name, addrs)
    now = time.time()
    assert EXPOSED_MARK in row_cells(statuses["exposed"], now).name
    assert row_cells(statuses["exposed"], now).exposed
    for name in ("default-addr", "localhost"):
        assert EXPOSED_MARK not in row_cells(statuses[name], now).name
        assert not row_cells(statuses[name], now).exposed


SHELL_PATTERNS = re.compile(
    r"shell\s*=\s*True|os\.system\s*\(|os\.popen\s*\(|create_subprocess_shell|"
    r"subprocess\.getoutput|subprocess\.getstatusoutput|os\.exec\w*\(\s*['\"]/bin/sh|pty\.spawn"
)


def test_no_shell_anywhere_in_the_package() -> None:
    hits = []
    for path in sorted((REPO / "kportforward").rglob("*.py")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if SHELL_PATTERNS.search(line):
                hits.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert hits == []


def test_shell_metacharacters_in_targets_and_namespaces_are_rejected(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    canary = tmp_path / "pwned"
    for key, value in (
        ("target", f"service/foo;touch {canary}"),
        ("target", f"service/$(touch {canary})"),
        ("namespace", f"$(touch {canary})"),
        ("namespace", "`touch pwned`"),
    ):
        entry = {"target": "service/foo", "targetPort": 80, "localPort": 18080, key: value}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"portForwards": {"a": entry}}))
        result = run_cli("run", "--config", str(config), cwd=tmp_path, timeout=30)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert key in result.stderr
        assert not canary.exists()


def test_shell_metacharacters_in_name_context_and_kubeconfig_path_reach_kubectl_verbatim(
    kubectl: str, sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    # Names that a shell would execute, used for real: the forward must work, nothing must run.
    context = "$(touch pwned-context)"
    sim = sim_factory(generated_world(1), context_name=context)
    assert sim.kubeconfig_path is not None
    odd_kubeconfig = tmp_path / "kc`touch pwned-kubeconfig`;touch pwned-semicolon"
    odd_kubeconfig.write_bytes(sim.kubeconfig_path.read_bytes())
    (port,) = free_ports(1)
    name = "web$(touch pwned-name)"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"portForwards": {name: {
        "target": "service/svc-000", "targetPort": 80, "localPort": port, "namespace": "default",
        "context": context, "kubeconfig": str(odd_kubeconfig),
    }}}))  # fmt: skip
    run = Run("--json", "--config", str(config), cwd=tmp_path)
    try:
        run.wait_for(lambda s: s.get(name) == ForwardState.RUNNING.value)
        kubectl_argv = [p.cmdline() for p in kubectls_of(run.proc.pid)]
    finally:
        run.stop()
    assert any(context in argv and str(odd_kubeconfig) in argv for argv in kubectl_argv)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")) == []
    assert not any(Path(os.getcwd(), n).exists() for n in ("pwned-context", "pwned-name"))
