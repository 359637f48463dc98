"""Discovering what can be forwarded: the services of a namespace and their TCP ports.

Read through the API (never kubectl), off the event loop, bounded in time; failures are the same
classified ``KubeApiError`` the rest of ``kube/`` raises. Used by ``kportforward add``/``discover``
and the dashboard's ``a`` screen; turning a pick into config entries is ``core/config_append.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kportforward.kube import client as kclient
from kportforward.kube.classify import classify


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One TCP port of a service."""

    port: int
    name: str = ""
    target_port: int | str = ""
    app_protocol: str = ""


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A service and the ports kubectl can forward to."""

    name: str
    namespace: str
    ports: tuple[ServicePort, ...]
    type: str = "ClusterIP"


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a namespace offers, and where it was read from."""

    namespace: str
    context: str
    services: tuple[ServiceInfo, ...]


def service_info(obj: dict[str, Any]) -> ServiceInfo:
    """A ServiceInfo from a Service's JSON (TCP ports only: kubectl forwards TCP)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        if (p.get("protocol") or "TCP") != "TCP" or not isinstance(p.get("port"), int):
            continue
        ports.append(
            ServicePort(
                port=p["port"],
                name=str(p.get("name") or ""),
                target_port=p.get("targetPort") or p["port"],
                app_protocol=str(p.get("appProtocol") or ""),
            )
        )
    return ServiceInfo(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        ports=tuple(ports),
        type=str(spec.get("type") or "ClusterIP"),
    )


def _discover_blocking(
    namespace: str | None, kubeconfig: str | None, context: str | None, deadline: float
) -> Discovery:
    api, _, ctx = kclient.get_client(kubeconfig, context, deadline)
    ns = namespace or ctx.namespace or "default"
    path = f"/api/v1/namespaces/{quote(ns, safe='')}/services"
    try:
        body = kclient.api_get_json(api, path, None, max(0.05, deadline - time.monotonic()))
    except Exception as exc:
        raise classify(exc, ctx.server, f"listing the services of namespace '{ns}'") from None
    services = [service_info(item) for item in body.get("items") or []]
    services = [s for s in services if s.ports and s.name]
    return Discovery(ns, ctx.name, tuple(sorted(services, key=lambda s: s.name)))


async def discover_services(
    namespace: str | None,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    timeout: float = 10.0,
) -> Discovery:
    """The services of ``namespace`` (None: the context's namespace) that have TCP ports.

    Raises KubeApiError (``kind``: notfound, auth, forbidden, network, config) or
    KubeconfigError / KubeContextError.
    """
    return await kclient.api_call(
        _discover_blocking,
        namespace,
        kubeconfig,
        context,
        timeout=timeout,
        name="kpf-discover",
        doing="listing services",
        hint="is the cluster up? (kportforward check)",
    )
