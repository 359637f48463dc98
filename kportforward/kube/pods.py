"""The pods behind a forward's target (``resolve_pods``), and the shared ``PodWatcher``.

Objects are read as plain JSON rather than the kubernetes package's model classes: deserialising
every pod into models costs far more than the few fields we need. The watch itself lives in
``podwatch.py``, the records in ``podinfo.py``; both are re-exported here.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from kportforward.core.models import ForwardSpec
from kportforward.kube import client as kclient
from kportforward.kube.classify import KubeApiError, classify
from kportforward.kube.podinfo import PodChange, PodInfo, label_selector, pod_info
from kportforward.kube.podwatch import PodWatcher

__all__ = ["PodChange", "PodInfo", "PodWatcher", "label_selector", "pod_info", "resolve_pods"]

# kubectl's spellings of the kinds a forward may target.
_KINDS = {
    **dict.fromkeys(("pod", "pods", "po"), "pod"),
    **dict.fromkeys(("service", "services", "svc"), "service"),
    **dict.fromkeys(("deployment", "deployments", "deploy"), "deployment"),
    **dict.fromkeys(("statefulset", "statefulsets", "sts"), "statefulset"),
    **dict.fromkeys(("replicaset", "replicasets", "rs"), "replicaset"),
}
_PLURAL = {
    "pod": "pods",
    "service": "services",
    "deployment": "deployments",
    "statefulset": "statefulsets",
    "replicaset": "replicasets",
}
_PREFIX = {kind: "/api/v1" if kind in ("pod", "service") else "/apis/apps/v1" for kind in _PLURAL}


def _resolve_blocking(
    spec: ForwardSpec, kubeconfig: str | None, context: str | None, deadline: float
) -> list[PodInfo]:
    def remaining() -> float:
        return max(0.05, deadline - time.monotonic())

    api, _, ctx = kclient.get_client(kubeconfig, context, deadline)
    ns = spec.namespace or ctx.namespace or "default"
    kind_text, _, name = spec.target.partition("/")
    kind = _KINDS.get(kind_text.split(".", 1)[0].lower())
    if kind is None or not name:
        raise KubeApiError(
            "config",
            f"forward '{spec.name}': target '{spec.target}' is not KIND/NAME with a kind of "
            "pod, service, deployment, statefulset or replicaset",
            "fix the forward's target",
        )
    what = f"{kind} '{name}' in namespace '{ns}'"
    get = kclient.api_get_json
    ns_path = f"/namespaces/{quote(ns, safe='')}"
    try:
        path = f"{_PREFIX[kind]}{ns_path}/{_PLURAL[kind]}/{quote(name, safe='')}"
        obj = get(api, path, None, remaining())
        if kind == "pod":
            return [pod_info(obj)]
        selector = label_selector((obj.get("spec") or {}).get("selector") or {})
        if not selector:
            return []
        pods = get(api, f"/api/v1{ns_path}/pods", {"labelSelector": selector}, remaining())
    except Exception as exc:
        raise classify(exc, ctx.server, f"reading {what}") from None
    infos = [pod_info(item) for item in pods.get("items") or []]
    # Ready pods first, as kubectl prefers them; then by name for a stable order.
    return sorted(infos, key=lambda p: (not p.ready, p.name))


async def resolve_pods(
    spec: ForwardSpec, *, kubeconfig: str | None, context: str | None, timeout: float = 5.0
) -> list[PodInfo]:
    """The pods behind ``spec.target`` (ready first): the pod itself, or those its selector matches.

    Raises KubeApiError (``kind``: notfound, auth, forbidden, network, config) or KubeconfigError.
    """
    return await kclient.api_call(
        _resolve_blocking,
        spec,
        kubeconfig,
        context,
        timeout=timeout,
        name=f"kpf-resolve-{spec.name}",
        doing=f"resolving {spec.target}",
        hint="is the cluster up?",
    )
