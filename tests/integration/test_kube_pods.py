"""Resolving targets to pods, and the shared pod watcher, against the simulator."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from kportforward.core.models import ForwardSpec
from kportforward.kube.client import KubeApiError
from kportforward.kube.pods import PodChange, PodWatcher, resolve_pods
from kportforward.sim import Simulator


def spec(target: str, namespace: str | None = "default") -> ForwardSpec:
    """A forward spec for ``target``; only target and namespace matter here."""
    return ForwardSpec(name="f", target=target, target_port=80, local_port=1, namespace=namespace)


async def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``condition`` on the event loop until it is true (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def watch_threads() -> list[threading.Thread]:
    """Pod-watch threads still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("kpf-podwatch")]


@pytest.mark.parametrize(
    ("target", "namespace", "expected"),
    [
        ("service/web-frontend", "default", 2),
        ("svc/web-frontend", "default", 2),
        ("deployment/user-service", "default", 1),
        ("deployment.apps/user-service", "default", 1),
        ("statefulset/redis", "default", 1),
        ("replicaset/metrics-exporter", "default", 1),
        ("pod/debug-shell", "default", 1),
        ("service/payments-api", "payments", 2),
        ("service/web-frontend", None, 2),  # None: the context's namespace (default)
    ],
)
async def test_resolve_pods_for_each_kind(
    sim: Simulator, target: str, namespace: str | None, expected: int
) -> None:
    pods = await resolve_pods(
        spec(target, namespace), kubeconfig=str(sim.kubeconfig_path), context=None
    )
    assert len(pods) == expected
    assert all(p.ready and p.phase == "Running" and p.resource_version for p in pods)
    if target.startswith("pod/"):
        assert pods[0].name == "debug-shell"
    if pods:
        assert {p.name for p in pods} <= set(sim.pods(namespace or "default"))


async def test_resolve_pods_orders_ready_first(sim: Simulator) -> None:
    kubeconfig = str(sim.kubeconfig_path)
    names = [p.name for p in await resolve_pods(spec("service/web-frontend"), kubeconfig=kubeconfig,
                                                context=None)]  # fmt: skip
    sim.set_pod_ready("default", names[0], False)
    pods = await resolve_pods(spec("service/web-frontend"), kubeconfig=kubeconfig, context=None)
    assert [p.name for p in pods] == [names[1], names[0]]
    assert [p.ready for p in pods] == [True, False]


async def test_resolve_missing_target_is_notfound(sim: Simulator) -> None:
    with pytest.raises(KubeApiError) as info:
        await resolve_pods(spec("service/nope"), kubeconfig=str(sim.kubeconfig_path), context=None)
    assert info.value.kind == "notfound" and "nope" in str(info.value)


async def test_resolve_forbidden_and_bad_target(sim: Simulator) -> None:
    sim.add_rule(403, path_regex=r"/services/web-frontend")
    with pytest.raises(KubeApiError) as info:
        await resolve_pods(
            spec("service/web-frontend"), kubeconfig=str(sim.kubeconfig_path), context=None
        )
    assert info.value.kind == "forbidden" and "forbidden" in str(info.value)
    with pytest.raises(KubeApiError) as bad:
        await resolve_pods(spec("ingress/x"), kubeconfig=str(sim.kubeconfig_path), context=None)
    assert bad.value.kind == "config"


async def test_watcher_reports_delete_not_ready_ready_and_replacement(sim: Simulator) -> None:
    changes: list[PodChange] = []
    watcher = PodWatcher(asyncio.get_running_loop(), changes.append)
    kubeconfig = str(sim.kubeconfig_path)
    try:
        watcher.watch(kubeconfig, None, "default")
        watcher.watch(kubeconfig, None, "default")  # idempotent: still one thread
        assert len(watch_threads()) == 1
        await wait_for(lambda: watcher.synced(kubeconfig, None, "default"))
        initial = {c.name for c in changes if c.kind == "added"}
        assert initial == set(sim.pods("default"))
        assert {p.name for p in watcher.pods(kubeconfig, None, "default")} == initial
        web = sorted(n for n in initial if n.startswith("web-frontend"))
        changes.clear()

        sim.set_pod_ready("default", web[0], False)
        await wait_for(lambda: any(c.kind == "not_ready" for c in changes), timeout=5)
        sim.set_pod_ready("default", web[0], True)
        await wait_for(lambda: any(c.kind == "ready" for c in changes), timeout=5)
        assert [(c.name, c.kind) for c in changes] == [(web[0], "not_ready"), (web[0], "ready")]
        assert all(c.namespace == "default" and c.kubeconfig == kubeconfig for c in changes)

        changes.clear()
        sim.delete_pod("default", web[1])
        await wait_for(lambda: any(c.kind == "deleted" for c in changes), timeout=5)
        deleted = next(c for c in changes if c.kind == "deleted")
        assert deleted.name == web[1] and deleted.pod is not None

        changes.clear()
        replacement = sim.restart_pod("default", web[0])
        await wait_for(
            lambda: {(c.name, c.kind) for c in changes} >= {(web[0], "deleted"),
                                                            (replacement, "added")},
            timeout=5,
        )  # fmt: skip
    finally:
        watcher.close()
    assert watch_threads() == []


async def test_watcher_shares_one_watch_per_namespace_and_unwatches(sim: Simulator) -> None:
    changes: list[PodChange] = []
    watcher = PodWatcher(asyncio.get_running_loop(), changes.append)
    kubeconfig = str(sim.kubeconfig_path)
    try:
        watcher.watch(kubeconfig, None, "default")
        watcher.watch(kubeconfig, None, "payments")
        assert len(watch_threads()) == 2
        await wait_for(lambda: watcher.synced(kubeconfig, None, "payments"))
        watcher.unwatch(kubeconfig, None, "default", timeout=2.0)
        assert len(watch_threads()) == 1
        assert watcher.watching() == ((kubeconfig, None, "payments"),)
        changes.clear()
        pod = sim.pods("payments")[0]
        sim.delete_pod("payments", pod)
        await wait_for(lambda: any(c.name == pod and c.kind == "deleted" for c in changes))
        assert all(c.namespace == "payments" for c in changes)
    finally:
        watcher.close()
    assert watch_threads() == []


async def test_watcher_survives_errors_and_recovers(sim: Simulator) -> None:
    changes: list[PodChange] = []
    watcher = PodWatcher(asyncio.get_running_loop(), changes.append, backoff_initial=0.05)
    kubeconfig = str(sim.kubeconfig_path)
    rule = sim.add_rule(401, path_regex=r"/namespaces/default/pods")
    try:
        watcher.watch(kubeconfig, None, "default")
        await wait_for(lambda: sim.count("GET", r"/namespaces/default/pods") >= 2)
        assert not watcher.synced(kubeconfig, None, "default")
        assert len(watch_threads()) == 1  # errors are retried, never fatal
        sim.remove_rule(rule)
        await wait_for(lambda: watcher.synced(kubeconfig, None, "default"))
        changes.clear()
        sim.drop_streams()
        pod = sim.pods("default")[0]
        sim.set_pod_ready("default", pod, False)
        await wait_for(lambda: any(c.name == pod and c.kind == "not_ready" for c in changes))
    finally:
        watcher.close()
    assert watch_threads() == []


async def test_close_is_prompt_even_while_the_server_hangs(sim: Simulator) -> None:
    watcher = PodWatcher(asyncio.get_running_loop(), lambda change: None, request_timeout=2.0)
    kubeconfig = str(sim.kubeconfig_path)
    watcher.watch(kubeconfig, None, "default")
    await wait_for(lambda: watcher.synced(kubeconfig, None, "default"))
    await asyncio.sleep(0.1)  # let the watch request start streaming
    sim.hang()
    try:
        watcher.close(timeout=2.0)
        assert watch_threads() == []
    finally:
        sim.resume()
