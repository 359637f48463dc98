"""``kportforward demo``: the dashboard (or ``run``'s output) over a simulated cluster.

Starts the simulator with the demo world on 127.0.0.1, writes a kubeconfig and a config into a
temporary directory, and runs the real kubectl through the real supervisor. The user's kubeconfig,
config and kubectl cache are neither read nor written; everything temporary is removed on exit.
While it runs, ``curl http://localhost:18080/`` reaches a simulated pod.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FLAKY_SERVICE = ("payments", "payments-api")
"""Its pods are replaced every ``FLAKY_PERIOD`` seconds: the forward reconnects, then runs."""
FLAKY_PERIOD = 60.0
SLOW_SERVICE = ("payments", "search-indexer")
"""Its pod stays Pending for ``SLOW_DELAY`` seconds, then turns Running and ready."""
SLOW_DELAY = 8.0
DURATION_MAX = 7 * 86400.0
"""``--duration`` (with ``--headless``): longer than 0, at most 7 days."""

# name: (target, targetPort, localPort, namespace, type, group)
DEMO_FORWARDS: dict[str, tuple[str, int | str, int, str, str, str]] = {
    "web-frontend": ("service/web-frontend", 80, 18080, "default", "web", "storefront"),
    "api-gateway": ("service/api-gateway", 8080, 18081, "default", "rest", "storefront"),
    "user-service": ("deployment/user-service", "http", 18082, "default", "rest", "storefront"),
    "docs": ("service/docs", 80, 18083, "default", "web", "storefront"),
    "auth-grpc": ("service/auth-grpc", "grpc", 19090, "default", "rpc", "identity"),
    "redis": ("statefulset/redis", 6379, 16379, "default", "other", "data"),
    "postgres": ("svc/postgres", 5432, 15432, "default", "other", "data"),
    "metrics-exporter": ("replicaset/metrics-exporter", "metrics", 19100, "default", "web", "ops"),
    "debug-shell": ("pod/debug-shell", 7000, 17000, "default", "other", "ops"),
    "payments-api": ("service/payments-api", 80, 18090, "payments", "rest", "payments"),
    "ledger-rpc": ("service/ledger-rpc", "grpc", 15051, "payments", "rpc", "payments"),
    "billing-ui": ("service/billing-ui", 80, 18091, "payments", "web", "payments"),
    "fraud-model": ("statefulset/fraud-model", 8501, 18501, "payments", "rest", "payments"),
    "invoice-worker": ("service/invoice-worker", 80, 18092, "payments", "rest", "payments"),
    "search-indexer": ("service/search-indexer", 80, 18093, "payments", "rest", "payments"),
    "legacy-reports": ("service/legacy-reports", 80, 18094, "default", "web", "ops"),
}


def demo_config_yaml() -> str:
    """The demo's config file, in the Go tool's schema plus ``group``."""
    lines = ["# Written by `kportforward demo`; removed when it exits.", "portForwards:"]
    for name, (target, remote, local, ns, kind, group) in DEMO_FORWARDS.items():
        lines += [
            f"  {name}:",
            f"    target: {target}",
            f"    targetPort: {remote}",
            f"    localPort: {local}",
            f"    namespace: {ns}",
            f"    type: {kind}",
            f"    group: {group}",
        ]
    lines += ["monitoringInterval: 1s", "uiOptions:", "  refreshRate: 250ms", "  theme: dark"]
    return "\n".join(lines) + "\n"


def demo_world() -> Any:
    """The simulator's demo world plus the slow-to-start service (legacy-reports stays absent)."""
    from kportforward.sim import demo_world as base_world

    world = base_world()
    ns, name = SLOW_SERVICE
    world.add_deployment(name, namespace=ns, ports=[8080], phase="Pending", ready=False)
    world.add_service(name, namespace=ns, ports=[{"port": 80, "targetPort": 8080}])
    return world


class Chaos:
    """Background faults that make the demo show recovery: a replaced pod, a slow pod."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-chaos", daemon=True)

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        ns, slow = SLOW_SERVICE
        if self._stop.wait(SLOW_DELAY):
            return
        for pod in self.sim.pods(ns, {"app": slow}):
            self.sim.set_pod_phase(ns, pod, "Running")
            self.sim.set_pod_ready(ns, pod, True)
        # The flaky pods are replaced every FLAKY_PERIOD seconds from the start of the demo.
        flaky_ns, flaky = FLAKY_SERVICE
        wait = FLAKY_PERIOD - SLOW_DELAY
        while not self._stop.wait(wait):
            for pod in self.sim.pods(flaky_ns, {"app": flaky}):
                log.info("demo: replacing pod %s/%s", flaky_ns, pod)
                self.sim.restart_pod(flaky_ns, pod)
            wait = FLAKY_PERIOD


@contextmanager
def _owned_dir() -> Iterator[str]:
    """An owned temporary directory, removed on exit; one left by a demo killed with SIGKILL is
    removed by the next start (``owned.sweep_stale_dirs``)."""
    from kportforward.owned import make_owned_dir

    path = make_owned_dir("demo")
    try:
        yield str(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def demo_environment() -> Iterator[tuple[Any, Path, Path]]:
    """Start the simulator and write the temporary kubeconfig and config; clean up on exit.

    Yields ``(simulator, config_path, kubeconfig_path)``. The process environment is pointed at the
    temporary files (KPORTFORWARD_CONFIG, KUBECONFIG, KUBECACHEDIR): nothing of the user's is read.
    """
    from kportforward.sim import Simulator

    saved = {k: os.environ.get(k) for k in ("KPORTFORWARD_CONFIG", "KUBECONFIG", "KUBECACHEDIR")}
    with _owned_dir() as tmp:
        sim = Simulator(demo_world(), workdir=tmp)
        sim.start_in_thread()
        try:
            kubeconfig = sim.kubeconfig_path
            assert kubeconfig is not None  # written by start_in_thread()
            config_path = Path(tmp) / "config.yaml"
            config_path.write_text(demo_config_yaml())
            os.environ["KPORTFORWARD_CONFIG"] = str(config_path)
            os.environ["KUBECONFIG"] = str(kubeconfig)
            os.environ["KUBECACHEDIR"] = str(Path(tmp) / "kube-cache")
            with Chaos(sim):
                yield sim, config_path, Path(kubeconfig)
        finally:
            sim.stop_in_thread()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def main(args: argparse.Namespace) -> int:
    """Run the demo: the dashboard, or with ``--headless`` run's event lines."""
    from kportforward.commands.dashboard import run_dashboard
    from kportforward.commands.run import make_webuis, resolve_kubectl, run_headless
    from kportforward.core.config import load_config
    from kportforward.core.durations import parse_duration
    from kportforward.errors import ArgumentError
    from kportforward.supervisor.supervisor import Supervisor

    kubectl = resolve_kubectl(getattr(args, "kubectl", None))
    duration = None
    if getattr(args, "duration", None):
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            raise ArgumentError(f"--duration: {exc}", "use e.g. --duration 30s") from None
        if not 0 < duration <= DURATION_MAX:
            raise ArgumentError(
                f"--duration must be longer than 0 and at most 7 days, got {args.duration}",
                "use e.g. --duration 30s",
            )
    with demo_environment() as (_sim, config_path, kubeconfig):
        config = load_config()
        supervisor = Supervisor(config, kubectl=kubectl, kubeconfig=str(kubeconfig))
        if getattr(args, "headless", False):
            print(
                f"demo: simulator kubeconfig {kubeconfig}; try: curl http://localhost:18080/",
                file=sys.stderr,
                flush=True,
            )
            return asyncio.run(
                run_headless(
                    supervisor,
                    json_lines=bool(args.json),
                    duration=duration,
                    webuis=make_webuis(args),
                )
            )
        return run_dashboard(
            supervisor,
            config_path=str(config_path),
            config_arg=None,
            last_resort=lambda: shutil.rmtree(config_path.parent, ignore_errors=True),
            webuis=make_webuis(args),
            kubeconfig=str(kubeconfig),
        )
