"""Exec credential plugins, run like client-go runs them, but bounded and never left behind.

- Bounded in time: the plugin's process group is killed at the caller's deadline.
- Never orphaned: on Linux the plugin gets a parent-death signal (``setpriv --pdeathsig KILL``,
  exec in place), so even a SIGKILLed kportforward takes it along; every plugin still running is
  killed with its whole process group (its own children too) when the interpreter exits (Ctrl-C
  during the startup check), on SIGTERM/SIGHUP while ``plugin_signal_guard()`` is active (every
  access probe holds it), or when ``terminate_exec_plugins()`` is called.
- Never leaks: its stderr reaches a message only after ``logs.redact_strict`` and after removing
  the values of its ``env`` entries, since plugins print tokens on stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from kportforward.kube.classify import KubeApiError, first_line
from kportforward.logs import redact_strict
from kportforward.platform import current
from kportforward.platform.guard import default_guard

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def terminate_exec_plugins() -> int:
    """SIGKILL every running exec plugin's process group; how many there were. Signal-safe enough
    to call from a signal handler (no locks taken that a handler could interrupt)."""
    count = 0
    try:
        procs = list(_live)
    except RuntimeError:  # changed size while being copied (another thread): copy again
        procs = list(_live)
    for proc in procs:
        if proc.returncode is None:
            _kill_group(proc.pid)
            count += 1
    return count


def _kill_group(pid: int) -> None:
    """Kill the plugin and its whole group now, the platform's way (SIGKILL to the group on
    POSIX, TerminateProcess on the tree on Windows)."""
    from kportforward.platform import current

    platform = current()
    with contextlib.suppress(OSError):
        platform.signal(pid, platform.stop_plan()[-1])


atexit.register(terminate_exec_plugins)

_guard_depth = 0
_guard_saved: dict[int, Any] = {}
_GUARDED = tuple(
    sig for sig in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if sig
)


def _end_plugins_and_die(signum: int, frame: Any) -> None:
    terminate_exec_plugins()
    # Then die of the same signal, as the default disposition would have.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def plugin_signal_guard() -> Iterator[None]:
    """While active (main thread only; nestable), SIGTERM/SIGHUP with their default disposition
    first kill every running exec plugin's process group, then end the process as before.

    Without it a plugin's own children would outlive a SIGTERMed kportforward (the parent-death
    signal reaches the plugin itself only). Handlers someone else installed are left alone.
    """
    global _guard_depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _guard_depth == 0:
        for sig in _GUARDED:
            if signal.getsignal(sig) is signal.SIG_DFL:
                _guard_saved[sig] = signal.signal(sig, _end_plugins_and_die)
    _guard_depth += 1
    try:
        yield
    finally:
        _guard_depth -= 1
        if _guard_depth == 0:
            for sig, old in _guard_saved.items():
                if signal.getsignal(sig) is _end_plugins_and_die:
                    signal.signal(sig, old)
            _guard_saved.clear()


def _resolve(command: str, base_dir: str, env: dict[str, str]) -> str | None:
    """The plugin's executable like client-go finds it: relative to the kubeconfig, else PATH."""
    if os.sep in command:
        path = command if os.path.isabs(command) else os.path.join(base_dir, command)
        return path if os.access(path, os.X_OK) and os.path.isfile(path) else None
    return shutil.which(command, path=env.get("PATH", os.defpath))


def run_exec_plugin(
    exec_cfg: dict[str, Any],
    base_dir: str,
    user: str,
    where: str,
    deadline: float,
    cluster: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run an exec credential plugin; its ExecCredential ``status``. Raises KubeApiError(config)."""
    command = exec_cfg.get("command")
    if not isinstance(command, str) or not command:
        raise KubeApiError("config", f"user '{user}' in {where}: exec.command is missing", "fix it")
    raw_args = exec_cfg.get("args") or []
    args = [str(a) for a in raw_args] if isinstance(raw_args, list) else []
    env = os.environ.copy()
    secrets: list[str] = []
    items = exec_cfg.get("env") or []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and "name" in item:
            value = str(item.get("value", ""))
            env[str(item["name"])] = value
            if len(value) >= 4:
                secrets.append(value)
    api_version = exec_cfg.get("apiVersion", "client.authentication.k8s.io/v1")
    spec: dict[str, Any] = {"interactive": False}
    if exec_cfg.get("provideClusterInfo") and cluster:
        spec["cluster"] = cluster
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {"apiVersion": api_version, "kind": "ExecCredential", "spec": spec}
    )
    name = os.path.basename(command)
    what = f"exec credential plugin '{name}' for user '{user}' ({where})"
    hint = first_line(str(exec_cfg.get("installHint") or "")) or "install it or fix exec.command"
    executable = _resolve(command, base_dir, env)
    if executable is None:
        raise KubeApiError("config", f"{what} cannot run: not found or not executable", hint)
    # The platform's way: its own session/group (a timeout kills it and its children) and, on
    # Linux, a parent-death signal through setpriv (so it dies with us even on SIGKILL).
    options = current().spawn_options([executable, *args])
    try:
        with _live_lock:
            proc = subprocess.Popen(
                options.argv,
                stdin=subprocess.DEVNULL,  # never interactive: a prompt would wait forever
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=base_dir or None,
                env=env,
                **options.kwargs,
            )
            _live.add(proc)
    except OSError as exc:
        raise KubeApiError("config", f"{what} cannot run: {exc.strerror or exc}", hint) from None
    guard = default_guard()  # the plugin must not outlive a SIGKILLed manager either
    guard.register(proc.pid, group=True, label=f"exec-plugin:{name}")
    try:
        remaining = max(0.05, deadline - time.monotonic())
        try:
            out, err = proc.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            raise KubeApiError(
                "config",
                f"{what} did not finish within {remaining:.1f}s",
                "run it by hand to see what it waits for (it may need an interactive login)",
            ) from None
    finally:
        guard.unregister(proc.pid)
        with _live_lock:
            _live.discard(proc)
    stderr = err.decode("utf-8", "replace")
    for secret in secrets:
        stderr = stderr.replace(secret, "<redacted>")
    stderr = first_line(redact_strict(stderr))
    if proc.returncode != 0:
        detail = f": {stderr}" if stderr else ""
        raise KubeApiError(
            "config",
            f"{what} failed with exit code {proc.returncode}{detail}",
            "log in again, or fix users[].user.exec",
        )
    try:
        status = json.loads(out)["status"]
        if not isinstance(status, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise KubeApiError(
            "config", f"{what} printed no valid ExecCredential JSON", "fix the plugin"
        ) from None
    return status
