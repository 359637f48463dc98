"""HTTP control endpoints under ``/_sim/`` so another process can drive the faults, and a small
client for them (``SimulatorClient``) used by benchmark scripts."""

from __future__ import annotations

import json
import re
import ssl
import urllib.request
from typing import TYPE_CHECKING, Any

from kportforward.sim.http import Request

if TYPE_CHECKING:
    from kportforward.sim.server import Simulator

PREFIX = "/_sim/"
_POD = re.compile(r"^/_sim/pods/([^/]+)/([^/]+)/(delete|restart|ready|phase)$")
_BACKEND = re.compile(r"^/_sim/backends/([^/]+)/([^/]+)/(\d+)/(refuse|eof)$")
_SERVICE = re.compile(r"^/_sim/services/([^/]+)(?:/([^/]+))?$")
_RULE = re.compile(r"^/_sim/rules/(\d+)$")
_NEW_POD = re.compile(r"^/_sim/pods/([^/]+)$")


def handle(sim: Simulator, req: Request) -> tuple[int, Any]:
    """Run one control request on the loop thread; returns (status, JSON body)."""
    try:
        body = req.json()
    except ValueError:
        return 400, {"error": "the body must be JSON"}
    try:
        return _route(sim, req, body if isinstance(body, dict) else {})
    except KeyError as exc:
        return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
    except (ValueError, TypeError, re.error) as exc:
        return 400, {"error": str(exc)}


def _route(sim: Simulator, req: Request, body: dict[str, Any]) -> tuple[int, Any]:
    path, method = req.path, req.method
    if method == "GET":
        if path == "/_sim/pods":
            selector = dict(
                kv.split("=", 1) for kv in req.query.get("selector", "").split(",") if "=" in kv
            )
            return 200, {"pods": sim.pods(req.query.get("namespace", "default"), selector)}
        if path == "/_sim/requests":
            return 200, {"requests": [list(r) for r in sim.request_log]}
        if path == "/_sim/count":
            n = sim.count(req.query.get("method") or None, req.query.get("path_regex") or None)
            return 200, {"count": n}
        if path == "/_sim/state":
            return 200, {"version": sim.server_version, "hung": sim.hung, "url": sim.url}
    m = _POD.match(path)
    if m and method == "POST":
        ns, name, action = m.groups()
        if action == "delete":
            sim.delete_pod(ns, name)
            return 200, {"deleted": name}
        if action == "restart":
            return 200, {"name": sim.restart_pod(ns, name)}
        if action == "ready":
            sim.set_pod_ready(ns, name, bool(body.get("ready", True)))
            return 200, {}
        sim.set_pod_phase(ns, name, str(body.get("phase", "Running")))
        return 200, {}
    m = _NEW_POD.match(path)
    if m and method == "POST":
        name = sim.add_pod(
            str(body["name"]),
            namespace=m.group(1),
            labels=body.get("labels"),
            ports=body.get("ports", []),
            phase=str(body.get("phase", "Running")),
            ready=bool(body.get("ready", True)),
        )
        return 200, {"name": name}
    m = _BACKEND.match(path)
    if m and method == "POST":
        ns, pod, port, action = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        if action == "refuse":
            sim.refuse_backend(ns, pod, port, bool(body.get("refuse", True)))
        else:
            sim.eof_backend(ns, pod, port, bool(body.get("eof", True)))
        return 200, {}
    m = _SERVICE.match(path)
    if m and method == "POST" and m.group(2) is None:
        name = sim.add_service(
            str(body["name"]),
            namespace=m.group(1),
            selector=body.get("selector"),
            ports=body.get("ports") or [80],
        )
        return 200, {"name": name}
    if m and method == "DELETE" and m.group(2) is not None:
        sim.delete_service(m.group(1), m.group(2))
        return 200, {"deleted": m.group(2)}
    if method == "POST" and path == "/_sim/drop-streams":
        return 200, {"dropped": sim.drop_streams()}
    if method == "POST" and path == "/_sim/hang":
        sim.hang()
        return 200, {}
    if method == "POST" and path == "/_sim/resume":
        sim.resume()
        return 200, {}
    if method == "POST" and path == "/_sim/version":
        sim.set_server_version(str(body["version"]))
        return 200, {}
    if method == "POST" and path == "/_sim/rules":
        rule_id = sim.add_rule(
            int(body["status"]),
            method=body.get("method"),
            path_regex=body.get("path_regex", ".*"),
            message=body.get("message"),
        )
        return 200, {"id": rule_id}
    if method == "DELETE" and path == "/_sim/rules":
        sim.clear_rules()
        return 200, {}
    m = _RULE.match(path)
    if m and method == "DELETE":
        sim.remove_rule(int(m.group(1)))
        return 200, {}
    if method == "DELETE" and path == "/_sim/log":
        sim.clear_log()
        return 200, {}
    return 404, {"error": f"no control endpoint {method} {path}"}


class SimulatorClient:
    """Drives a simulator in another process through its control endpoints (same method names)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._ssl = ssl._create_unverified_context() if url.startswith("https") else None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as resp:
            return json.loads(resp.read() or b"{}")

    def delete_pod(self, namespace: str, name: str) -> None:
        """See Simulator.delete_pod."""
        self._call("POST", f"/_sim/pods/{namespace}/{name}/delete", {})

    def restart_pod(self, namespace: str, name: str) -> str:
        """See Simulator.restart_pod."""
        return str(self._call("POST", f"/_sim/pods/{namespace}/{name}/restart", {})["name"])

    def add_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        labels: dict[str, str] | None = None,
        ports: list[Any] | None = None,
        phase: str = "Running",
        ready: bool = True,
    ) -> str:
        """See Simulator.add_pod (ports as ints or dicts)."""
        body = {
            "name": name,
            "labels": labels,
            "ports": ports or [],
            "phase": phase,
            "ready": ready,
        }
        return str(self._call("POST", f"/_sim/pods/{namespace}", body)["name"])

    def set_pod_ready(self, namespace: str, name: str, ready: bool) -> None:
        """See Simulator.set_pod_ready."""
        self._call("POST", f"/_sim/pods/{namespace}/{name}/ready", {"ready": ready})

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> None:
        """See Simulator.set_pod_phase."""
        self._call("POST", f"/_sim/pods/{namespace}/{name}/phase", {"phase": phase})

    def drop_streams(self) -> int:
        """See Simulator.drop_streams."""
        return int(self._call("POST", "/_sim/drop-streams", {})["dropped"])

    def hang(self) -> None:
        """See Simulator.hang."""
        self._call("POST", "/_sim/hang", {})

    def resume(self) -> None:
        """See Simulator.resume."""
        self._call("POST", "/_sim/resume", {})

    def add_rule(
        self,
        status: int,
        *,
        method: str | None = None,
        path_regex: str = ".*",
        message: str | None = None,
    ) -> int:
        """See Simulator.add_rule."""
        body = {"status": status, "method": method, "path_regex": path_regex, "message": message}
        return int(self._call("POST", "/_sim/rules", body)["id"])

    def remove_rule(self, rule_id: int) -> None:
        """See Simulator.remove_rule."""
        self._call("DELETE", f"/_sim/rules/{rule_id}")

    def clear_rules(self) -> None:
        """See Simulator.clear_rules."""
        self._call("DELETE", "/_sim/rules")

    def refuse_backend(self, namespace: str, pod: str, port: int, refuse: bool = True) -> None:
        """See Simulator.refuse_backend."""
        self._call("POST", f"/_sim/backends/{namespace}/{pod}/{port}/refuse", {"refuse": refuse})

    def eof_backend(self, namespace: str, pod: str, port: int, eof: bool = True) -> None:
        """See Simulator.eof_backend."""
        self._call("POST", f"/_sim/backends/{namespace}/{pod}/{port}/eof", {"eof": eof})

    def add_service(
        self,
        name: str,
        *,
        namespace: str = "default",
        selector: dict[str, str] | None = None,
        ports: list[Any] | None = None,
    ) -> str:
        """See Simulator.add_service (ports as ints or dicts)."""
        body = {"name": name, "selector": selector, "ports": ports or [80]}
        return str(self._call("POST", f"/_sim/services/{namespace}", body)["name"])

    def delete_service(self, namespace: str, name: str) -> None:
        """See Simulator.delete_service."""
        self._call("DELETE", f"/_sim/services/{namespace}/{name}")

    def set_server_version(self, version: str) -> None:
        """See Simulator.set_server_version."""
        self._call("POST", "/_sim/version", {"version": version})

    def pods(self, namespace: str, selector: dict[str, str] | None = None) -> list[str]:
        """See Simulator.pods."""
        sel = ",".join(f"{k}={v}" for k, v in (selector or {}).items())
        return list(self._call("GET", f"/_sim/pods?namespace={namespace}&selector={sel}")["pods"])

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        """See Simulator.count."""
        from urllib.parse import urlencode

        query = urlencode({"method": method or "", "path_regex": path_regex or ""})
        return int(self._call("GET", f"/_sim/count?{query}")["count"])
