"""The read-only Kubernetes API: discovery, get, list (label selectors) and chunked watch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from kportforward.sim import objects as o
from kportforward.sim.http import Request, chunk, json_response, response_head
from kportforward.sim.state import ClusterState, Watcher

_CORE = re.compile(r"^/api/v1/(?:namespaces/([^/]+)/)?(pods|services|endpoints)(?:/([^/]+))?/?$")
_APPS = re.compile(
    r"^/apis/apps/v1/(?:namespaces/([^/]+)/)?(deployments|replicasets|statefulsets)(?:/([^/]+))?/?$"
)
_NS = re.compile(r"^/api/v1/namespaces(?:/([^/]+))?/?$")
_PORTFORWARD = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/portforward/?$")
_KIND_OF = {"Deployment": "deployments", "StatefulSet": "statefulsets", "ReplicaSet": "replicasets"}
DEFAULT_WATCH_SECONDS = 1800


def route(path: str) -> tuple[str, str | None, str | None] | None:
    """(resource, namespace, name) for an object path, or None."""
    m = _CORE.match(path) or _APPS.match(path)
    if m:
        return m.group(2), m.group(1), m.group(3)
    m = _NS.match(path)
    if m:
        return "namespaces", None, m.group(1)
    return None


def portforward_target(path: str) -> tuple[str, str] | None:
    """(namespace, pod) when ``path`` is a pods/NAME/portforward subresource."""
    m = _PORTFORWARD.match(path)
    return (m.group(1), m.group(2)) if m else None


def qualified(resource: str) -> str:
    """The resource as the API server names it in messages (``deployments.apps``)."""
    return f"{resource}.apps" if o.RESOURCES[resource][1] == "apps/v1" else resource


def not_found(resource: str, name: str) -> dict[str, Any]:
    """The NotFound Status for one object."""
    return o.status_json(
        404,
        "NotFound",
        f'{qualified(resource)} "{name}" not found',
        {
            "name": name,
            "kind": resource,
            **({"group": "apps"} if "." in qualified(resource) else {}),
        },
    )


def parse_selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """A label-selector predicate (=, ==, !=, in, notin, exists, !exists)."""
    terms: list[tuple[str, str, frozenset[str]]] = []
    for raw in re.findall(r"[^,(]+(?:\([^)]*\))?", text or ""):
        term = raw.strip()
        if not term:
            continue
        m = re.match(r"^([\w./-]+)\s+(in|notin)\s+\((.*)\)$", term)
        if m:
            values = frozenset(v.strip() for v in m.group(3).split(","))
            terms.append((m.group(2), m.group(1), values))
        elif "!=" in term:
            key, val = term.split("!=", 1)
            terms.append(("notin", key.strip(), frozenset([val.strip()])))
        elif "=" in term:
            key, val = term.replace("==", "=").split("=", 1)
            terms.append(("in", key.strip(), frozenset([val.strip()])))
        elif term.startswith("!"):
            terms.append(("absent", term[1:].strip(), frozenset()))
        else:
            terms.append(("present", term, frozenset()))

    def matches(labels: Mapping[str, str]) -> bool:
        for op, key, values in terms:
            value = labels.get(key)
            ok = {
                "in": value in values,
                "notin": value not in values,
                "absent": value is None,
                "present": value is not None,
            }[op]
            if not ok:
                return False
        return True

    return matches


def _field_selector(text: str) -> Callable[[str], bool]:
    names = [
        v
        for k, _, v in (t.partition("=") for t in (text or "").split(","))
        if k.strip() in ("metadata.name",)
    ]
    return lambda name: not names or name in names


class Api:
    """Answers object GETs against a :class:`ClusterState`."""

    def __init__(
        self,
        state: ClusterState,
        server_address: Callable[[], str],
        record: Callable[[Request, int], None],
    ) -> None:
        self.state = state
        self._server_address = server_address
        self._record = record  # called before the answer is written, so a client never races it

    def items(
        self, resource: str, namespace: str | None
    ) -> list[tuple[dict[str, str], str, Callable[[], Any]]]:
        """(labels, name, render) for every object of a resource in a namespace (None: all);
        rendering is deferred so selectors filter before any JSON is built."""
        world = self.state.world
        if resource == "namespaces":
            return [({}, ns, partial(o.namespace_json, ns)) for ns in world.namespaces]
        if resource == "pods":
            return [
                (p.labels, p.name, partial(o.pod_json, p))
                for p in world.pods.values()
                if namespace in (None, p.namespace)
            ]
        if resource in ("services", "endpoints"):
            render = (
                o.service_json if resource == "services" else partial(o.endpoints_json, world=world)
            )
            return [
                ({}, s.name, partial(render, s))
                for s in world.services.values()
                if namespace in (None, s.namespace)
            ]
        return [
            (w.selector, w.name, partial(o.workload_json, w, world))
            for w in world.workloads.values()
            if _KIND_OF[w.kind] == resource and namespace in (None, w.namespace)
        ]

    async def handle(
        self,
        req: Request,
        writer: asyncio.StreamWriter,
        reader: asyncio.StreamReader | None = None,
    ) -> int | None:
        """Answer ``req``; returns the status written, or None when the path is not ours."""
        if req.path.rstrip("/") == "/version":
            return self._send(writer, req, 200, o.version_json(self.version))
        doc = o.discovery(req.path.rstrip("/") or "/", self._server_address())
        if doc is not None:
            return self._send(writer, req, 200, doc)
        target = route(req.path)
        if target is None:
            return None
        resource, namespace, name = target
        if req.method != "GET":
            body = o.status_json(405, "MethodNotAllowed", "the simulator is read-only")
            return self._send(writer, req, 405, body)
        missing_ns = namespace is not None and namespace not in self.state.world.namespaces
        if missing_ns and (name is not None or resource == "namespaces"):
            return self._send(writer, req, 404, not_found(resource, name or namespace or ""))
        if name is not None:
            for _, item_name, render in self.items(resource, namespace):
                if item_name == name:
                    return self._send(writer, req, 200, render())
            return self._send(writer, req, 404, not_found(resource, name))
        select = parse_selector(req.query.get("labelSelector", ""))
        by_name = _field_selector(req.query.get("fieldSelector", ""))
        if req.query.get("watch") in ("true", "1"):
            await self._watch(req, writer, reader, resource, namespace, select, by_name)
            return 200
        items = [r() for lb, n, r in self.items(resource, namespace) if select(lb) and by_name(n)]
        return self._send(writer, req, 200, o.list_json(resource, items, self.state.rv))

    version = "v1.32.4"
    gate: asyncio.Event | None = None  # the simulator's hang switch, set once it runs

    def _send(self, writer: asyncio.StreamWriter, req: Request, status: int, body: Any) -> int:
        self._record(req, status)
        writer.write(json_response(status, body, keep_alive=req.keep_alive))
        return status

    async def _watch(
        self,
        req: Request,
        writer: asyncio.StreamWriter,
        reader: asyncio.StreamReader | None,
        resource: str,
        namespace: str | None,
        select: Callable[[Mapping[str, str]], bool],
        by_name: Callable[[str], bool],
    ) -> None:
        state = self.state
        try:
            timeout = float(req.query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        except ValueError:
            timeout = DEFAULT_WATCH_SECONDS
        deadline = time.monotonic() + timeout
        watcher = Watcher(resource, namespace, lambda lb, n: select(lb) and by_name(n))
        writer.write(
            response_head(
                200,
                {
                    "Content-Type": "application/json",
                    "Transfer-Encoding": "chunked",
                    "Cache-Control": "no-cache, private",
                    # The connection ends with the watch: the read that notices a departing
                    # client may have consumed bytes of a next request.
                    "Connection": "close",
                },
            )
        )
        rv_text = req.query.get("resourceVersion", "")
        backlog: list[tuple[int, str, Any]] = []
        if rv_text in ("", "0"):
            backlog = [
                (state.rv, "ADDED", render())
                for lb, n, render in self.items(resource, namespace)
                if watcher.matches(lb, n)
            ]
            last = state.rv
        else:
            try:
                last = int(rv_text)
            except ValueError:
                last = 0
            oldest = state.events[0][0] if state.events else state.rv
            if state.events and last < oldest - 1 and len(state.events) == state.events.maxlen:
                expired = o.status_json(410, "Expired", f"too old resource version: {last}")
                writer.write(chunk(_line("ERROR", expired)) + chunk(b""))
                return
            for rv, etype, res, ns, labels, name, body in state.events:
                in_scope = res == resource and namespace in (None, ns)
                if rv > last and in_scope and watcher.matches(labels, name):
                    backlog.append((rv, etype, body))
            last = max([last] + [rv for rv, _, _ in backlog])
        state.watchers.add(watcher)
        # A client that goes away ends its watch at once, not at the timeout (no pile-up of
        # abandoned watches in a long-running simulator).
        gone = asyncio.ensure_future(reader.read(1)) if reader is not None else None
        get: asyncio.Future[tuple[int, str, dict[str, Any]]] | None = None
        try:
            for _, etype, body in backlog:
                writer.write(chunk(_line(etype, body)))
            await writer.drain()
            while (remaining := deadline - time.monotonic()) > 0:
                get = asyncio.ensure_future(watcher.queue.get())
                waiting = {get} if gone is None else {get, gone}
                done, _ = await asyncio.wait(
                    waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if get not in done:
                    get.cancel()
                    if gone is not None and gone in done:
                        return
                    break
                rv, etype, body = get.result()
                if rv <= last:
                    continue
                last = rv
                if self.gate is not None and not self.gate.is_set():
                    await self.gate.wait()  # a hung server delivers no events either
                writer.write(chunk(_line(etype, body)))
                await writer.drain()
            writer.write(chunk(b""))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            state.watchers.discard(watcher)
            for pending in (gone, get):
                if pending is not None:
                    pending.cancel()


def _line(etype: str, body: Any) -> bytes:
    return json.dumps({"type": etype, "object": body}, separators=(",", ":")).encode() + b"\n"
