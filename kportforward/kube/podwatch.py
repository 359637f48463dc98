"""One pod watch per (kubeconfig, context, namespace), in a daemon thread, reporting PodChanges."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from kportforward.kube import client as kclient
from kportforward.kube.classify import classify
from kportforward.kube.podinfo import PodChange, PodInfo, pod_info

log = logging.getLogger(__name__)


def _lines(resp: Any) -> Iterator[bytes]:
    """The lines of a streamed (chunked) watch response as they arrive."""
    chunks: Iterator[bytes]
    if getattr(resp, "chunked", False):
        chunks = resp.read_chunked(decode_content=False)
    else:
        chunks = iter(lambda: resp.read1(65536), b"")
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        if b"\n" not in chunk:
            continue
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


_Key = tuple[str | None, str | None, str]


class _NamespaceWatch(threading.Thread):
    """List, then watch, the pods of one namespace; re-list after errors; report every change."""

    def __init__(self, owner: PodWatcher, key: _Key) -> None:
        kubeconfig, context, namespace = key
        super().__init__(name=f"kpf-podwatch-{context or 'current'}-{namespace}", daemon=True)
        self.owner = owner
        self.key = key
        self.kubeconfig, self.context, self.namespace = kubeconfig, context, namespace
        self.stopping = threading.Event()
        self.synced = threading.Event()
        self.pods: dict[str, PodInfo] = {}
        """Written by this thread only; others read it through ``snapshot()``."""
        self.pods_lock = threading.Lock()
        self.errors = 0
        self._resp: Any = None
        self._resp_lock = threading.Lock()

    def stop(self) -> None:
        """Ask the thread to end, and cut a blocking watch read short."""
        self.stopping.set()
        with self._resp_lock:
            resp = self._resp
        if resp is not None:
            # urllib3 >= 2.3: interrupts a read blocked in another thread (fails if already closed).
            with contextlib.suppress(Exception):
                resp.shutdown()

    def run(self) -> None:
        backoff = self.owner.backoff_initial
        while not self.stopping.is_set():
            try:
                self._list_and_watch()
                backoff = self.owner.backoff_initial
            except _Gone:
                continue  # our resourceVersion is too old: re-list at once
            except Exception as exc:
                if self.stopping.is_set():
                    break
                if getattr(exc, "status", None) == 410:
                    continue
                self.errors += 1
                server = self.owner.server_of(self.kubeconfig, self.context)
                error = classify(exc, server, f"watching pods in '{self.namespace}'")
                log.warning("pod watch %s: %s; retrying in %.1fs", self.name, error, backoff)
                if error.kind == "auth":
                    kclient.forget_client(self.kubeconfig, self.context)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self.owner.backoff_max)

    def _list_and_watch(self) -> None:
        owner = self.owner
        rt = owner.request_timeout
        api, _, _ = kclient.get_client(self.kubeconfig, self.context, time.monotonic() + rt)
        path = f"/api/v1/namespaces/{quote(self.namespace, safe='')}/pods"
        listing = kclient.api_get_json(api, path, None, (rt, 3 * rt))
        rv = str((listing.get("metadata") or {}).get("resourceVersion", ""))
        self._apply_list([pod_info(item) for item in listing.get("items") or []])
        self.synced.set()
        while not self.stopping.is_set():
            query = {
                "watch": "true",
                "resourceVersion": rv or None,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": owner.watch_seconds,
            }
            resp = kclient.api_get(api, path, query, (rt, owner.watch_seconds + rt))
            with self._resp_lock:
                self._resp = resp
            try:
                if self.stopping.is_set():
                    return
                for line in _lines(resp):
                    rv = self._apply_event(json.loads(line), rv)
                    if self.stopping.is_set():
                        return
            finally:
                with self._resp_lock:
                    self._resp = None
                resp.close()
                resp.release_conn()

    def _apply_event(self, event: Mapping[str, Any], rv: str) -> str:
        etype = event.get("type")
        obj = event.get("object") or {}
        if etype == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message', '')}")
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if etype == "BOOKMARK":
            return new_rv
        info = pod_info(obj)
        if etype == "DELETED":
            with self.pods_lock:
                old = self.pods.pop(info.name, None)
            self._emit(info.name, "deleted", old or info)
        elif etype in ("ADDED", "MODIFIED"):
            self._update(info)
        return new_rv

    def _apply_list(self, infos: list[PodInfo]) -> None:
        """Bring ``pods`` to a fresh listing, reporting what changed while we were not watching."""
        seen = {p.name for p in infos}
        for name in [n for n in self.pods if n not in seen]:
            with self.pods_lock:
                gone = self.pods.pop(name)
            self._emit(name, "deleted", gone)
        for info in infos:
            self._update(info)

    def _update(self, info: PodInfo) -> None:
        old = self.pods.get(info.name)
        with self.pods_lock:
            self.pods[info.name] = info
        if old is not None and old.uid and info.uid and old.uid != info.uid:
            # Same name, new pod (a StatefulSet replacement we saw only through a re-list).
            self._emit(info.name, "deleted", old)
            old = None
        if old is None:
            kind = "added"
        elif old.ready != info.ready:
            kind = "ready" if info.ready else "not_ready"
        elif (old.phase, old.labels, old.deleting) != (info.phase, info.labels, info.deleting):
            kind = "modified"
        else:
            return
        self._emit(info.name, kind, info)

    def _emit(self, name: str, kind: str, pod: PodInfo | None) -> None:
        change = PodChange(self.namespace, name, kind, self.context, self.kubeconfig, pod)
        self.owner._deliver(change)


class _Gone(Exception):
    """The watch's resourceVersion expired (HTTP 410): re-list."""


class PodWatcher:
    """One pod watch per (kubeconfig, context, namespace), shared by every forward in it.

    Each watch runs in a daemon thread with the kubernetes client (list, then watch from that
    resourceVersion; re-list with backoff after any error) and reports ``PodChange``s to
    ``on_change`` on the event loop via ``call_soon_threadsafe``. Errors are logged (no credentials)
    and retried; they never reach the caller. ``close()`` stops every thread within about a second.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_change: Callable[[PodChange], None],
        *,
        request_timeout: float = 5.0,
        watch_seconds: int = 60,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
    ) -> None:
        self.loop = loop
        self.on_change = on_change
        self.request_timeout = request_timeout
        """Seconds for connecting and for a list; a watch may stay quiet for ``watch_seconds``."""
        self.watch_seconds = watch_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._lock = threading.Lock()
        self._watches: dict[_Key, _NamespaceWatch] = {}
        self._closed = False

    def watch(self, kubeconfig: str | None, context: str | None, namespace: str) -> None:
        """Start watching ``namespace`` (idempotent). ``context`` None follows the current context
        as it is when the watch (re)lists; pass the resolved name to pin a cluster."""
        key = (kubeconfig, context, namespace)
        with self._lock:
            if self._closed:
                raise RuntimeError("PodWatcher is closed")
            existing = self._watches.get(key)
            if existing is not None and existing.is_alive() and not existing.stopping.is_set():
                return
            thread = self._watches[key] = _NamespaceWatch(self, key)
        thread.start()

    def unwatch(
        self, kubeconfig: str | None, context: str | None, namespace: str, timeout: float = 0.0
    ) -> None:
        """Stop watching ``namespace``; wait up to ``timeout`` seconds for the thread to end."""
        with self._lock:
            thread = self._watches.pop((kubeconfig, context, namespace), None)
        if thread is not None:
            thread.stop()
            if timeout > 0:
                thread.join(timeout)

    def watching(self) -> tuple[_Key, ...]:
        """The (kubeconfig, context, namespace) keys being watched."""
        with self._lock:
            return tuple(self._watches)

    def pods(
        self, kubeconfig: str | None, context: str | None, namespace: str
    ) -> tuple[PodInfo, ...]:
        """The pods the watch currently knows in ``namespace`` (empty before the first list)."""
        with self._lock:
            thread = self._watches.get((kubeconfig, context, namespace))
        if thread is None:
            return ()
        with thread.pods_lock:
            return tuple(thread.pods.values())

    def synced(self, kubeconfig: str | None, context: str | None, namespace: str) -> bool:
        """True once the watch has listed the namespace at least once."""
        with self._lock:
            thread = self._watches.get((kubeconfig, context, namespace))
        return thread is not None and thread.synced.is_set()

    def close(self, timeout: float = 2.0) -> None:
        """Stop every watch and join the threads (each join bounded; the threads are daemons)."""
        with self._lock:
            self._closed = True
            threads = list(self._watches.values())
            self._watches.clear()
        for thread in threads:
            thread.stop()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("pod watch %s did not stop within %.1fs", thread.name, timeout)

    def server_of(self, kubeconfig: str | None, context: str | None) -> str:
        """The API server a (kubeconfig, context) points at, for messages."""
        try:
            return kclient.resolve_context(kubeconfig, context)[1].server
        except Exception:
            return "the cluster"

    def _deliver(self, change: PodChange) -> None:
        try:
            self.loop.call_soon_threadsafe(self._call, change)
        except RuntimeError:  # the loop is closed: nobody listens any more
            with self._lock:
                thread = self._watches.get((change.kubeconfig, change.context, change.namespace))
            if thread is not None:
                thread.stopping.set()

    def _call(self, change: PodChange) -> None:
        try:
            self.on_change(change)
        except Exception:
            log.exception("pod change handler failed for %s/%s", change.namespace, change.name)
