"""``kportforward sim``: run the cluster simulator in the foreground for kubectl by hand."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from kportforward.errors import ArgumentError, ConfigError, OutputPathError, PortError


def main(args: argparse.Namespace) -> int:
    """Start the simulator, print how to use it, serve until Ctrl-C or SIGTERM."""
    from kportforward.sim import Simulator, World, WorldError

    world = None
    if args.world:
        try:
            world = World.from_yaml(args.world)
        except WorldError as exc:
            from kportforward.sim.worldfile import EXAMPLE

            raise ConfigError(str(exc), f"fix the world file (example: {EXAMPLE})") from None
    if not 0 <= args.port <= 65535:
        raise ArgumentError(f"--port {args.port} is outside 0-65535")
    sim = Simulator(world, tls=args.tls, port=args.port)
    return asyncio.run(_serve(sim, args.kubeconfig_out))


async def _serve(sim: object, kubeconfig_out: str | None) -> int:
    from kportforward.sim import Simulator

    assert isinstance(sim, Simulator)
    try:
        await sim.start()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise PortError(
            f"cannot listen on 127.0.0.1:{sim.port}: {reason.lower()}",
            "choose another --port, or leave it out to take any free port",
        ) from None
    try:
        kubeconfig = sim.kubeconfig_path
        if kubeconfig_out:
            try:
                kubeconfig = sim.write_kubeconfig(Path(kubeconfig_out).expanduser())
            except OSError as exc:
                raise OutputPathError(
                    f"{kubeconfig_out}: cannot write the kubeconfig ({exc.strerror})"
                ) from None
        print(f"simulator listening on {sim.url}")
        print(f"kubeconfig: {kubeconfig} (context {sim.context_name})")
        print("try:")
        print(f"  {_example(sim, str(kubeconfig))}")
        print("press Ctrl-C to stop")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("stopping")
        return 0
    finally:
        await sim.stop()


def _example(sim: object, kubeconfig: str) -> str:
    from kportforward.sim import Simulator

    assert isinstance(sim, Simulator)
    services = list(sim.world.services.values())
    if services and services[0].ports:
        svc = services[0]
        target, port = f"service/{svc.name}", svc.ports[0].port
        namespace = svc.namespace
    elif sim.world.pods:
        pod = next(iter(sim.world.pods.values()))
        target, namespace = f"pod/{pod.name}", pod.namespace
        port = pod.ports[0].port if pod.ports else 80
    else:
        return "(the world is empty: add services or pods to the world file)"
    local = 8080 if port < 1024 else port
    return (
        f"kubectl --kubeconfig {kubeconfig} port-forward --address 127.0.0.1 "
        f"-n {namespace} {target} {local}:{port}"
    )
