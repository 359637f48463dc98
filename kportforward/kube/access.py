"""An RBAC-safe access probe: can we reach this cluster, and will it let us in?

The probe is ``GET /version`` followed by ``GET /api/v1/namespaces/NS/pods?limit=1``.

Why listing pods (limit=1) rather than a SelfSubjectAccessReview for ``create
pods/portforward``: listing pods in the namespace is exactly what ``kubectl port-forward service/…``
and our pod watcher must do anyway, so a user who passes the probe can really forward; a
namespace-only Role can grant it (it is never a cluster-scoped list); it costs one object; and every
API server answers it the same way, whereas an access review answers 201 "allowed: false" that needs
a second interpretation and is not implemented by every stand-in server. The ``pods/portforward``
permission itself is reported by kubectl (Failed with its message), more precisely than any check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

from kportforward.errors import KubeconfigError
from kportforward.kube import client as kclient
from kportforward.kube.classify import KubeApiError, classify
from kportforward.kube.execplugin import plugin_signal_guard

ACCESS_KINDS = ("ok", "auth", "network", "forbidden", "config")


@dataclass(frozen=True, slots=True)
class AccessResult:
    """The outcome of one access probe: ``kind`` is ok, auth, network, forbidden or config."""

    kind: str
    message: str
    """One line for a person; never contains credentials."""
    context: str | None = None
    """The context probed (resolved: the current context's name when none was asked for)."""
    server: str = ""
    namespace: str | None = None
    seconds: float = 0.0
    """How long the probe took."""

    @property
    def ok(self) -> bool:
        """True when the cluster answered and let us list pods."""
        return self.kind == "ok"

    @property
    def server_answered(self) -> bool | None:
        """Whether the API server itself answered: True for ok/auth/forbidden, False for network,
        None for config (we never got as far as asking it, e.g. an exec plugin failed)."""
        if self.kind == "network":
            return False
        return None if self.kind == "config" else True


def _probe_blocking(
    kubeconfig: str | None, context: str | None, namespace: str, deadline: float, server: str
) -> str:
    """The probe itself, in a worker thread. Returns the server version; raises KubeApiError."""

    def remaining() -> float:
        return max(0.05, deadline - time.monotonic())

    step = "reading the kubeconfig"
    try:
        api, _, _ = kclient.get_client(kubeconfig, context, deadline)
        step = "GET /version"
        version = kclient.api_get_json(api, "/version", None, remaining())
        step = f"listing pods in namespace '{namespace}'"
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods"
        kclient.api_get_json(api, path, {"limit": 1}, remaining())
    except Exception as exc:
        error = classify(exc, server, step)
        if error.kind == "auth":
            # Credentials may have been refreshed since (a new token, an exec plugin): build anew.
            kclient.forget_client(kubeconfig, context)
        raise error from None
    return str(version.get("gitVersion", "")) if isinstance(version, dict) else ""


async def probe_access(
    context: str | None = None,
    kubeconfig: str | None = None,
    namespace: str | None = None,
    timeout: float = 5.0,
) -> AccessResult:
    """Probe a cluster: ``/version``, then list pods (limit=1) in ``namespace``, within ``timeout``.

    ``context`` None follows the kubeconfig's current context; ``namespace`` None uses the context's
    namespace, else ``default``. Never raises for cluster or kubeconfig problems: they come back as
    ``auth`` (401), ``forbidden`` (403), ``network`` (refused, DNS, timeouts, a hung server, 5xx) or
    ``config`` (bad kubeconfig, a failing or hanging exec credential plugin, TLS set-up).
    """
    started = time.monotonic()

    def result(kind: str, message: str, **kw: object) -> AccessResult:
        return AccessResult(kind, message, seconds=time.monotonic() - started, **kw)  # type: ignore[arg-type]

    try:
        _, ctx = kclient.resolve_context(kubeconfig, context)
    except KubeconfigError as exc:
        return result("config", str(exc), context=context, namespace=namespace)
    ns = namespace or ctx.namespace or "default"
    where = {"context": ctx.name, "server": ctx.server, "namespace": ns}
    # The one-time import is not the cluster's fault: wait for it outside the probe's budget.
    try:
        await kclient.ensure_imported()
    except Exception as exc:  # pragma: no cover - a broken installation
        return result("config", f"cannot import the kubernetes package: {exc}", **where)
    started = time.monotonic()
    # The thread's own deadline comes first, so it reports what it was waiting for; wait_for is
    # the hard stop behind it.
    deadline = started + timeout * 0.9
    try:
        with plugin_signal_guard():
            version = await kclient.run_in_thread(
                _probe_blocking,
                kubeconfig,
                ctx.name,
                ns,
                deadline,
                ctx.server,
                timeout=timeout,
                name=f"kpf-probe-{ctx.name}",
            )
    except KubeApiError as exc:
        kind = exc.kind if exc.kind in ACCESS_KINDS else "network"
        return result(kind, str(exc), **where)
    except TimeoutError:
        return result(
            "network",
            f"no answer from {ctx.server} within {timeout:g}s (context '{ctx.name}') — "
            "is the cluster up?",
            **where,
        )
    return result(
        "ok",
        f"{ctx.server} answers ({version or 'version unknown'}); pods in '{ns}' can be listed",
        **where,
    )
