"""``kportforward sim``: run the cluster simulator in the foreground for kubectl by hand.

Arguments: ``--port`` 0–65535 (0: any free port); ``--world FILE`` a regular YAML file of at most
4 MiB; ``--kubeconfig-out PATH`` a regular file (created 0600) — never a FIFO, device or directory.
The simulator's own files live in an owned temporary directory that the next start removes if this
process was killed before it could.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from kportforward.errors import ArgumentError, ConfigError, OutputPathError, PortError

PORT_RANGE = (0, 65535)
"""``--port``: 0 takes any free port."""
MAX_MESSAGE = 300


def _world_error(message: str, hint: str = "") -> ConfigError:
    from kportforward.sim.worldfile import EXAMPLE

    if len(message) > MAX_MESSAGE:  # a message quoting a huge value stays readable
        message = message[: MAX_MESSAGE - 1] + "…"
    return ConfigError(message, hint or f"fix the world file (example: {EXAMPLE})")


def load_world(path: str) -> Any:
    """The world in ``path``: read bounded (a regular file ≤ 4 MiB, never a FIFO or device), its
    YAML merge keys bounded, built with errors naming file, line and key. Raises ConfigError."""
    from kportforward.kube.kubeconfig_yaml import ExpansionError, merged_size
    from kportforward.safeio import read_user_file, reason_of
    from kportforward.sim import WorldError
    from kportforward.sim.worldfile import MAX_WORLD_BYTES, world_from_text

    def error(message: str, hint: str) -> ConfigError:
        reason = reason_of(message, "world file", path)
        return _world_error(f"{path}: cannot read the world file ({reason})", hint)

    data = read_user_file(
        path, what="world file", error=error, max_bytes=MAX_WORLD_BYTES, allow_stream=False
    )
    try:
        text = (data or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise _world_error(f"{path}: the world file is not UTF-8 text") from None
    import yaml

    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if node is not None:
            merged_size(node)
    except ExpansionError as exc:
        raise _world_error(f"{path}: world file refused: {exc}") from None
    except (yaml.YAMLError, RecursionError):
        pass  # world_from_text reports it with the line
    try:
        return world_from_text(text, path)
    except WorldError as exc:
        raise _world_error(str(exc)) from None


def main(args: argparse.Namespace) -> int:
    """Start the simulator, print how to use it, serve until Ctrl-C or SIGTERM."""
    from kportforward.owned import make_owned_dir
    from kportforward.sim import Simulator

    port = args.port
    if not PORT_RANGE[0] <= port <= PORT_RANGE[1]:
        raise ArgumentError(
            f"--port {port} is outside {PORT_RANGE[0]}-{PORT_RANGE[1]}", "0 takes any free port"
        )
    world = load_world(args.world) if args.world else None
    if args.kubeconfig_out:
        _check_output(args.kubeconfig_out, create=False)
    workdir = make_owned_dir("sim")
    try:
        sim = Simulator(world, tls=args.tls, port=port, workdir=workdir)
        return asyncio.run(_serve(sim, args.kubeconfig_out))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _check_output(path: str, *, create: bool) -> None:
    """Refuse a ``--kubeconfig-out`` that is not a file we may write (FIFO, directory, device,
    someone else's file) before anything is started; with ``create``, also create it 0600."""
    from kportforward.safeio import open_output_file

    def error(message: str, hint: str) -> OutputPathError:
        return OutputPathError(message, "choose a file path for --kubeconfig-out")

    target = os.path.expanduser(path)
    if not os.path.lexists(target):
        if not create:
            return  # created (with its directories) once the simulator is up
        try:
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        except OSError as exc:
            raise error(f"cannot create the directory of {path}: {exc.strerror}", "") from None
    os.close(open_output_file(target, what="--kubeconfig-out", error=error, append=True))


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
            _check_output(kubeconfig_out, create=True)
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
