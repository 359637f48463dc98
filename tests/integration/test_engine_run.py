"""Acceptance tests for the engine (issue 11) through the CLI: ``run --json`` and ``check``.

``run --json`` prints one JSON object per line; these tests read only what the issue promises:
a Cooldown line carries ``retryAt`` (defect 1), forwards with an unknown context fail alone and
``run`` exits 2 when none can start (defect 5), reload warnings reach stdout (defect 8).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kportforward.sim import generated_world
from tests.conftest import run_cli
from tests.integration.supervisor_helpers import free_ports, kubectls_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class RunJson:
    """``kportforward run --json`` in a subprocess; stdout parsed line by line in a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kportforward", "run", "--json", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        self.objects: list[dict[str, Any]] = []
        self.other: list[str] = []  # anything on stdout that is not one JSON object
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                self.other.append(line.rstrip("\n"))
                continue
            (self.objects if isinstance(obj, dict) else self.other).append(obj)

    def wait_for(self, what: str, pred, timeout: float = 30.0) -> dict[str, Any]:
        """The first object satisfying ``pred``; fails with everything seen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for obj in list(self.objects):
                if pred(obj):
                    return obj
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(
                    f"never saw {what}; exit={self.proc.returncode} objects={self.objects[-8:]} "
                    f"other={self.other[-4:]} stderr={err[-2000:]}"
                )
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGINT, then the exit code (no kubectl may be left)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(15)
        self._reader.join(5)
        deadline = time.monotonic() + 10
        while kubectls_of(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kubectls_of(self.proc.pid) == []
        return code

    def kill(self) -> None:
        """SIGKILL our child if it still runs (its kubectls die with it: parent-death signal)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def state_is(forward: str, state: str):
    """A predicate: a forward line for ``forward`` in ``state``."""
    return lambda obj: obj.get("forward") == forward and obj.get("state") == state


def epoch(value: Any) -> float:
    """``retryAt`` as epoch seconds, whether a number or ISO-8601."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def write_config(path: Path, forwards: dict[str, dict[str, Any]]) -> None:
    """A config file (atomically replaced, as editors do)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"monitoringInterval": "200ms", "portForwards": forwards}))
    os.replace(tmp, path)


def forward(svc: str, port: int, **extra: Any) -> dict[str, Any]:
    """One forward to ``svc``'s echo port."""
    return {"target": f"service/{svc}", "targetPort": 9000, "localPort": port,
            "namespace": "default", **extra}  # fmt: skip


def test_cooldown_line_carries_retry_at(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(1))
    sim.refuse_backend("default", sim.pods("default")[0], 9000)
    config = tmp_path / "kpf.yaml"
    (port,) = free_ports(1)
    write_config(config, {"api": forward("svc-000", port)})
    run = RunJson("--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))
    try:
        line = run.wait_for("a Cooldown line", state_is("api", "Cooldown"), 20)
        assert "retryAt" in line, line
        assert epoch(line["retryAt"]) > line["ts"], line
        assert run.stop() == 0
    finally:
        run.kill()


def test_run_exits_2_naming_every_forward_whose_context_is_unknown(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(1), context_name="alpha")
    config = tmp_path / "kpf.yaml"
    p1, p2 = free_ports(2)
    write_config(
        config,
        {
            "first-bad": forward("svc-000", p1, context="nope"),
            "second-bad": forward("svc-000", p2, context="nada"),
        },
    )
    result = run_cli(
        "run", "--config", str(config), "--kubeconfig", str(sim.kubeconfig_path), timeout=30
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for name, context in (("first-bad", "nope"), ("second-bad", "nada")):
        assert name in result.stderr and context in result.stderr, result.stderr
    assert "alpha" in result.stderr, result.stderr  # the contexts that do exist


def test_run_starts_the_others_when_one_context_is_unknown(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(1), context_name="alpha")
    config = tmp_path / "kpf.yaml"
    p1, p2 = free_ports(2)
    write_config(
        config, {"good": forward("svc-000", p1), "bad": forward("svc-000", p2, context="nope")}
    )
    run = RunJson("--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))
    try:
        run.wait_for("good Running", state_is("good", "Running"), 30)
        bad = run.wait_for("bad Failed", state_is("bad", "Failed"), 10)
        assert "nope" in bad["reason"] and "alpha" in bad["reason"], bad
        assert run.stop() == 0
    finally:
        run.kill()


def test_check_exits_2_naming_the_forward_whose_context_is_unknown(sim_factory, tmp_path):
    sim = sim_factory(generated_world(1), context_name="alpha")
    config = tmp_path / "kpf.yaml"
    p1, p2 = free_ports(2)
    write_config(
        config, {"good": forward("svc-000", p1), "bad": forward("svc-000", p2, context="nope")}
    )
    result = run_cli("check", "--config", str(config), env={"KUBECONFIG": str(sim.kubeconfig_path)})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "bad" in result.stderr and "nope" in result.stderr, result.stderr


def test_reload_warning_reaches_run_json(kubectl, sim_factory, tmp_path):
    sim = sim_factory(generated_world(1))
    config = tmp_path / "kpf.yaml"
    (port,) = free_ports(1)
    write_config(config, {"api": forward("svc-000", port)})
    run = RunJson("--config", str(config), "--kubeconfig", str(sim.kubeconfig_path))
    try:
        running = run.wait_for("api Running", state_is("api", "Running"), 30)
        write_config(config, {"api": forward("svc-000", port, namespce="default")})

        def warning(obj: dict[str, Any]) -> bool:
            kind = str(obj.get("event", obj.get("type", ""))).lower()
            return ("reload" in kind or "notice" in kind) and "did you mean" in json.dumps(obj)

        run.wait_for("a reload line with the warning", warning, 15)
        # The forward itself was not touched by a warning: nothing about it after the reload.
        time.sleep(1.0)
        at = next(i for i, o in enumerate(run.objects) if warning(o))
        assert not [o for o in run.objects[at:] if o.get("forward") == "api"]
        assert running
        assert run.stop() == 0
    finally:
        run.kill()
