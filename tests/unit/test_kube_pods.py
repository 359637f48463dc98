"""The pod watcher's bookkeeping from scripted events and listings (no server, no thread)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kportforward.kube.pods import PodChange, PodWatcher, label_selector, pod_info
from kportforward.kube.podwatch import _Gone, _NamespaceWatch


def pod(
    name: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    uid: str | None = None,
    rv: str = "1",
    labels: dict[str, str] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    """A pod's JSON as the API server sends it."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": uid or f"uid-{name}",
        "resourceVersion": rv,
        "labels": labels or {"app": "web"},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": meta, "status": {"phase": phase, "conditions": conditions}}


@pytest.fixture
def scripted() -> tuple[_NamespaceWatch, list[PodChange]]:
    """A namespace watch whose changes are collected synchronously."""
    changes: list[PodChange] = []
    loop = asyncio.new_event_loop()
    owner = PodWatcher(loop, changes.append)
    owner._deliver = changes.append  # type: ignore[method-assign]
    watch = _NamespaceWatch(owner, ("kc", "ctx", "default"))
    yield watch, changes
    loop.close()


def kinds(changes: list[PodChange]) -> list[tuple[str, str]]:
    """(name, kind) pairs in order."""
    return [(c.name, c.kind) for c in changes]


def test_pod_info_readiness() -> None:
    assert pod_info(pod("a")).ready
    assert not pod_info(pod("a", ready=False)).ready
    assert not pod_info(pod("a", phase="Pending")).ready
    terminating = pod_info(pod("a", deleting=True))
    assert terminating.deleting and not terminating.ready
    empty = pod_info({})
    assert empty.phase == "Unknown" and not empty.ready


def test_events_map_to_changes(scripted: tuple[_NamespaceWatch, list[PodChange]]) -> None:
    watch, changes = scripted
    rv = watch._apply_event({"type": "ADDED", "object": pod("a", rv="5")}, "1")
    assert rv == "5"
    watch._apply_event({"type": "MODIFIED", "object": pod("a", rv="6")}, rv)  # nothing relevant
    watch._apply_event({"type": "MODIFIED", "object": pod("a", ready=False, rv="7")}, rv)
    watch._apply_event({"type": "MODIFIED", "object": pod("a", rv="8")}, rv)
    watch._apply_event({"type": "MODIFIED", "object": pod("a", labels={"x": "y"})}, rv)
    watch._apply_event({"type": "MODIFIED", "object": pod("a", deleting=True)}, rv)
    watch._apply_event({"type": "DELETED", "object": pod("a")}, rv)
    assert kinds(changes) == [
        ("a", "added"),
        ("a", "not_ready"),
        ("a", "ready"),
        ("a", "modified"),
        ("a", "not_ready"),
        ("a", "deleted"),
    ]
    assert all(c.context == "ctx" and c.kubeconfig == "kc" for c in changes)
    assert watch.pods == {}


def test_bookmark_advances_version_silently(
    scripted: tuple[_NamespaceWatch, list[PodChange]],
) -> None:
    watch, changes = scripted
    event = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "99"}}}
    assert watch._apply_event(event, "1") == "99"
    assert changes == []


def test_expired_version_asks_for_a_relist(
    scripted: tuple[_NamespaceWatch, list[PodChange]],
) -> None:
    watch, _ = scripted
    with pytest.raises(_Gone):
        watch._apply_event({"type": "ERROR", "object": {"code": 410, "message": "too old"}}, "1")
    with pytest.raises(RuntimeError):
        watch._apply_event({"type": "ERROR", "object": {"code": 500, "message": "boom"}}, "1")


def test_relist_reports_what_happened_while_not_watching(
    scripted: tuple[_NamespaceWatch, list[PodChange]],
) -> None:
    watch, changes = scripted
    watch._apply_list([pod_info(pod("a")), pod_info(pod("b")), pod_info(pod("c"))])
    changes.clear()
    # While the watch was down: a vanished, b replaced under the same name, c became not ready.
    watch._apply_list(
        [pod_info(pod("b", uid="uid-b2")), pod_info(pod("c", ready=False)), pod_info(pod("d"))]
    )
    assert sorted(kinds(changes)) == sorted(
        [("a", "deleted"), ("b", "deleted"), ("b", "added"), ("c", "not_ready"), ("d", "added")]
    )
    assert set(watch.pods) == {"b", "c", "d"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"app": "web", "tier": "front"}, "app=web,tier=front"),
        ({"matchLabels": {"app": "web"}}, "app=web"),
        (
            {
                "matchLabels": {"app": "db"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["a", "b"]},
                    {"key": "zone", "operator": "NotIn", "values": ["x"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "owner", "operator": "Exists"},
                ],
            },
            "app=db,env in (a,b),zone notin (x),!canary,owner",
        ),
        ({}, ""),
    ],
)
def test_label_selector(selector: dict[str, Any], expected: str) -> None:
    assert label_selector(selector) == expected


def test_kube_package_imports_neither_kubernetes_nor_textual() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import kportforward.kube, kportforward.kube.access, kportforward.kube.pods\n"
        "import kportforward.kube.client, kportforward.kube.kubeconfig\n"
        "import kportforward.kube.podwatch, kportforward.kube.classify\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'textual')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
