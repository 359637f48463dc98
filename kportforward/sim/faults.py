"""The fault methods and the request log of the Simulator (a base class, to keep server.py about
serving). Every method is safe to call from any thread: work is marshalled onto the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, NamedTuple, TypeVar

from kportforward.sim.api import Api
from kportforward.sim.http import Request
from kportforward.sim.rules import Rule
from kportforward.sim.state import ClusterState
from kportforward.sim.world import ContainerPort, ServicePort, World

T = TypeVar("T")


class RequestRecord(NamedTuple):
    """One answered request: method, path with query, status, wall-clock time."""

    method: str
    path: str
    status: int
    ts: float


class Faults:
    """Fault injection and request accounting; the Simulator sets these attributes up."""

    world: World
    _state: ClusterState
    _api: Api
    _gate: asyncio.Event | None
    _rules: list[Rule]
    _next_rule: int
    _log: deque[RequestRecord]
    _server: asyncio.Server | None
    _loop: asyncio.AbstractEventLoop | None
    _loop_thread: int | None

    def _on_loop(self, fn: Callable[..., T], *args: Any) -> T:
        # All state lives on the loop thread, so no locks: calls from other threads are queued
        # there and waited for; calls on the loop thread (or when it is not running) run inline.
        loop = self._loop
        if (
            loop is None
            or self._server is None
            or loop.is_closed()
            or threading.get_ident() == self._loop_thread
        ):
            return fn(*args)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a pod: its tunnels are cut (kubectl: lost connection), its backends close."""
        self._on_loop(self._state.delete_pod, namespace, name)

    def restart_pod(self, namespace: str, name: str) -> str:
        """Replace a pod by a new one with a new name and the same labels; returns the new name."""
        return self._on_loop(self._state.restart_pod, namespace, name)

    def add_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        ports: Iterable[ContainerPort | Mapping[str, Any] | int] = (),
        phase: str = "Running",
        ready: bool = True,
    ) -> str:
        """Create a pod while running (its backends start; watchers see ADDED); returns its name."""
        kwargs = {"namespace": namespace, "labels": labels, "ports": list(ports)}
        return self._on_loop(partial(self._state.add_pod, name, phase=phase, ready=ready, **kwargs))

    def set_pod_ready(self, namespace: str, name: str, ready: bool) -> None:
        """Make a pod ready or not ready."""
        self._on_loop(self._state.set_pod_ready, namespace, name, ready)

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> None:
        """Set a pod's phase (Pending, Running, Succeeded, Failed, Unknown)."""
        self._on_loop(self._state.set_pod_phase, namespace, name, phase)

    def drop_streams(self) -> int:
        """Cut every open port-forward connection; returns how many."""
        return self._on_loop(self._state.drop_streams)

    def hang(self) -> None:
        """Stop answering without closing anything; open tunnels stall too."""
        self._on_loop(self._set_hung, True)

    def resume(self) -> None:
        """Answer again after :meth:`hang`."""
        self._on_loop(self._set_hung, False)

    def _set_hung(self, hung: bool) -> None:
        if self._gate is None:
            return
        if hung:
            self._gate.clear()
        else:
            self._gate.set()
        self._state.set_hung(hung)

    @property
    def hung(self) -> bool:
        """Whether the simulator is hanging."""
        return self._gate is not None and not self._gate.is_set()

    def add_rule(
        self,
        status: int,
        *,
        method: str | None = None,
        path_regex: str = ".*",
        message: str | None = None,
    ) -> int:
        """Answer requests matching ``method`` and ``path_regex`` (searched in the path with its
        query) with ``status`` and a Status worded like the API server's; returns the rule id."""
        compiled = re.compile(path_regex)

        def add() -> int:
            rule = Rule(self._next_rule, int(status), method, compiled, message)
            self._next_rule += 1
            self._rules.append(rule)
            return rule.id

        return self._on_loop(add)

    def remove_rule(self, rule_id: int) -> None:
        """Remove one rule (no error if it is already gone)."""

        def remove() -> None:
            self._rules[:] = [r for r in self._rules if r.id != rule_id]

        self._on_loop(remove)

    def clear_rules(self) -> None:
        """Remove every rule."""
        self._on_loop(self._rules.clear)

    def refuse_backend(self, namespace: str, pod: str, port: int, refuse: bool = True) -> None:
        """Make a pod's container port refuse connections (kubectl then exits: lost connection)."""
        self._on_loop(self._state.refuse_backend, namespace, pod, port, refuse)

    def eof_backend(self, namespace: str, pod: str, port: int, eof: bool = True) -> None:
        """Make a pod's container port accept each tunnel connection and close it at once (an
        EOF right after connect: kubectl stays up, every client gets ``b''``)."""
        self._on_loop(self._state.eof_backend, namespace, pod, port, eof)

    def add_service(
        self,
        name: str,
        *,
        namespace: str = "default",
        selector: Mapping[str, str] | None = None,
        ports: Iterable[ServicePort | Mapping[str, Any] | int] = (80,),
    ) -> str:
        """Create a service while running (``selector`` defaults to ``{"app": name}``; watchers
        see ADDED); returns its name."""
        return self._on_loop(
            partial(self._state.add_service, name, namespace, selector, list(ports))
        )

    def delete_service(self, namespace: str, name: str) -> None:
        """Delete a service while running (watchers see DELETED; open tunnels stay)."""
        self._on_loop(self._state.delete_service, namespace, name)

    def set_idle_timeout(self, seconds: float | None) -> None:
        """Cut every tunnel opened from now on once no stream was opened or carried data for
        ``seconds`` (as a kubelet's ``streaming-connection-idle-timeout`` or a load balancer's idle
        timeout does); None: never."""
        self._on_loop(setattr, self._state, "idle_timeout", seconds)

    def set_server_version(self, version: str) -> None:
        """Change what ``/version`` reports, e.g. ``v1.27.16`` (picks the dispatcher's kubectl)."""
        if not re.fullmatch(r"v\d+\.\d+\.\d+\S*", version):
            raise ValueError(f"version must look like v1.32.4, got {version!r}")
        self._api.version = version

    def pods(self, namespace: str, selector: Mapping[str, str] | None = None) -> list[str]:
        """Names of the current pods in ``namespace`` matching ``selector`` (all if None)."""
        return self._on_loop(
            lambda: [p.name for p in self.world.pods_matching(namespace, selector or {})]
        )

    def backend_port(self, namespace: str, pod: str, container_port: int) -> int:
        """The local port of the backend playing a pod's container port (for direct checks)."""
        return self._on_loop(self._state.backend, namespace, pod, container_port).port

    # -- request log -----------------------------------------------------------------------
    @property
    def request_log(self) -> list[RequestRecord]:
        """The answered API requests (control requests excluded; the most recent 200,000),
        oldest first."""
        return list(self._log)

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        """How many logged requests match ``method`` and ``path_regex`` (``re.search``)."""
        pattern = re.compile(path_regex) if path_regex else None
        return sum(
            1
            for r in list(self._log)
            if (method is None or r.method == method.upper())
            and (pattern is None or pattern.search(r.path))
        )

    def clear_log(self) -> None:
        """Forget the request log."""
        self._on_loop(self._log.clear)

    def _record(self, req: Request, status: int) -> None:
        self._log.append(RequestRecord(req.method, req.target, status, time.time()))
