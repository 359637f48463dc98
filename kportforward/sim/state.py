"""The live cluster: the world plus resource versions, watch events, backends and open tunnels.

Every method runs on the simulator's event loop thread (the Simulator marshals calls from other
threads), so no locks are needed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kportforward.sim.backends import Backend
from kportforward.sim.hangup import HangUpListener
from kportforward.sim.objects import pod_json, service_json
from kportforward.sim.portforward import PortForwardSession
from kportforward.sim.world import PHASES, Pod, ServicePort, World

HISTORY = 2_000  # watch events kept for resourceVersion replays (older: 410 Expired)


@dataclass(eq=False)
class Watcher:
    """One open watch: what it selects and the queue its stream drains."""

    resource: str
    namespace: str | None
    matches: Callable[[Mapping[str, str], str], bool]
    queue: asyncio.Queue[tuple[int, str, dict[str, Any]]] = field(default_factory=asyncio.Queue)


class ClusterState:
    """World + events + backends + sessions; the fault methods' real implementations."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.rv = 1
        self.events: deque[tuple[int, str, str, str, dict[str, str], str, dict[str, Any]]] = deque(
            maxlen=HISTORY
        )
        self.watchers: set[Watcher] = set()
        self.backends: dict[tuple[str, str], dict[int, Backend]] = {}
        self.sessions: dict[tuple[str, str], set[PortForwardSession]] = {}
        self.idle_timeout: float | None = None
        """Cut tunnels idle this long (a kubelet's streaming-connection-idle-timeout); None:
        never."""
        self._starting: set[asyncio.Task[None]] = set()
        self.hanging_up: set[tuple[str, str, int]] = set()  # (ns, pod, port) under the EOF fault
        self._hangup: HangUpListener | None = None
        self.live = False  # backends start only once the simulator runs on its loop
        for pod in world.pods.values():
            pod.resource_version = self.rv

    def go_live(self) -> None:
        """Start every pod's backends (called by Simulator.start on the loop)."""
        self.live = True
        for pod in list(self.world.pods.values()):
            self.start_backends(pod)

    # -- backends --------------------------------------------------------------------------
    def start_backends(self, pod: Pod) -> None:
        """Bind and start one backend per container port of ``pod``."""
        if not self.live:
            return
        loop = asyncio.get_running_loop()
        ports = self.backends.setdefault((pod.namespace, pod.name), {})
        for cp in pod.ports:
            if cp.port not in ports:
                backend = Backend(cp.backend, pod.namespace, pod.name, cp.port)
                ports[cp.port] = backend
                task = loop.create_task(backend.start())
                self._starting.add(task)
                task.add_done_callback(self._starting.discard)

    def close_backends(self, namespace: str, name: str) -> None:
        """Close the pod's backends (its containers stopped)."""
        for backend in self.backends.pop((namespace, name), {}).values():
            backend.close()

    def close_all(self) -> None:
        """Close every backend and tunnel (shutdown); later faults change only the world."""
        self.live = False
        for key in list(self.backends):
            self.close_backends(*key)
        if self._hangup is not None:
            self._hangup.close()
            self._hangup = None
        self.drop_streams()

    def resolve(self, namespace: str, pod: str, port: int) -> tuple[str, int]:
        """The backend address of a container port; OSError (as a dial would) if none."""
        backend = self.backends.get((namespace, pod), {}).get(port)
        if backend is None or backend.refusing:
            raise ConnectionRefusedError(f"dial tcp4 127.0.0.1:{port}: connect: connection refused")
        if (namespace, pod, port) in self.hanging_up and self._hangup is not None:
            return self._hangup.address
        return backend.address

    def backend(self, namespace: str, pod: str, port: int) -> Backend:
        """The backend of a container port (KeyError if there is none)."""
        try:
            return self.backends[(namespace, pod)][port]
        except KeyError:
            raise KeyError(f"no backend for {namespace}/{pod} port {port}") from None

    # -- sessions --------------------------------------------------------------------------
    def add_session(self, namespace: str, pod: str, session: PortForwardSession) -> None:
        """Track an open tunnel so faults can cut it."""
        self.sessions.setdefault((namespace, pod), set()).add(session)

    def remove_session(self, namespace: str, pod: str, session: PortForwardSession) -> None:
        """Forget a finished tunnel."""
        sessions = self.sessions.get((namespace, pod))
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self.sessions[(namespace, pod)]

    def cut_sessions(self, namespace: str, pod: str) -> int:
        """Abort the tunnels to one pod; returns how many."""
        sessions = self.sessions.pop((namespace, pod), set())
        for session in sessions:
            session.abort()
        return len(sessions)

    def set_hung(self, hung: bool) -> None:
        """Stall or resume every open tunnel."""
        for sessions in self.sessions.values():
            for session in sessions:
                session.set_hung(hung)

    def drop_streams(self) -> int:
        """Abort every open tunnel; returns how many."""
        count = 0
        for key in list(self.sessions):
            count += self.cut_sessions(*key)
        return count

    # -- events ----------------------------------------------------------------------------
    def publish_service(self, etype: str, namespace: str, name: str, obj: dict[str, Any]) -> None:
        """Bump the resourceVersion and tell service watchers (services carry no labels here)."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, etype, "services", namespace, {}, name, obj))
        for w in list(self.watchers):
            in_scope = w.resource == "services" and w.namespace in (None, namespace)
            if in_scope and w.matches({}, name):
                w.queue.put_nowait((self.rv, etype, obj))

    def publish_pod(self, etype: str, pod: Pod) -> None:
        """Bump the resourceVersion and tell matching watchers."""
        self.rv += 1
        pod.resource_version = self.rv
        obj = pod_json(pod)
        self.events.append((self.rv, etype, "pods", pod.namespace, pod.labels, pod.name, obj))
        for w in list(self.watchers):
            in_scope = w.resource == "pods" and w.namespace in (None, pod.namespace)
            if in_scope and w.matches(pod.labels, pod.name):
                w.queue.put_nowait((self.rv, etype, obj))

    # -- faults ----------------------------------------------------------------------------
    def pod(self, namespace: str, name: str) -> Pod:
        """The pod, or KeyError naming it."""
        pod = self.world.pods.get((namespace, name))
        if pod is None:
            raise KeyError(f'pods "{name}" not found in namespace "{namespace}"')
        return pod

    def delete_pod(self, namespace: str, name: str) -> None:
        """Remove the pod: its backends close, its tunnels are cut, watchers see DELETED."""
        pod = self.pod(namespace, name)
        del self.world.pods[(namespace, name)]
        self.cut_sessions(namespace, name)
        self.close_backends(namespace, name)
        self.publish_pod("DELETED", pod)

    def restart_pod(self, namespace: str, name: str) -> str:
        """Replace the pod by a new one (new name, same labels and ports); returns the new name."""
        old = self.pod(namespace, name)
        new_name = self.world.replacement_name(old)
        self.delete_pod(namespace, name)
        pod = self.world.add_pod(
            new_name,
            namespace=namespace,
            labels=old.labels,
            ports=old.ports,
            phase="Running",
            ready=True,
            owner=old.owner,
        )
        pod.restarts = 0
        pod.created = time.time()
        self.start_backends(pod)
        self.publish_pod("ADDED", pod)
        return new_name

    def add_pod(self, name: str, **kwargs: Any) -> str:
        """Create a pod at runtime (World.add_pod arguments); watchers see ADDED."""
        if (kwargs.get("namespace", "default"), name) in self.world.pods:
            raise ValueError(f'pods "{name}" already exists')
        pod = self.world.add_pod(name, **kwargs)
        self.start_backends(pod)
        self.publish_pod("ADDED", pod)
        return pod.name

    def set_pod_ready(self, namespace: str, name: str, ready: bool) -> None:
        """Flip readiness; watchers see MODIFIED."""
        pod = self.pod(namespace, name)
        pod.ready = bool(ready)
        self.publish_pod("MODIFIED", pod)

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> None:
        """Change the phase (Pending, Running, Failed, …); watchers see MODIFIED."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
        pod = self.pod(namespace, name)
        pod.phase = phase
        self.publish_pod("MODIFIED", pod)

    def refuse_backend(self, namespace: str, pod: str, port: int, refuse: bool = True) -> None:
        """Make one container port refuse new tunnels (as if nothing listened there)."""
        self.pod(namespace, pod)
        self.backend(namespace, pod, port).refusing = refuse

    def eof_backend(self, namespace: str, pod: str, port: int, eof: bool = True) -> None:
        """Make one container port accept new tunnel connections and close them at once."""
        self.pod(namespace, pod)
        self.backend(namespace, pod, port)
        if eof:
            if self._hangup is None:
                self._hangup = HangUpListener()
            self.hanging_up.add((namespace, pod, port))
        else:
            self.hanging_up.discard((namespace, pod, port))

    def add_service(
        self,
        name: str,
        namespace: str = "default",
        selector: Mapping[str, str] | None = None,
        ports: list[ServicePort | Mapping[str, Any] | int] | None = None,
    ) -> str:
        """Create a service at runtime (World.add_service arguments); watchers see ADDED."""
        if (namespace, name) in self.world.services:
            raise ValueError(f'services "{name}" already exists')
        svc = self.world.add_service(
            name, namespace=namespace, selector=selector, ports=ports or [80]
        )
        self.publish_service("ADDED", namespace, name, service_json(svc))
        return svc.name

    def delete_service(self, namespace: str, name: str) -> None:
        """Remove a service (open tunnels stay: they go to pods); watchers see DELETED."""
        svc = self.world.services.pop((namespace, name), None)
        if svc is None:
            raise KeyError(f'services "{name}" not found in namespace "{namespace}"')
        self.publish_service("DELETED", namespace, name, service_json(svc))
