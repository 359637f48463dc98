"""Becoming the instance: take the lock (or refuse, or replace the old owner), then serve.

``run`` and the dashboard call :func:`claim` before they start anything, and wrap their
supervisor with :func:`serve`, which starts the control server once every forward exists and
closes it after they have stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from typing import Any

from kportforward import __version__
from kportforward.control.paths import (
    InstanceInfo,
    InstanceLock,
    InstancePaths,
    config_identity,
    paths_for,
    read_info,
)
from kportforward.errors import KPortForwardError

log = logging.getLogger(__name__)

REPLACE_TIMEOUT = 20.0
"""How long ``--replace`` waits for the old instance to stop its kubectl and let go."""


class AlreadyRunningError(KPortForwardError):
    """Another instance runs on this config (exit 2: the user asked for something refused)."""

    exit_code = 2


def claim(config_arg: str | None, *, replace: bool = False, mode: str = "run") -> InstanceLock:
    """The instance lock for ``config_arg``: taken now, or after stopping the old owner.

    Raises :class:`AlreadyRunningError` when a live instance holds it and ``replace`` is False.
    """
    paths = paths_for(config_arg)
    lock = InstanceLock(paths)
    if not lock.acquire():
        info = read_info(paths.lock)
        if not replace:
            who = f"pid {info.pid} since {info.since}" if info and info.pid else "starting"
            raise AlreadyRunningError(
                f"already running ({who}); `kportforward status`",
                "or `kportforward run --replace` to take over",
            )
        _stop_owner(paths, info, lock)
    lock.write_info(
        InstanceInfo(
            pid=os.getpid(),
            started=time.time(),
            socket=str(paths.socket),
            config=config_identity(config_arg),
            mode=mode,
            version=__version__,
        )
    )
    return lock


def _stop_owner(paths: InstancePaths, info: InstanceInfo | None, lock: InstanceLock) -> None:
    """Ask the instance holding the lock to stop; SIGTERM it if it does not; take the lock."""
    from kportforward.control.client import Client

    pid = info.pid if info else 0
    log.info("replace: asking pid %s to stop", pid)
    with contextlib.suppress(Exception), Client(str(paths.socket), timeout=5.0) as client:
        client.call("shutdown")
    if _wait_for(lock, REPLACE_TIMEOUT):
        return
    if pid > 0:
        log.warning("replace: pid %d did not stop in time; SIGTERM", pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        if _wait_for(lock, 10.0):
            return
    raise AlreadyRunningError(
        f"the running instance (pid {pid}) did not stop", "stop it yourself and try again"
    )


def _wait_for(lock: InstanceLock, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.acquire():
            return True
        time.sleep(0.05)
    return lock.acquire()


def serve(supervisor: Any, lock: InstanceLock, config_arg: str | None) -> Any:
    """``supervisor`` wrapped so every client shares its events and the socket is served.

    Returns a :class:`~kportforward.control.fanout.SharedSupervisor`; the owner registers what a
    client's ``shutdown`` does with ``set_stop_handler``. Where Unix sockets do not exist the
    instance still runs and holds the lock, without a socket.
    """
    from kportforward.control.fanout import SharedSupervisor
    from kportforward.control.server import ControlServer, control_supported

    shared = SharedSupervisor(supervisor)
    if not control_supported():
        return shared
    raw = lock.paths.lock.read_bytes()
    import json

    info = InstanceInfo(**json.loads(raw))

    async def reload() -> str:
        import asyncio

        from kportforward.core.config import load_config

        config = await asyncio.to_thread(load_config, config_arg)
        await shared.reload(config)
        return f"reloaded {len(config.forwards)} forwards"

    server = ControlServer(shared, lock.paths.socket, info, reload)

    async def on_start() -> None:
        try:
            await server.start()
        except OSError as exc:  # e.g. a path too long for a Unix socket: run without one
            log.error("control: cannot serve %s: %s", lock.paths.socket, exc)

    shared.on_start = on_start
    shared.on_close = server.close
    return shared
