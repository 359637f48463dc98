"""What the simulated cluster contains: namespaces, services, workloads and their pods.

Built in Python (``World().add_deployment(...)``) or from YAML/dicts (``World.from_yaml(path)``).
Names of generated pods come from a seeded random generator, so the same world always has the same
pod names (stable demo screens and snapshots).
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kportforward.sim.backends import BACKEND_KINDS

WORKLOAD_KINDS = {
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "replicaset": "ReplicaSet",
}
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the one Kubernetes uses for generated names


def object_uid(kind: str, namespace: str, name: str) -> str:
    """A stable uid for a named object (owner references can be built without a lookup)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kportforward-sim/{kind}/{namespace}/{name}"))


class WorldError(ValueError):
    """A world description is invalid; the message names the key and says what to do.
    ``path`` is the key path inside the description (for finding the line in a file)."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


@dataclass
class ContainerPort:
    """A port a pod's container listens on, played by a backend of kind ``echo`` or ``http``."""

    port: int
    name: str | None = None
    backend: str = "echo"


@dataclass
class ServicePort:
    """A service port; ``target_port`` is a number or a container port's name (default ``port``)."""

    port: int
    target_port: int | str | None = None
    name: str | None = None


@dataclass
class Pod:
    """A pod: labels, phase, readiness, container ports; ``owner`` is (Kind, name) or None."""

    namespace: str
    name: str
    labels: dict[str, str]
    ports: list[ContainerPort]
    phase: str = "Running"
    ready: bool = True
    owner: tuple[str, str] | None = None
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = field(default_factory=time.time)
    ip: str = ""
    restarts: int = 0
    resource_version: int = 1


@dataclass
class Service:
    """A ClusterIP service selecting pods by label."""

    namespace: str
    name: str
    selector: dict[str, str]
    ports: list[ServicePort]
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = field(default_factory=time.time)


@dataclass
class Workload:
    """A Deployment, StatefulSet or ReplicaSet: a selector and the template of its pods."""

    kind: str
    namespace: str
    name: str
    selector: dict[str, str]
    replicas: int
    ports: list[ContainerPort]
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = field(default_factory=time.time)


def _container_port(item: ContainerPort | Mapping[str, Any] | int, where: str) -> ContainerPort:
    if isinstance(item, ContainerPort):
        return item
    if isinstance(item, int) and not isinstance(item, bool):
        return ContainerPort(_port_number(item, where))
    if not isinstance(item, Mapping):
        raise WorldError(f"{where}: expected a port number or a mapping, got {item!r}")
    port = item.get("containerPort", item.get("port"))
    backend = str(item.get("backend", "echo"))
    if backend not in BACKEND_KINDS:
        raise WorldError(f"{where}.backend: {backend!r} is not one of {', '.join(BACKEND_KINDS)}")
    name = item.get("name")
    return ContainerPort(_port_number(port, f"{where}.containerPort"), _name(name, where), backend)


def _service_port(item: ServicePort | Mapping[str, Any] | int, where: str) -> ServicePort:
    if isinstance(item, ServicePort):
        return item
    if isinstance(item, int) and not isinstance(item, bool):
        return ServicePort(_port_number(item, where))
    if not isinstance(item, Mapping):
        raise WorldError(f"{where}: expected a port number or a mapping, got {item!r}")
    port = _port_number(item.get("port"), f"{where}.port")
    target = item.get("targetPort", item.get("target_port"))
    if target is not None and not isinstance(target, str):
        target = _port_number(target, f"{where}.targetPort")
    return ServicePort(port, target, _name(item.get("name"), where))


def _port_number(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise WorldError(f"{where}: port must be a number from 1 to 65535, got {value!r}")
    return value


def _name(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise WorldError(f"{where}.name: must be a non-empty string, got {value!r}")
    return value


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WorldError(f"{where}: must be a mapping of label to value, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


class World:
    """The cluster's contents. Mutated only through its methods (the simulator adds the events)."""

    def __init__(self, seed: int = 0) -> None:
        self.namespaces: list[str] = []
        self.services: dict[tuple[str, str], Service] = {}
        self.workloads: dict[tuple[str, str, str], Workload] = {}
        self.pods: dict[tuple[str, str], Pod] = {}
        self._rng = random.Random(seed)
        self._next_ip = 10

    # -- building --------------------------------------------------------------------------
    def add_namespace(self, name: str) -> World:
        """Add a namespace (idempotent)."""
        if name not in self.namespaces:
            self.namespaces.append(name)
        return self

    def add_service(
        self,
        name: str,
        *,
        namespace: str = "default",
        selector: Mapping[str, str] | None = None,
        ports: Iterable[ServicePort | Mapping[str, Any] | int] = (80,),
    ) -> Service:
        """Add a service; ``selector`` defaults to ``{"app": name}``; ``ports``: ints or dicts."""
        self.add_namespace(namespace)
        where = f"services.{namespace}/{name}"
        svc = Service(
            namespace,
            name,
            dict(selector) if selector is not None else {"app": name},
            [_service_port(p, f"{where}.ports[{i}]") for i, p in enumerate(ports)],
        )
        self.services[(namespace, name)] = svc
        return svc

    def add_workload(
        self,
        kind: str,
        name: str,
        *,
        namespace: str = "default",
        selector: Mapping[str, str] | None = None,
        replicas: int = 1,
        ports: Iterable[ContainerPort | Mapping[str, Any] | int] = (),
        phase: str = "Running",
        ready: bool = True,
    ) -> Workload:
        """Add a deployment/statefulset/replicaset (``kind``) and its ``replicas`` pods."""
        kind_name = WORKLOAD_KINDS.get(kind.lower())
        if kind_name is None:
            raise WorldError(f"{kind!r} is not a workload kind (use {', '.join(WORKLOAD_KINDS)})")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise WorldError(f"{kind}s.{namespace}/{name}.replicas: must be a number >= 0")
        self.add_namespace(namespace)
        where = f"{kind}s.{namespace}/{name}"
        wl = Workload(
            kind_name,
            namespace,
            name,
            dict(selector) if selector is not None else {"app": name},
            replicas,
            [_container_port(p, f"{where}.ports[{i}]") for i, p in enumerate(ports)],
            uid=object_uid(kind_name, namespace, name),
        )
        self.workloads[(kind_name, namespace, name)] = wl
        for _ in range(replicas):
            self.add_pod(
                self.pod_name_for(wl),
                namespace=namespace,
                labels=wl.selector,
                ports=wl.ports,
                phase=phase,
                ready=ready,
                owner=(kind_name, name),
            )
        return wl

    def add_deployment(self, name: str, **kw: Any) -> Workload:
        """Add a Deployment (see :meth:`add_workload`)."""
        return self.add_workload("deployment", name, **kw)

    def add_statefulset(self, name: str, **kw: Any) -> Workload:
        """Add a StatefulSet (pods ``name-0``, ``name-1``, …)."""
        return self.add_workload("statefulset", name, **kw)

    def add_replicaset(self, name: str, **kw: Any) -> Workload:
        """Add a ReplicaSet."""
        return self.add_workload("replicaset", name, **kw)

    def add_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        ports: Iterable[ContainerPort | Mapping[str, Any] | int] = (),
        phase: str = "Running",
        ready: bool = True,
        owner: tuple[str, str] | None = None,
    ) -> Pod:
        """Add a pod (a bare one unless ``owner`` names its workload)."""
        if phase not in PHASES:
            raise WorldError(f"pods.{namespace}/{name}.phase: {phase!r} is not one of {PHASES}")
        self.add_namespace(namespace)
        where = f"pods.{namespace}/{name}"
        pod = Pod(
            namespace,
            name,
            dict(labels) if labels is not None else {"app": name},
            [_container_port(p, f"{where}.ports[{i}]") for i, p in enumerate(ports)],
            phase,
            bool(ready),
            owner,
            ip=self._ip(),
        )
        self.pods[(namespace, name)] = pod
        return pod

    def add_app(
        self,
        name: str,
        *,
        namespace: str = "default",
        kind: str = "deployment",
        replicas: int = 1,
        port: int = 80,
        target_port: int = 8080,
        port_name: str = "http",
        backend: str = "http",
    ) -> Service:
        """A workload plus a service in front of it, using a named targetPort (the common shape)."""
        self.add_workload(
            kind,
            name,
            namespace=namespace,
            replicas=replicas,
            ports=[ContainerPort(target_port, port_name, backend)],
        )
        return self.add_service(
            name, namespace=namespace, ports=[ServicePort(port, port_name, port_name)]
        )

    # -- queries and naming ----------------------------------------------------------------
    def pods_matching(self, namespace: str | None, selector: Mapping[str, str]) -> list[Pod]:
        """Pods in ``namespace`` (None: all) whose labels include every selector pair."""
        return [
            p
            for p in self.pods.values()
            if (namespace is None or p.namespace == namespace)
            and all(p.labels.get(k) == v for k, v in selector.items())
        ]

    def pod_name_for(self, wl: Workload) -> str:
        """A fresh, unused name for a pod of ``wl``, shaped like Kubernetes' own."""
        if wl.kind == "StatefulSet":
            i = 0
            while (wl.namespace, f"{wl.name}-{i}") in self.pods:
                i += 1
            return f"{wl.name}-{i}"
        while True:
            suffix = "".join(self._rng.choice(_ALPHABET) for _ in range(5))
            if wl.kind == "Deployment":
                digest = hashlib.sha1(f"{wl.namespace}/{wl.name}".encode()).hexdigest()
                template = "".join(_ALPHABET[int(c, 16) % len(_ALPHABET)] for c in digest[:9])
                name = f"{wl.name}-{template}-{suffix}"
            else:
                name = f"{wl.name}-{suffix}"
            if (wl.namespace, name) not in self.pods:
                return name

    def replacement_name(self, pod: Pod) -> str:
        """The name of the pod that replaces ``pod`` on restart (always a new name)."""
        if pod.owner is not None:
            wl = self.workloads.get((pod.owner[0], pod.namespace, pod.owner[1]))
            if wl is not None:
                return self.pod_name_for(wl)
        i = 1
        base = pod.name.rsplit("-r", 1)[0]
        while (pod.namespace, f"{base}-r{i}") in self.pods:
            i += 1
        return f"{base}-r{i}"

    def _ip(self) -> str:
        self._next_ip += 1
        return f"10.244.{self._next_ip // 250}.{self._next_ip % 250 + 2}"

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> World:
        """Load a world from a YAML file (shape: :meth:`from_dict`); errors name file:line: key."""
        from kportforward.sim.worldfile import load_world_file

        return load_world_file(path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> World:
        """Build from ``{namespaces: {NS: {services: [...], deployments: [...], statefulsets:
        [...], replicasets: [...], pods: [...]}}}``. Each item has ``name`` plus the keyword
        arguments of the matching ``add_*`` method (``selector``, ``ports``, ``replicas``,
        ``labels``, ``phase``, ``ready``). Optional top-level ``seed``."""
        from kportforward.sim.worldfile import world_from_dict

        return world_from_dict(data)
