"""The supervisor's background loops: kubeconfig and config file watching, psutil sampling.

Each is one task per Supervisor, cheap at rest: a ``stat`` per file per interval, and a psutil
read per kubectl every few seconds. Kept apart from supervisor.py so each module reads in one
sitting; they reach into the Supervisor they serve.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from kportforward.core.models import ClusterStatus
from kportforward.core.states import Event
from kportforward.supervisor.events import ClusterEvent

if TYPE_CHECKING:
    from kportforward.supervisor.supervisor import Supervisor


async def watch_kubeconfig(sup: Supervisor) -> None:
    """Poll the kubeconfig files (a stat each, no kubectl); on a context change, reconnect the
    forwards that follow the current context (spawns stay bounded by the spawn slots)."""
    watcher = sup._kube_watcher(sup.kubeconfig)
    watcher.poll()
    while True:
        await asyncio.sleep(sup._watch_interval)
        change = watcher.poll()
        if change is None:
            continue
        old, new = change
        status = ClusterStatus(new or "(none)", sup._server(("", new or "")), None, "")
        sup._queue.put_nowait(ClusterEvent(time.time(), status, f"context {old} → {new}"))
        for runner in sup._runners.values():
            spec = runner.spec
            if spec.context is None and spec.kubeconfig is None:
                runner.command(Event.RECONNECT, f"kube context changed to {new}")


async def watch_config(sup: Supervisor) -> None:
    """Stat the config sources; reload on a change; on a bad edit keep the old config, say why."""
    from kportforward.core.config import config_sources, load_config

    def signature() -> tuple[Any, ...]:
        out: list[tuple[str, int | None, int | None]] = []
        for path in config_sources(sup.config_path):
            try:
                st = os.stat(path)
                out.append((str(path), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(path), None, None))
        return tuple(out)

    seen = signature()
    while True:
        await asyncio.sleep(sup._watch_interval)
        now = signature()
        if now == seen:
            continue
        seen = now
        try:
            config = await asyncio.to_thread(load_config, sup.config_path)
        except Exception as exc:  # keep running on the old config, and say why
            sup._notice("error", f"config not reloaded: {exc}")
            continue
        await sup.reload(config)


async def sample_processes(sup: Supervisor) -> None:
    """Every few seconds, each kubectl's RSS and CPU (one cached psutil.Process per pid)."""
    import psutil

    while True:
        await asyncio.sleep(sup._sample_interval)
        live = set()
        for runner in sup._runners.values():
            proc = runner.proc
            if proc is None or proc.pid is None or proc.exited:
                runner.rss = runner.cpu_percent = None
                continue
            live.add(proc.pid)
            ps = sup._procs.get(proc.pid)
            try:
                if ps is None:
                    ps = sup._procs[proc.pid] = psutil.Process(proc.pid)
                    ps.cpu_percent(None)  # the first call only sets the baseline
                with ps.oneshot():
                    runner.rss = ps.memory_info().rss
                    runner.cpu_percent = ps.cpu_percent(None)
            except psutil.Error:
                runner.rss = runner.cpu_percent = None
        for pid in [p for p in sup._procs if p not in live]:
            del sup._procs[pid]
