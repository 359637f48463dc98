"""All forwards: commands in, events out, ``snapshot()``, ``reload()``, ``shutdown()``.

The Supervisor is a registry and a switchboard. It owns the runners (one per forward, each carrying
out its forward's pure lifecycle), the port allocator, the cluster registry, the prober rotation,
the watchers and the one event queue, and routes what they notice to the right forwards as typed
inputs. It decides nothing about a single forward's state: ``core/lifecycle.py`` does. It implements
``SupervisorProtocol`` and never imports textual.
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

from kportforward.core import lifecycle as lc
from kportforward.core.backoff import Backoff
from kportforward.core.models import ClusterStatus, Config, ForwardSpec, ForwardStatus, Traffic
from kportforward.core.ports import PortChecker
from kportforward.core.states import ForwardState, has_process
from kportforward.supervisor.clusters import (
    ClusterKey,
    ClusterRegistry,
    ProbeAccess,
    access_backoff,
)
from kportforward.supervisor.events import (
    ClusterEvent,
    ConfigReloaded,
    ForwardEvent,
    NoticeEvent,
    SupervisorEvent,
    TrafficEvent,
)
from kportforward.supervisor.health import TunnelProber, start_probe
from kportforward.supervisor.httplog import HttpRequest
from kportforward.supervisor.kubectl import build_argv
from kportforward.supervisor.ports import PortAllocator
from kportforward.supervisor.runner import (
    Clock,
    ForwardRunner,
    FrontDoorSettings,
    ProbeStarter,
    ProcessFactory,
    Tuning,
    spawn_kubectl,
)
from kportforward.supervisor.watch import (
    ConfigWatcher,
    NetworkWatcher,
    ProcessSampler,
    SleepDetector,
    Ticker,
)

if TYPE_CHECKING:
    from kportforward.supervisor.protocol import SupervisorProtocol

log = logging.getLogger(__name__)

S = ForwardState
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
        clock: Clock | None = None,
        spawn: ProcessFactory = spawn_kubectl,
        probe: ProbeStarter = start_probe,
        reclaim: bool = True,
        watch_wake: bool = True,
        remote_defaults: Any = None,
        select: Callable[[Config], Config] | None = None,
    ) -> None:
        self.config = config
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig
        self.config_path = config_path
        self._explicit_tuning = tuning is not None
        self.tuning = tuning or _tuning_for(config)
        self._backoff = backoff or Backoff
        self._options = {
            "watch_config": watch_config,
            "watch_kubeconfig": watch_kubeconfig,
            "watch_pods": watch_pods,
            "watch_wake": watch_wake,
        }
        self._watch_interval = watch_interval
        self._sample_interval = sample_interval
        self._clock = clock
        self._select = select
        """The global ``--context``/``-n`` filter, applied to every config this supervisor runs."""
        self._remote = remote_defaults
        """``remote_defaults.RemoteDefaults`` to refresh in the background, or None."""
        self._spawn = spawn
        self._probe = probe
        cores = os.cpu_count() or 2
        self._slots = asyncio.Semaphore(max_in_flight or max(4, 4 * cores))
        self._checker = port_checker or PortChecker(ttl=2.0)
        self._own_checker = port_checker is None
        self.ports = PortAllocator(
            self._checker, self._port_moved, reclaim=reclaim, kubectl=kubectl
        )
        self.registry = ClusterRegistry(
            kubeconfig, self._cluster_changed, probe_access, cluster_backoff or access_backoff
        )
        self.prober = TunnelProber(
            lambda: self.tuning.monitoring_interval,
            self.cluster_key,
            probe_budget,
            keep_alive=lambda: self.config.settings.keep_alive,
        )
        self._runners: dict[str, ForwardRunner] = {}
        self._rejected: set[str] = set()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._watchers: list[Ticker] = []
        self._pod_watcher: Any = None
        self._pod_watches: set[tuple[str | None, str | None, str]] = set()
        self._appear_checks: set[str] = set()
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: asyncio.Future[None] | None = None

    # -- protocol: queries ----------------------------------------------------------------------

    def snapshot(self) -> tuple[ForwardStatus, ...]:
        """Every forward's current status, sorted by name."""
        return tuple(self._runners[n].status() for n in sorted(self._runners))

    def status(self, name: str) -> ForwardStatus:
        """One forward's status (KeyError if unknown)."""
        return self._runners[name].status()

    def clusters(self) -> tuple[ClusterStatus, ...]:
        """Exactly the clusters the current forwards use, by context name and server."""
        return self.registry.statuses(self._keys_in_use())

    def _keys_in_use(self) -> list[ClusterKey]:
        return [self.cluster_key(r) for r in self._runners.values() if r.record.invalid is None]

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

    def http_requests(self, name: str) -> tuple[HttpRequest, ...]:
        """The HTTP requests seen through ``name``'s front door, oldest first (rest/web only)."""
        door = self._runners[name].door
        return door.requests() if door is not None else ()

    def traffic_history(self, name: str, seconds: int = 60) -> list[tuple[int, int]]:
        """Bytes (in, out) per second through ``name``'s door, oldest first."""
        door = self._runners[name].door
        return door.history(seconds) if door is not None else []

    def cluster_key(self, runner: ForwardRunner) -> ClusterKey:
        """The cluster the forward's kubectl talks to now."""
        return self.registry.key_of(runner.spec)

    def access_probes(self, key: ClusterKey) -> int:
        """Access probes made for a suspended cluster (for tests and ``profile``)."""
        return self.registry.probes(key)

    # -- protocol: commands ---------------------------------------------------------------------

    async def start(self) -> None:
        """Read the kubeconfigs, assign ports in one batch, start the watchers and every forward."""
        if self._started:
            return
        self._started = True
        if any(s.front_door is not False for s in self.config.forwards):
            from kportforward.supervisor.doorio import raise_nofile_limit

            before, after = raise_nofile_limit()  # each door holds sockets: lift the soft limit
            log.info("open-file limit %s → %s", before, after)
        await self.registry.refresh(self._kubeconfigs())
        specs = list(self.config.forwards)
        await self.ports.prepare(s for s in specs if self.registry.check_spec(s) is None)
        for spec in specs:
            self._add_runner(spec)
        for problem in self.config.rejected:
            self._add_rejected(problem.name, problem.message)
        self._start_watchers()

    async def stop(self, name: str) -> None:
        """Stop one forward; returns once its kubectl has exited."""
        runner = self._runners[name]
        runner.feed(lc.UserStop("stopped by user"))
        self.ports.release(name)
        await runner.settle()

    async def start_forward(self, name: str) -> None:
        """Start a Stopped forward, or retry a Failed/Cooldown/Suspended one now."""
        self._runners[name].feed(lc.UserStart("started by user"))

    async def restart(self, name: str) -> None:
        """Stop and start one forward now (a new kubectl, a new pid)."""
        self._runners[name].feed(lc.UserStart("restarted by user"))

    async def stop_group(self, group: str) -> None:
        """Stop every forward of ``group``."""
        names = [n for n, r in self._runners.items() if r.spec.group == group]
        await asyncio.gather(*(self.stop(n) for n in names))

    async def start_group(self, group: str) -> None:
        """Start every forward of ``group``."""
        for name, runner in self._runners.items():
            if runner.spec.group == group:
                await self.start_forward(name)

    async def reload(self, config: Config) -> None:
        """Added forwards start, removed stop, changed restart; unchanged keep their pid."""
        if self._select is not None:
            config = self._select(config)
        old = {s.name: s for s in self.config.forwards}
        new = {s.name: s for s in config.forwards}
        rejected = {p.name: p.message for p in config.rejected}
        self.config = config
        if not self._explicit_tuning:
            self.tuning = _tuning_for(config)
        await self.registry.refresh(self._kubeconfigs())
        removed = [n for n in self._runners if n not in new and n not in rejected]
        await asyncio.gather(*(self._remove_runner(n) for n in removed))
        added, changed = [], []
        for name, message in rejected.items():
            if name not in self._runners:
                self._add_rejected(name, message)
                added.append(name)
            elif self._runners[name].record.invalid != message:
                self._rejected.add(name)
                self._runners[name].feed(lc.Invalid(message))
                changed.append(name)
        fresh = [s for n, s in new.items() if n not in self._runners]
        await self.ports.prepare(s for s in fresh if self.registry.check_spec(s) is None)
        for spec in fresh:
            self._add_runner(spec)
            added.append(spec.name)
        for name, spec in new.items():
            runner = self._runners[name]
            if name in old and spec == old[name] and name not in self._rejected:
                continue
            if spec == runner.spec and name not in self._rejected:
                continue
            if name in added:
                continue
            changed.append(name)
            self._rejected.discard(name)
            problem = self.registry.check_spec(spec)
            if problem is not None:
                runner.change_spec(spec)
                runner.feed(lc.Invalid(problem))
            else:
                runner.change_spec(spec)
        self.registry.forget(self._keys_in_use())
        reloaded = ConfigReloaded(
            time.time(),
            tuple(sorted(added)),
            tuple(sorted(removed)),
            tuple(sorted(changed)),
            tuple(str(w) for w in config.warnings),
        )
        log.info("%s", reloaded.summary)
        self._queue.put_nowait(reloaded)

    async def shutdown(self) -> None:
        """Stop everything (SIGINT → SIGTERM → SIGKILL per kubectl group); idempotent."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closing = asyncio.get_running_loop().create_future()
        try:
            for watcher in self._watchers:
                await watcher.close()
            self._watchers.clear()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.registry.close()
            self.prober.close()
            if self._pod_watcher is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._pod_watcher.close)
                self._pod_watcher = None
            self._forget_kube_clients()
            runners = list(self._runners.values())
            await asyncio.gather(*(r.close() for r in runners), return_exceptions=True)
            for runner in runners:
                if runner.state is not S.STOPPED:
                    runner.mark_stopped("shutting down")
            if self._own_checker:
                self._checker.close()
        finally:
            self._queue.put_nowait(_END)
            self._closing.set_result(None)

    def kill_all(self) -> int:
        """SIGKILL every kubectl group now (the forced path of a second Ctrl-C); how many."""
        killed = 0
        for runner in self._runners.values():
            for proc in list(runner.procs.values()):
                if not proc.exited:
                    proc.kill()
                    killed += 1
        return killed

    # -- runners --------------------------------------------------------------------------------

    def _new_runner(self, spec: ForwardSpec) -> ForwardRunner:
        b = self._backoff()
        policy = lc.Policy(
            backoff_base=b.base,
            backoff_cap=b.cap,
            backoff_factor=b.factor,
            jitter=b.jitter,
            stable_after=b.reset_after,
            connect_timeout=self.tuning.connect_timeout,
        )
        runner = ForwardRunner(
            spec, self, policy=policy, clock=self._clock, spawn=self._spawn, probe=self._probe
        )
        self._runners[spec.name] = runner
        return runner

    def _add_runner(self, spec: ForwardSpec) -> None:
        runner = self._new_runner(spec)
        problem = self.registry.check_spec(spec)
        runner.feed(lc.Invalid(problem) if problem else lc.Begin())

    def _add_rejected(self, name: str, message: str) -> None:
        """A forward the config could not read: a Failed row saying why, nothing to run."""
        self._rejected.add(name)
        stub = ForwardSpec(name, target="(invalid)", target_port=0, local_port=0)
        self._new_runner(stub).feed(lc.Invalid(message))

    async def _remove_runner(self, name: str) -> None:
        runner = self._runners[name]
        runner.feed(lc.UserStop("removed from the config"))
        await runner.close()
        self.prober.remove(runner)
        self.ports.release(name)
        self._rejected.discard(name)
        del self._runners[name]

    # -- RunnerHost -----------------------------------------------------------------------------

    def emit(self, runner: ForwardRunner, previous: ForwardState, reason: str) -> None:
        """Publish one transition with the forward's snapshot after it (and log it)."""
        status = runner.status()
        log.info("%s: %s → %s: %s", status.name, previous.value, status.state.value, reason)
        self._queue.put_nowait(ForwardEvent(time.time(), status, previous, reason))

    async def allocate(self, runner: ForwardRunner) -> tuple[int, str | None]:
        """The local port for the runner's next kubectl (the configured one first)."""
        return await self.ports.take(runner.spec)

    def spawn_slot(self) -> asyncio.Semaphore:
        """Bounds kubectl processes between spawn and readiness, so 100 forwards do not stampede."""
        return self._slots

    def spawn_blocker(self, runner: ForwardRunner) -> str | None:
        """Why the forward may not spawn now (its cluster suspended, its kubeconfig gone)."""
        return self.registry.blocker(self.cluster_key(runner))

    def argv(self, runner: ForwardRunner, port: int) -> list[str]:
        """The kubectl argv for ``runner`` on ``port``; behind a front door kubectl listens on
        127.0.0.1 whatever the forward's address (the door binds that)."""
        address = "127.0.0.1" if runner.door is not None else None
        return build_argv(
            self.kubectl, runner.spec, port, kubeconfig=self.kubeconfig, address=address
        )

    def cluster_down(self, runner: ForwardRunner, reason: str, *, auth: bool) -> None:
        """kubectl reported the cluster unreachable or the credentials rejected."""
        self.registry.report_down(
            self.cluster_key(runner), reason, runner.spec.namespace, auth=auth
        )

    def door_for(self, runner: ForwardRunner) -> FrontDoorSettings | None:
        """The forward's front door settings (``frontDoor``, ``holdTimeout``), or None."""
        spec, settings = runner.spec, self.config.settings
        wanted = settings.front_door if spec.front_door is None else spec.front_door
        if not wanted:
            return None
        hold = settings.hold_timeout if spec.hold_timeout is None else spec.hold_timeout
        return FrontDoorSettings(hold_timeout=hold, http_log=spec.type in ("rest", "web"))

    async def home_available(self, runner: ForwardRunner) -> bool:
        """True when the forward's configured port is free (its door may return home)."""
        return await self.ports.home_available(runner.spec)

    def port_taken(self, runner: ForwardRunner, port: int) -> None:
        """Someone bound ``port`` between the check and our door's bind."""
        self.ports.forget(port)

    def traffic(self, runner: ForwardRunner, traffic: Traffic) -> None:
        """One traffic event (the door sends at most one per second per forward)."""
        self._queue.put_nowait(TrafficEvent(time.time(), runner.spec.name, traffic))

    def watch_state(self, runner: ForwardRunner) -> None:
        """Keep the probing rotation, the cluster's reachability and the watches in step."""
        rec = runner.record
        if rec.state is S.RUNNING:
            self.prober.add(runner)
            self.registry.report_up(self.cluster_key(runner), "a tunnel carries bytes")
        else:
            self.prober.remove(runner)
        if rec.state is S.STOPPED:
            self.ports.release(rec.spec.name)
        if rec.pod and has_process(rec.state):
            self._watch_namespace(runner, runner.proc.pod_namespace if runner.proc else None)
        elif rec.state is S.FAILED and rec.invalid is None:
            self._watch_namespace(runner, rec.spec.namespace)

    # -- what the watchers report ---------------------------------------------------------------

    def _kubeconfigs(self) -> list[str | None]:
        keys = [self.registry.kubeconfig_of(s) for s in self.config.forwards]
        return list(dict.fromkeys([self.registry.kubeconfig_of(None), *keys]))

    def _port_moved(self, message: str) -> None:
        self._notice("warning", message)

    def _notice(self, level: str, message: str) -> None:
        log.log(logging.ERROR if level == "error" else logging.INFO, "%s", message)
        self._queue.put_nowait(NoticeEvent(time.time(), level, message))

    def _cluster_changed(self, key: ClusterKey, reachable: bool, reason: str) -> None:
        status = next(iter(self.registry.statuses([key])))
        self._queue.put_nowait(ClusterEvent(time.time(), status, reason))
        for runner in list(self._runners.values()):
            if runner.record.invalid is None and self.cluster_key(runner) == key:
                runner.feed(lc.ClusterUp(reason) if reachable else lc.ClusterDown(reason))

    async def _kubeconfig_tick(self) -> None:
        for kubeconfig, old, new in await self.registry.refresh(self._kubeconfigs()):
            self._kubeconfig_changed(kubeconfig, old, new)

    def _kubeconfig_changed(self, kubeconfig: str | None, old: Any, new: Any) -> None:
        mine = [
            r
            for r in self._runners.values()
            if self.registry.kubeconfig_of(r.spec) == kubeconfig
            and r.spec.name not in self._rejected
        ]
        if new.problem and new.problem != old.problem:
            for key in {self.cluster_key(r) for r in mine}:
                status = next(iter(self.registry.statuses([key])))
                self._queue.put_nowait(ClusterEvent(time.time(), status, new.problem))
            return
        if old.problem and not new.problem:
            for key in {self.cluster_key(r) for r in mine}:
                status = next(iter(self.registry.statuses([key])))
                self._queue.put_nowait(ClusterEvent(time.time(), status, "kubeconfig back"))
            for runner in mine:
                runner.feed(lc.ClusterUp("kubeconfig back"))
        if old.contexts is not None and old.current != new.current:
            reason = f"kube context changed to {new.current or '(none)'}"
            status = ClusterStatus(new.current or "(no current context)", "", None, "")
            self._queue.put_nowait(ClusterEvent(time.time(), status, reason))
            for runner in mine:
                if runner.spec.context is None and runner.record.invalid is None:
                    rec = runner.record
                    if has_process(rec.state):
                        runner.feed(lc.Reconnect(reason))
                    elif rec.state is S.SUSPENDED:
                        runner.feed(lc.ClusterUp(reason))
                    else:
                        runner.feed(lc.RetryNow(reason))
        # The contexts may have changed: forwards that were invalid for the kubeconfig may run now.
        for runner in mine:
            problem = self.registry.check_spec(runner.spec)
            if runner.record.invalid is not None and problem is None:
                runner.change_spec(runner.spec)
                runner.feed(lc.UserStart("kubeconfig fixed", why="config"))
            elif problem is not None and runner.record.invalid not in (None, problem):
                runner.feed(lc.Invalid(problem))

    def _watch_namespace(self, runner: ForwardRunner, namespace: str | None) -> None:
        if not self._options["watch_pods"]:
            return
        key = self.cluster_key(runner)
        ns = namespace or self._namespace_of(key)
        watch = (key.kubeconfig, key.context, ns)
        if watch in self._pod_watches:
            return
        self._pod_watches.add(watch)
        try:
            if self._pod_watcher is None:
                from kportforward.kube.pods import PodWatcher

                self._pod_watcher = PodWatcher(asyncio.get_running_loop(), self._on_pod_change)
            self._pod_watcher.watch(*watch)
        except Exception as exc:  # pod watching is an optimisation; probes still catch dead tunnels
            log.warning("cannot watch pods in %s: %s", watch, exc)

    def _namespace_of(self, key: ClusterKey) -> str:
        with contextlib.suppress(Exception):
            config = self.registry._watcher(key.kubeconfig).current()
            ctx = config.contexts.get(key.context or "")
            if ctx is not None and ctx.namespace:
                return str(ctx.namespace)
        return "default"

    def _on_pod_change(self, change: Any) -> None:
        for runner in list(self._runners.values()):
            rec = runner.record
            key = self.cluster_key(runner)
            if (change.context or None) != (key.context or None):
                continue
            proc = runner.proc
            if change.kind in ("deleted", "not_ready"):
                if (
                    proc is not None
                    and has_process(rec.state)
                    and rec.pod == change.name
                    and proc.pod_namespace == change.namespace
                ):
                    what = "deleted" if change.kind == "deleted" else "not ready"
                    runner.feed(lc.Reconnect(f"pod {change.name} {what}; reconnecting"))
            elif change.kind in ("added", "ready") and rec.state is S.FAILED:
                ns = rec.spec.namespace or self._namespace_of(key)
                if ns == change.namespace and rec.invalid is None:
                    self._appear_checks.add(rec.spec.name)

    async def _appear_tick(self) -> None:
        """Failed forwards whose target may exist now (a pod appeared in their namespace, or
        kubectl said NotFound): ask the API, and retry at once when it answers with a pod."""
        from kportforward.kube.pods import resolve_pods

        names = set(self._appear_checks)
        self._appear_checks.clear()
        for runner in self._runners.values():
            rec = runner.record
            if (
                rec.state is S.FAILED
                and rec.invalid is None
                and "NotFound" in (rec.last_error or "")
            ):
                names.add(rec.spec.name)
        for name in sorted(names)[:8]:
            waiting = self._runners.get(name)
            if waiting is None or waiting.record.state is not S.FAILED:
                continue
            key = self.cluster_key(waiting)
            try:
                pods = await resolve_pods(
                    waiting.spec, kubeconfig=key.kubeconfig, context=key.context, timeout=2.0
                )
            except Exception:
                continue
            if any(p.ready for p in pods):
                waiting.feed(lc.RetryNow(f"{waiting.spec.target} exists now; retrying"))

    def _start_watchers(self) -> None:
        if self._options["watch_kubeconfig"]:
            self._watchers.append(
                Ticker("kubeconfig-watch", self._watch_interval, self._kubeconfig_tick)
            )
        if self._options["watch_pods"]:
            self._watchers.append(Ticker("target-watch", self._watch_interval, self._appear_tick))
        if self._options["watch_config"]:
            from kportforward.core.config import config_sources, load_config

            self._watchers.append(
                ConfigWatcher(
                    lambda: config_sources(self.config_path),
                    lambda: load_config(self.config_path),
                    self._config_file_changed,
                    self._watch_interval,
                )
            )
        self._watchers.append(ProcessSampler(self._pids, self._sampled, self._sample_interval))
        if self._remote is not None:
            self._watchers.append(Ticker("remote-defaults", self._remote.interval, self._refresh))
            first = asyncio.get_running_loop().create_task(self._refresh())  # the cache is old
            self._tasks.add(first)
            first.add_done_callback(self._tasks.discard)
        if self._options["watch_wake"]:
            self._watchers.append(SleepDetector(self._slept, interval=1.0))
            self._watchers.append(NetworkWatcher(self._recheck, interval=2.0))
            self._watchers.append(Ticker("credential-watch", 0.5, self.registry.watch_credentials))
        for watcher in self._watchers:
            watcher.start()

    async def _refresh(self) -> None:
        """Fetch the remote defaults again (conditional GET); a change is a normal reload."""
        remote = self._remote
        before = remote.notice
        try:
            config = await remote.refresh(self.config_path)
        except Exception as exc:  # a broken user file: keep running on the old config
            self._notice("error", f"config not reloaded: {exc}")
            return
        if remote.notice and remote.notice != before:
            self._notice("warning", remote.notice)
        if config is not None:
            await self.reload(config)

    async def _slept(self, lost: float) -> None:
        await self._recheck(f"woke up after {lost:.0f}s asleep")

    async def _recheck(self, reason: str) -> None:
        """After a sleep or a network change: one access probe per cluster first; the tunnels of
        clusters that answer are re-verified by a probe (only dead ones restart, through the
        spawn slots); clusters that do not answer are suspended until they do."""
        self._notice("information", f"{reason}: checking every cluster, then every tunnel")
        await self.registry.refresh(self._kubeconfigs())
        keys: dict[ClusterKey, str | None] = {}
        for runner in self._runners.values():
            if runner.record.invalid is None and runner.state is not S.STOPPED:
                keys.setdefault(self.cluster_key(runner), runner.spec.namespace)
        gate = asyncio.Semaphore(4)

        async def check(key: ClusterKey, namespace: str | None) -> None:
            async with gate:
                try:
                    ok, kind, message = await self.registry.probe_access(key, namespace)
                except Exception as exc:
                    ok, kind, message = False, "network", str(exc)
            if not ok and kind != "forbidden":
                auth = kind in ("auth", "config")
                self.registry.report_down(key, f"{kind}: {message}", namespace, auth=auth)
                return
            for runner in list(self._runners.values()):
                if self.cluster_key(runner) == key:
                    runner.feed(lc.WokeUp(reason))

        await asyncio.gather(*(check(k, ns) for k, ns in keys.items()))

    async def _config_file_changed(self, config: Config | None, error: Exception | None) -> None:
        if error is not None or config is None:
            self._notice("error", f"config not reloaded: {error}")
            return
        await self.reload(config)

    def _pids(self) -> list[int]:
        return [r.record.pid for r in self._runners.values() if r.record.pid]

    def _sampled(self, samples: dict[int, tuple[int, float] | None]) -> None:
        for runner in self._runners.values():
            sample = samples.get(runner.record.pid or 0)
            runner.rss, runner.cpu_percent = sample if sample else (None, None)

    def _forget_kube_clients(self) -> None:
        """Drop the cached API clients we caused, so their pooled connections close with us."""
        kclient = sys.modules.get("kportforward.kube.client")
        if kclient is None:
            return
        keys = {(k[0], k[1]) for k in self._pod_watches}
        keys |= {(k.kubeconfig, k.context) for k in self._keys_in_use()}
        for kubeconfig, context in keys:
            with contextlib.suppress(Exception):
                kclient.forget_client(kubeconfig, context)
        gc.collect()  # the pools close their sockets when collected


def _tuning_for(config: Config) -> Tuning:
    interval = config.settings.monitoring_interval
    return Tuning(monitoring_interval=interval, probe_timeout=_probe_timeout(interval))


def _probe_timeout(interval: float) -> float:
    """How long a probe may wait for the tunnel's answer: healthy answers take milliseconds, and
    the interval plus three timeouts (the failing probe, the cluster-wide one, the confirming
    one) must fit in the 3 s dead-tunnel budget."""
    return min(0.5, max(0.25, interval))


__all__ = ["Supervisor", "Tuning"]


if TYPE_CHECKING:

    def _implements_the_protocol(supervisor: Supervisor) -> SupervisorProtocol:
        return supervisor  # mypy checks that Supervisor satisfies SupervisorProtocol
