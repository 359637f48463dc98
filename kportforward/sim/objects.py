"""Kubernetes JSON for the world's objects: enough fields for kubectl and the python client."""

from __future__ import annotations

import time
from typing import Any

from kportforward.sim.world import Pod, Service, Workload, World, object_uid

JSON = dict[str, Any]

# resource plural -> (kind, group/version, namespaced)
RESOURCES: dict[str, tuple[str, str, bool]] = {
    "namespaces": ("Namespace", "v1", False),
    "pods": ("Pod", "v1", True),
    "services": ("Service", "v1", True),
    "endpoints": ("Endpoints", "v1", True),
    "deployments": ("Deployment", "apps/v1", True),
    "replicasets": ("ReplicaSet", "apps/v1", True),
    "statefulsets": ("StatefulSet", "apps/v1", True),
}


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _meta(
    name: str, namespace: str | None, uid: str, created: float, rv: int, **extra: Any
) -> JSON:
    meta: JSON = {
        "name": name,
        "uid": uid,
        "resourceVersion": str(rv),
        "creationTimestamp": _ts(created),
    }
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update({k: v for k, v in extra.items() if v})
    return meta


def _container_ports(ports: list[Any]) -> list[JSON]:
    out = []
    for p in ports:
        item: JSON = {"containerPort": p.port, "protocol": "TCP"}
        if p.name:
            item["name"] = p.name
        out.append(item)
    return out


def pod_json(pod: Pod) -> JSON:
    """A Pod with spec, status, conditions and container statuses."""
    ready = pod.phase == "Running" and pod.ready
    owner = None
    if pod.owner is not None:
        owner = [
            {
                "apiVersion": "apps/v1",
                "kind": pod.owner[0],
                "name": pod.owner[1],
                "uid": object_uid(pod.owner[0], pod.namespace, pod.owner[1]),
                "controller": True,
            }
        ]
    started = pod.phase in ("Running", "Succeeded", "Failed")
    conds = [
        ("PodScheduled", True),
        ("Initialized", True),
        ("ContainersReady", ready),
        ("Ready", ready),
    ]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": _meta(
            pod.name,
            pod.namespace,
            pod.uid,
            pod.created,
            pod.resource_version,
            labels=pod.labels,
            ownerReferences=owner,
        ),
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "kportforward/sim-backend:latest",
                    "ports": _container_ports(pod.ports),
                }
            ],
            "restartPolicy": "Always",
            "nodeName": "sim-node",
        },
        "status": {
            "phase": pod.phase,
            "conditions": [
                {
                    "type": t,
                    "status": "True" if ok else "False",
                    "lastTransitionTime": _ts(pod.created),
                }
                for t, ok in conds
            ],
            "hostIP": "10.0.0.1",
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "startTime": _ts(pod.created),
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": ready,
                    "started": started,
                    "restartCount": pod.restarts,
                    "image": "kportforward/sim-backend:latest",
                    "imageID": "sim://backend",
                    "state": {"running": {"startedAt": _ts(pod.created)}}
                    if pod.phase == "Running"
                    else {"waiting": {"reason": "ContainerCreating"}},
                }
            ],
        },
    }


def service_json(svc: Service) -> JSON:
    """A ClusterIP Service."""
    ports = []
    for p in svc.ports:
        item: JSON = {"port": p.port, "protocol": "TCP", "targetPort": p.target_port or p.port}
        if p.name:
            item["name"] = p.name
        ports.append(item)
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": _meta(svc.name, svc.namespace, svc.uid, svc.created, 1),
        "spec": {
            "selector": svc.selector,
            "ports": ports,
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
        },
        "status": {"loadBalancer": {}},
    }


def endpoints_json(svc: Service, world: World) -> JSON:
    """Endpoints of a service: its ready and not-ready pods."""
    pods = world.pods_matching(svc.namespace, svc.selector) if svc.selector else []
    ready = [p for p in pods if p.phase == "Running" and p.ready]
    not_ready = [p for p in pods if p not in ready]

    def addr(p: Pod) -> JSON:
        return {
            "ip": p.ip,
            "targetRef": {"kind": "Pod", "name": p.name, "namespace": p.namespace, "uid": p.uid},
        }

    subset: JSON = {"ports": [{"port": p.port, "protocol": "TCP"} for p in svc.ports]}
    if ready:
        subset["addresses"] = [addr(p) for p in ready]
    if not_ready:
        subset["notReadyAddresses"] = [addr(p) for p in not_ready]
    return {
        "kind": "Endpoints",
        "apiVersion": "v1",
        "metadata": _meta(svc.name, svc.namespace, svc.uid, svc.created, 1),
        "subsets": [subset] if pods else [],
    }


def workload_json(wl: Workload, world: World) -> JSON:
    """A Deployment, StatefulSet or ReplicaSet with counts derived from its pods."""
    pods = world.pods_matching(wl.namespace, wl.selector)
    ready = sum(1 for p in pods if p.phase == "Running" and p.ready)
    spec: JSON = {
        "replicas": wl.replicas,
        "selector": {"matchLabels": wl.selector},
        "template": {
            "metadata": {"labels": wl.selector},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "kportforward/sim-backend:latest",
                        "ports": _container_ports(wl.ports),
                    }
                ]
            },
        },
    }
    if wl.kind == "StatefulSet":
        spec["serviceName"] = wl.name
    return {
        "kind": wl.kind,
        "apiVersion": "apps/v1",
        "metadata": _meta(wl.name, wl.namespace, wl.uid, wl.created, 1, labels=wl.selector),
        "spec": spec,
        "status": {
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": len(pods),
            "observedGeneration": 1,
        },
    }


def namespace_json(name: str) -> JSON:
    """An active Namespace."""
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "uid": f"ns-{name}", "resourceVersion": "1"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def list_json(resource: str, items: list[JSON], rv: int) -> JSON:
    """A typed list (PodList, ServiceList, …) at resourceVersion ``rv``."""
    kind, api_version, _ = RESOURCES[resource]
    return {
        "kind": f"{kind}List",
        "apiVersion": api_version,
        "metadata": {"resourceVersion": str(rv)},
        "items": items,
    }


def status_json(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    """A Status object, as the API server sends with every error."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def version_json(version: str) -> JSON:
    """What ``/version`` reports; the gcloud kubectl dispatcher picks its client from it."""
    parts = version.lstrip("v").split(".")
    major = parts[0] if parts else "1"
    minor = parts[1] if len(parts) > 1 else "0"
    return {
        "major": major,
        "minor": minor,
        "gitVersion": version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def discovery(path: str, server: str) -> JSON | None:
    """The plain-JSON discovery documents (APIVersions, APIGroupList, APIResourceList)."""
    if path == "/api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
        }
    if path == "/apis":
        apps = {"groupVersion": "apps/v1", "version": "v1"}
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [{"name": "apps", "versions": [apps], "preferredVersion": apps}],
        }
    if path in ("/api/v1", "/apis/apps/v1"):
        group_version = path.split("/", 2)[2]
        resources = []
        for plural, (kind, gv, namespaced) in RESOURCES.items():
            if gv != group_version:
                continue
            resources.append(
                {
                    "name": plural,
                    "singularName": kind.lower(),
                    "namespaced": namespaced,
                    "kind": kind,
                    "verbs": ["get", "list", "watch"],
                    "shortNames": _SHORT.get(plural, []),
                }
            )
            if plural == "pods":
                resources.append(
                    {
                        "name": "pods/portforward",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "PodPortForwardOptions",
                        "verbs": ["create", "get"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }
    return None


_SHORT = {
    "namespaces": ["ns"],
    "pods": ["po"],
    "services": ["svc"],
    "endpoints": ["ep"],
    "deployments": ["deploy"],
    "replicasets": ["rs"],
    "statefulsets": ["sts"],
}
