"""What we know of a pod, and how a change to one is reported."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What we know of one pod."""

    name: str
    namespace: str
    phase: str
    ready: bool
    """Running, Ready condition true, and not being deleted."""
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    resource_version: str = ""
    uid: str = ""
    deleting: bool = False
    """A deletionTimestamp is set: the pod is terminating."""


@dataclass(frozen=True, slots=True)
class PodChange:
    """A pod in a watched namespace changed.

    ``kind`` is ``added``, ``deleted``, ``ready``, ``not_ready`` or ``modified``.
    """

    namespace: str
    name: str
    kind: str
    context: str | None = None
    """The context exactly as passed to ``PodWatcher.watch``."""
    kubeconfig: str | None = None
    """The kubeconfig exactly as passed to ``PodWatcher.watch``."""
    pod: PodInfo | None = None
    """The pod after the change (before it, for ``deleted``)."""


def pod_info(obj: Mapping[str, Any]) -> PodInfo:
    """A PodInfo from a pod's JSON."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    phase = status.get("phase") or "Unknown"
    deleting = bool(meta.get("deletionTimestamp"))
    ready_condition = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return PodInfo(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        phase=phase,
        ready=phase == "Running" and ready_condition and not deleting,
        labels=MappingProxyType(dict(meta.get("labels") or {})),
        resource_version=str(meta.get("resourceVersion", "")),
        uid=str(meta.get("uid", "")),
        deleting=deleting,
    )


def label_selector(selector: Mapping[str, Any]) -> str:
    """A LabelSelector (matchLabels/matchExpressions) or a Service's selector, as a query string."""
    if "matchLabels" in selector or "matchExpressions" in selector:
        parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
        for expr in selector.get("matchExpressions") or []:
            key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
            if op == "In":
                parts.append(f"{key} in ({','.join(values)})")
            elif op == "NotIn":
                parts.append(f"{key} notin ({','.join(values)})")
            elif op == "Exists":
                parts.append(str(key))
            elif op == "DoesNotExist":
                parts.append(f"!{key}")
        return ",".join(parts)
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
