"""All forwards: commands in, events out, ``snapshot()``, ``reload()``, ``shutdown()``.

One runner task per forward (supervisor/runner.py) does the per-forward work; this module owns what
the forwards share: port resolution (one batch at start), the spawn semaphore, cluster suspension
(supervisor/health.py), the pod and kubeconfig watchers, the config file watcher, psutil sampling,
and the single event queue. It implements ``SupervisorProtocol`` and never imports textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from kportforward.core.backoff import Backoff
from kportforward.core.conflicts import resolve_conflicts
from kportforward.core.models import ClusterStatus, Config, ForwardSpec, ForwardStatus
from kportforward.core.ports import PortChecker
from kportforward.core.states import Event, ForwardState, has_process
from kportforward.supervisor.events import ClusterEvent, ForwardEvent, NoticeEvent, SupervisorEvent
from kportforward.supervisor.health import ClusterHealth, ClusterKey, ProbeAccess, TunnelProber
from kportforward.supervisor.kubectl import Classification, build_argv
from kportforward.supervisor.runner import ForwardRunner, Tuning
from kportforward.supervisor.watch import sample_processes, watch_config, watch_kubeconfig

if TYPE_CHECKING:
    from kportforward.supervisor.protocol import SupervisorProtocol

log = logging.getLogger(__name__)

_END = object()


class Supervisor:
    """Keeps every configured forward's kubectl alive; see the module docstring."""

    def __init__(
        self,
        config: Config,
        *,
        kubectl: str = "kubectl",
        kubeconfig: str | None = None,
        config_path: str | None = None,
        watch_config: bool = False,
        watch_kubeconfig: bool = True,
        watch_pods: bool = True,
        max_in_flight: int | None = None,
        backoff: Callable[[], Backoff] | None = None,
        cluster_backoff: Callable[[], Backoff] | None = None,
        tuning: Tuning | None = None,
        probe_access: ProbeAccess | None = None,
        port_checker: PortChecker | None = None,
        watch_interval: float = 1.0,
        sample_interval: float = 5.0,
        probe_budget: float = 20.0,
    ) -> None:
        self.config = config
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig
        self.config_path = config_path
        self.tuning = tuning or Tuning(
            monitoring_interval=config.settings.monitoring_interval,
            probe_timeout=_probe_timeout(config.settings.monitoring_interval),
        )
        self._explicit_tuning = tuning is not None
        self._new_backoff = backoff or Backoff
        self._watch_config = watch_config
        self._watch_kubeconfig = watch_kubeconfig
        self._watch_pods = watch_pods
        self._watch_interval = watch_interval
        self._sample_interval = sample_interval
        cores = os.cpu_count() or 2
        self._slots = asyncio.Semaphore(max_in_flight or max(4, 4 * cores))
        self._checker = port_checker or PortChecker(ttl=2.0)
        self._own_checker = port_checker is None
        self._clusters = ClusterHealth(
            self._cluster_changed, probe_access, cluster_backoff or Backoff
        )
        self._runners: dict[str, ForwardRunner] = {}
        self.prober = TunnelProber(
            lambda: self.tuning.monitoring_interval, self.cluster_key, probe_budget
        )
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._assigned: dict[str, tuple[int, str | None]] = {}
        self._port_lock = asyncio.Lock()
        self._unresolved: dict[str, str] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._kube_watchers: dict[str | None, Any] = {}
        self._pod_watcher: Any = None
        self._pod_watches: set[tuple[str | None, str | None, str | None]] = set()
        self._procs: dict[int, Any] = {}
        self._started = False
        self._closing: asyncio.Future[None] | None = None

    # -- protocol: queries ----------------------------------------------------------------------

    def snapshot(self) -> tuple[ForwardStatus, ...]:
        """Every forward's current status, sorted by name."""
        return tuple(self._runners[n].status() for n in sorted(self._runners))

    def status(self, name: str) -> ForwardStatus:
        """One forward's status (KeyError if unknown)."""
        return self._runners[name].status()

    def clusters(self) -> tuple[ClusterStatus, ...]:
        """Every cluster the forwards use, with its last probe result."""
        out = {}
        for runner in self._runners.values():
            key = self.cluster_key(runner)
            if key in out:
                continue
            reach = self._clusters.reachable.get(key)
            out[key] = ClusterStatus(
                context=key[1] or "(current)",
                server=self._server(key),
                reachable=reach[0] if reach else None,
                reason=reach[1] if reach else "",
            )
        return tuple(out[k] for k in sorted(out))

    async def events(self) -> AsyncIterator[SupervisorEvent]:
        """The single event stream, in order; ends after ``shutdown()``. One consumer."""
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            yield item

    def log_lines(self, name: str) -> tuple[str, ...]:
        """The last few hundred lines kubectl printed for ``name``."""
        runner = self._runners.get(name)
        return tuple(runner.lines) if runner else ()

    def access_probes(self, key: ClusterKey) -> int:
        """Access probes made for a suspended cluster (for tests and ``profile``)."""
        return self._clusters.probes(key)

    # -- protocol: commands ---------------------------------------------------------------------

    async def start(self) -> None:
        """Resolve every port in one batch, start the watchers, and start every forward."""
        if self._started:
            return
        self._started = True
        await self._assign_ports(self.config.forwards)
        for spec in self.config.forwards:
            self._add_runner(spec)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(sample_processes(self), name="psutil-sampler"))
        if self._watch_kubeconfig:
            self._tasks.append(loop.create_task(watch_kubeconfig(self), name="kubeconfig-watch"))
        if self._watch_config:
            self._tasks.append(loop.create_task(watch_config(self), name="config-watch"))

    async def stop(self, name: str) -> None:
        """Stop one forward; returns once its kubectl has exited."""
        await self._runners[name].command(Event.USER_STOP, "stopped by user")

    async def start_forward(self, name: str) -> None:
        """Start a Stopped forward, or retry a Failed/Cooldown/Suspended one now."""
        await self._runners[name].command(Event.USER_START, "started by user")

    async def restart(self, name: str) -> None:
        """Stop and start one forward now (a new kubectl, a new pid)."""
        await self._runners[name].command(Event.USER_START, "restarted by user")

    async def reload(self, config: Config) -> None:
        """Added forwards start, removed stop, changed restart; unchanged keep their pid."""
        old = {s.name: s for s in self.config.forwards}
        new = {s.name: s for s in config.forwards}
        self.config = config
        if not self._explicit_tuning:
            interval = config.settings.monitoring_interval
            self.tuning = Tuning(
                monitoring_interval=interval, probe_timeout=_probe_timeout(interval)
            )
        removed = [n for n in old if n not in new]
        added = [new[n] for n in new if n not in old]
        changed = [n for n in new if n in old and new[n] != old[n]]
        await asyncio.gather(*(self._remove_runner(n) for n in removed))
        for name in changed:
            runner = self._runners[name]
            before, runner.spec = runner.spec, new[name]
            if _kubectl_fields(before) == _kubectl_fields(new[name]):
                continue  # only how it is shown changed (type, group, paths): keep the kubectl
            runner.local_port = 0  # resolve again: the port may have changed
            runner.command(Event.USER_START, "config changed")
        if added and self._started:
            await self._assign_ports(added)
            for spec in added:
                self._add_runner(spec)
        parts = [
            f"{len(x)} {w}"
            for x, w in ((added, "added"), (removed, "removed"), (changed, "changed"))
            if x
        ]
        self._notice(
            "information", "config reloaded: " + (", ".join(parts) or "no forward changed")
        )

    async def shutdown(self) -> None:
        """Stop everything (SIGINT → SIGTERM → SIGKILL per kubectl group); idempotent."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closing = asyncio.get_running_loop().create_future()
        try:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._tasks.clear()
            await self._clusters.close()
            self.prober.close()
            if self._pod_watcher is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._pod_watcher.close)
                self._pod_watcher = None
            self._forget_kube_clients()
            runners = list(self._runners.values())
            await asyncio.gather(*(r.close() for r in runners), return_exceptions=True)
            for runner in runners:
                if runner.state is not ForwardState.STOPPED:
                    runner._transition(Event.USER_STOP, "shutting down")
            if self._own_checker:
                self._checker.close()
        finally:
            self._queue.put_nowait(_END)
            self._closing.set_result(None)

    def _forget_kube_clients(self) -> None:
        """Drop the cached API clients we caused, so their pooled connections close with us."""
        kclient = sys.modules.get("kportforward.kube.client")
        if kclient is None:
            return
        keys = {(k[0], k[1]) for k in self._pod_watches}
        keys |= {(k[0] or None, k[1] or None) for k in self._clusters.reachable}
        for kubeconfig, context in keys:
            with contextlib.suppress(Exception):
                kclient.forget_client(kubeconfig, context)
        gc.collect()  # the pools close their sockets when collected

    def kill_all(self) -> int:
        """SIGKILL every kubectl group now (the forced path of a second Ctrl-C); how many."""
        killed = 0
        for runner in self._runners.values():
            if runner.proc is not None and not runner.proc.exited:
                runner.proc.kill()
                killed += 1
        return killed

    # -- runners --------------------------------------------------------------------------------

    def _add_runner(self, spec: Any) -> None:
        runner = ForwardRunner(spec, self, self._new_backoff())
        self._runners[spec.name] = runner
        runner.task = asyncio.get_running_loop().create_task(
            runner.run(), name=f"forward {spec.name}"
        )

    async def _remove_runner(self, name: str) -> None:
        runner = self._runners[name]
        await runner.command(Event.USER_STOP, "removed from the config")
        await runner.close()
        del self._runners[name]

    def _notice(self, level: str, message: str) -> None:
        log.log(logging.ERROR if level == "error" else logging.INFO, "%s", message)
        self._queue.put_nowait(NoticeEvent(time.time(), level, message))

    # -- RunnerHost -----------------------------------------------------------------------------

    def emit(self, runner: ForwardRunner, previous: ForwardState, reason: str) -> None:
        """Publish one transition with the forward's snapshot after it (and log it)."""
        status = runner.status()
        log.info("%s: %s → %s: %s", status.name, previous.value, status.state.value, reason)
        self._queue.put_nowait(ForwardEvent(time.time(), status, previous, reason))

    def spawn_slot(self) -> asyncio.Semaphore:
        """Bounds kubectl processes between spawn and readiness, so 100 forwards do not stampede."""
        return self._slots

    def argv(self, runner: ForwardRunner, port: int) -> list[str]:
        """The kubectl argv for ``runner`` on ``port``."""
        return build_argv(self.kubectl, runner.spec, port, kubeconfig=self.kubeconfig)

    def cluster_key(self, runner: ForwardRunner) -> ClusterKey:
        """The (kubeconfig, context) the forward's kubectl talks to."""
        kubeconfig = runner.spec.kubeconfig or self.kubeconfig
        context = runner.spec.context or self._current_context(kubeconfig) or ""
        return (kubeconfig or "", context)

    def cluster_blocked(self, runner: ForwardRunner) -> str | None:
        """Why the forward's cluster is suspended, or None."""
        return self._clusters.blocked(self.cluster_key(runner))

    def cluster_failed(self, runner: ForwardRunner, why: Classification) -> None:
        """kubectl reported the cluster unreachable or the credentials rejected."""
        reason = f"{why.reason}: {why.message}"
        self._clusters.report_down(self.cluster_key(runner), reason, runner.spec.namespace)

    def _cluster_changed(self, key: ClusterKey, reachable: bool, reason: str) -> None:
        status = ClusterStatus(key[1] or "(current)", self._server(key), reachable, reason)
        self._queue.put_nowait(ClusterEvent(time.time(), status, reason))
        if reachable:
            for runner in self._runners.values():
                if runner.state is ForwardState.SUSPENDED and self.cluster_key(runner) == key:
                    runner.command(Event.CLUSTER_UP, "cluster reachable again")

    async def resolve_port(self, runner: ForwardRunner, *, again: bool) -> tuple[int, str | None]:
        """The port to spawn on: the batch assignment, the current port, or a fresh resolution."""
        name = runner.spec.name
        if not again and runner.local_port:
            return runner.local_port, runner.port_moved_reason
        assigned = self._assigned.pop(name, None)
        if assigned is not None and not again:
            return assigned
        # One resolution at a time: two forwards re-resolving at once must not both pick the same
        # free port. The runner takes the port before this lock is free for the next one.
        async with self._port_lock:
            if runner.local_port:
                self._checker.invalidate(runner.local_port)
            self._checker.invalidate(runner.spec.local_port)
            await self._assign_ports([runner.spec])
            got = self._assigned.pop(name, None)
            if got is None:
                raise LookupError(self._unresolved.pop(name, "no free local port"))
            return got

    async def _assign_ports(self, specs: Any) -> None:
        """One batch: reclaim our own stale kubectl on configured ports, then resolve_conflicts."""
        specs = list(specs)
        if not specs:
            return
        names = {s.name for s in specs}
        # Ports our other forwards hold, or were assigned and are about to take, stay theirs.
        reserved = {
            n: r.local_port
            for n, r in self._runners.items()
            if n not in names and r.local_port and r.state is not ForwardState.STOPPED
        }
        reserved.update((n, port) for n, (port, _) in self._assigned.items() if n not in names)
        others = [r.spec for n, r in self._runners.items() if n in reserved]

        def work() -> Any:
            busy = [s for s in specs if not self._checker.is_available(s.local_port, s.address)]
            for spec in busy:
                msg = _reclaim(spec.local_port, spec.address, spec.name)
                if msg:
                    self._checker.invalidate(spec.local_port)
                    log.info("%s: %s", spec.name, msg)
            return resolve_conflicts([*specs, *others], self._checker, reserved=reserved)

        resolution = await asyncio.to_thread(work)
        self._unresolved = dict(resolution.unresolved)
        for spec in specs:
            port = resolution.ports.get(spec.name)
            if port is None:
                continue
            move = resolution.moves.get(spec.name)
            self._assigned[spec.name] = (port, move.reason if move else None)
            if move:
                self._notice("warning", move.reason)

    def pod_changed(self, runner: ForwardRunner) -> None:
        """The runner's kubectl named its pod: make sure that namespace is watched."""
        if not self._watch_pods or runner.proc is None:
            return
        kubeconfig, context = self.cluster_key(runner)
        key = (kubeconfig or None, context or None, runner.proc.pod_namespace)
        if key in self._pod_watches:
            return
        self._pod_watches.add(key)
        try:
            if self._pod_watcher is None:
                from kportforward.kube.pods import PodWatcher

                self._pod_watcher = PodWatcher(asyncio.get_running_loop(), self._on_pod_change)
            self._pod_watcher.watch(*key)
        except Exception as exc:  # pod watching is an optimisation; probes still catch dead tunnels
            log.warning("cannot watch pods in %s: %s", key, exc)

    def _on_pod_change(self, change: Any) -> None:
        if change.kind not in ("deleted", "not_ready"):
            return
        for runner in self._runners.values():
            proc = runner.proc
            if (
                proc is not None
                and has_process(runner.state)
                and proc.pod == change.name
                and proc.pod_namespace == change.namespace
                and (change.context or "") == self.cluster_key(runner)[1]
            ):
                what = "deleted" if change.kind == "deleted" else "not ready"
                runner.command(Event.RECONNECT, f"pod {change.name} {what}; reconnecting")

    # -- background loops -----------------------------------------------------------------------

    def _kube_watcher(self, explicit: str | None) -> Any:
        watcher = self._kube_watchers.get(explicit)
        if watcher is None:
            from kportforward.kube.kubeconfig import KubeconfigWatcher

            watcher = self._kube_watchers[explicit] = KubeconfigWatcher(explicit)
        return watcher

    def _current_context(self, kubeconfig: str | None) -> str | None:
        try:
            return self._kube_watcher(kubeconfig).current().current_context
        except Exception:
            return None

    def _server(self, key: ClusterKey) -> str:
        try:
            ctx = self._kube_watcher(key[0] or None).current().contexts.get(key[1])
        except Exception:
            return ""
        return ctx.server if ctx else ""


def _kubectl_fields(spec: ForwardSpec) -> tuple[object, ...]:
    """What kubectl's argv and the local port depend on."""
    return (
        spec.target, spec.target_port, spec.local_port, spec.namespace, spec.context,
        spec.kubeconfig, spec.address,
    )  # fmt: skip


def _probe_timeout(interval: float) -> float:
    """How long a probe may wait for the tunnel's answer: healthy answers take milliseconds, and
    the interval plus three timeouts (the failing probe, the cluster-wide one, the confirming
    one) must fit in the 3 s dead-tunnel budget."""
    return min(0.5, max(0.25, interval))


def _reclaim(port: int, address: str, name: str) -> str | None:
    try:
        from kportforward.supervisor.reclaim import reclaim_stale_kubectl
    except ImportError:  # pragma: no cover
        return None
    try:
        return reclaim_stale_kubectl(port, address, name)
    except Exception as exc:
        log.warning("reclaim on port %s failed: %s", port, exc)
        return None


__all__ = ["Supervisor", "Tuning"]


if TYPE_CHECKING:

    def _implements_the_protocol(supervisor: Supervisor) -> SupervisorProtocol:
        return supervisor  # mypy checks that Supervisor satisfies SupervisorProtocol
