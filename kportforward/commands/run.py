"""``kportforward run [--json]``: keep the forwards alive without a UI, one line per event.

SIGINT, SIGTERM and SIGHUP stop every kubectl (SIGINT → SIGTERM → SIGKILL per group) and exit 0
within about two seconds; a second SIGINT kills them at once. ``run_headless`` is the reusable part
(``demo --headless`` uses it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from typing import Any, TextIO

from kportforward.core.models import Config
from kportforward.errors import BadInputError, KubeconfigError
from kportforward.supervisor.events import (
    ClusterEvent,
    ConfigReloaded,
    ForwardEvent,
    NoticeEvent,
    TrafficEvent,
)

log = logging.getLogger(__name__)


def resolve_kubectl(path: str | None) -> str:
    """The kubectl to run: ``path`` (``--kubectl``) or kubectl on PATH, answering like kubectl;
    raises exit-2 errors (``--kubectl /bin/false`` is "not kubectl", not a failing forward)."""
    from kportforward.commands.checkenv import find_kubectl, verify_kubectl

    found = find_kubectl(path)
    verify_kubectl(found)
    return found


def format_event(event: Any, *, width: int = 16) -> str:
    """One human line for an event: ``HH:MM:SS name  State  :port pid N  reason``."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
    if isinstance(event, ForwardEvent):
        s = event.status
        port = s.local_port or s.spec.local_port
        pid = f" pid {s.pid}" if s.pid else ""
        return f"{stamp} {s.name:<{width}} {s.state.value:<12} :{port}{pid}  {event.reason}"
    if isinstance(event, ClusterEvent):
        c = event.cluster
        what = {True: "reachable", False: "unreachable", None: "context"}[c.reachable]
        return f"{stamp} cluster {c.context}: {what} — {event.reason}"
    if isinstance(event, NoticeEvent):
        return f"{stamp} {event.level}: {event.message}"
    if isinstance(event, ConfigReloaded):
        warnings = "".join(f"\n{stamp} warning: config: {w}" for w in event.warnings)
        return f"{stamp} {event.summary}{warnings}"
    return f"{stamp} {event}"


async def run_headless(
    supervisor: Any,
    *,
    json_lines: bool,
    duration: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    handle_signals: bool = True,
    webuis: Any = None,
) -> int:
    """Start ``supervisor``, print its events until a signal (or ``duration``), then shut it down.

    With ``json_lines`` every event is one JSON object per line on ``out``, told apart by its
    ``event`` key (``forward``, ``cluster``, ``notice``, ``reload``). Returns the exit code (0).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        name = signal.Signals(signum).name
        log.info("signal %s (%d)", name, signals)
        if signals == 1:
            _say(err, f"kportforward: {name}: stopping every kubectl (Ctrl-C again to force)")
        elif signum == signal.SIGINT:
            killed = supervisor.kill_all()  # a second Ctrl-C: no more waiting
            _say(err, f"kportforward: forced: killed {killed} kubectl process(es)")
        stop.set()

    installed = []
    if handle_signals:
        wanted = [signal.SIGINT, signal.SIGTERM]
        if sys.platform != "win32":  # no SIGHUP there (and no loop signal handlers at all)
            wanted.append(signal.SIGHUP)
        for sig in wanted:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
    register = getattr(supervisor, "set_stop_handler", None)
    if register is not None:  # a control client's `shutdown` (e.g. `run --replace`) ends the run
        register(stop.set)
    width = max([16, *(len(s.name) for s in supervisor.config.forwards)])

    def emit(event: Any) -> None:
        try:
            if json_lines:
                out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
                out.flush()
            elif isinstance(event, TrafficEvent):
                return  # a line per second per busy forward is for machines (--json), not people
            else:
                stream = err if json_lines else out
                stream.write(format_event(event, width=width) + "\n")
                stream.flush()
        except (BrokenPipeError, ValueError):  # our reader went away: keep supervising quietly
            pass

    async def pump() -> None:
        async for event in supervisor.events():
            emit(event)
            if webuis is not None and isinstance(event, ForwardEvent):
                webuis.update(event.status)  # Swagger UI / grpcui follow the forwards

    printer = loop.create_task(pump(), name="event-printer")
    try:
        await supervisor.start()
        if webuis is not None:
            webuis.set_notice(lambda text: emit(NoticeEvent(time.time(), "warning", text)))
            await webuis.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                await stop.wait()
    finally:
        await supervisor.shutdown()
        if webuis is not None:
            await webuis.close()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(2.0):  # the final Stopped lines
                await printer
        printer.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return 0


def _say(stream: TextIO, line: str) -> None:
    try:
        stream.write(line + "\n")
        stream.flush()
    except (BrokenPipeError, ValueError):
        pass


def check_credentials(
    config: Config,
    explicit: str | None,
    timeout: float = 10.0,
    err: TextIO | None = None,
    skip: set[str] | None = None,
) -> None:
    """Before starting: one access probe per (kubeconfig, context), concurrently, within
    ``timeout``. Expired or missing credentials, like an unreachable cluster, are states, not
    errors: those forwards wait Suspended and come up by themselves once the user has logged in,
    and each such cluster gets one warning line saying so — with the command that fixes the
    credentials. Only a credential plugin that cannot run at all (not installed) is an exit-2
    error naming the plugin and the kubeconfig user.
    """
    from kportforward.kube.access import probe_access
    from kportforward.kube.credentials import credential_sources
    from kportforward.kube.kubeconfig import kubeconfig_paths, load_kubeconfig_for

    pairs = sorted(
        {
            (s.kubeconfig or explicit, s.context)
            for s in config.forwards
            if s.name not in (skip or ())
        },
        key=str,
    )

    async def probe_all() -> list[Any]:
        return list(
            await asyncio.gather(*(probe_access(ctx, kc, None, timeout) for kc, ctx in pairs))
        )

    results = asyncio.run(probe_all())
    for (kubeconfig, context), result in zip(pairs, results, strict=True):
        if result.ok:
            continue
        fix, source, name = "", None, context or ""
        if result.kind in ("auth", "config"):
            with contextlib.suppress(Exception):  # the hint is a bonus; the warning stands
                name = name or load_kubeconfig_for(kubeconfig).current_context or ""
                source = credential_sources(kubeconfig_paths(kubeconfig)).get(name)
        if result.kind == "config" and "exec credential plugin" not in result.message:
            # The kubeconfig itself cannot work (a CA that is a FIFO, a broken TLS set-up): no
            # login fixes that, so it is bad input, not a state to wait in.
            raise KubeconfigError(result.message, "fix the kubeconfig")
        if source is not None and source.plugin_missing():
            raise KubeconfigError(
                f"credential plugin '{source.command}' of kubeconfig user '{source.user}' is "
                f"not installed (context '{name}')",
                "install it, or fix users[].user.exec.command in the kubeconfig",
            )
        if source is not None:
            fix = f"; fix: {source.fix}"
        print(
            f"kportforward: warning: {result.message}{fix} — its forwards wait Suspended and "
            "resume by themselves",
            file=err or sys.stderr,
            flush=True,
        )


def main(args: Any) -> int:
    """``kportforward run``."""
    from kportforward.commands.checkenv import find_kubectl, verify_kubectl
    from kportforward.commands.startup import check_startable, forward_problems
    from kportforward.control.instance import claim, serve
    from kportforward.core.config import load_config, user_config_path
    from kportforward.supervisor.supervisor import Supervisor

    kubectl = find_kubectl(getattr(args, "kubectl", None))
    config = load_config(getattr(args, "config", None))
    from kportforward.cliux import forward_filter

    if (select := forward_filter(args)) is not None:  # --context / -n
        config = select(config)
    if not config.forwards and not config.rejected:
        raise BadInputError(
            "no forwards configured",
            f"add some under portForwards in {user_config_path()} or pass --config PATH",
        )
    kubeconfig = getattr(args, "kubeconfig", None)
    for line in check_startable(config, kubeconfig):
        _say(sys.stderr, f"kportforward: error: {line} (the other forwards start)")
    bad = forward_problems(config.forwards, kubeconfig)
    verify_kubectl(kubectl)  # after the config and kubeconfig checks: those name file and key
    # One instance per user and config: refuse (or replace) before touching any cluster.
    config_arg = getattr(args, "config", None)
    lock = claim(config_arg, replace=bool(getattr(args, "replace", False)), mode="run")
    try:
        check_credentials(config, kubeconfig, skip=set(bad))
        supervisor = Supervisor(
            config,
            kubectl=kubectl,
            kubeconfig=kubeconfig,
            config_path=config_arg,
            watch_config=True,
            remote_defaults=getattr(args, "remote_defaults", None),
            select=select,
        )
        shared = serve(supervisor, lock, config_arg)
        json_lines = bool(getattr(args, "json", False))
        return asyncio.run(run_headless(shared, json_lines=json_lines, webuis=make_webuis(args)))
    finally:
        lock.release()


def make_webuis(args: Any) -> Any:
    """``WebUIs`` for ``--swaggerui``/``--grpcui`` (None when neither is asked for)."""
    swaggerui = bool(getattr(args, "swaggerui", False))
    grpcui = bool(getattr(args, "grpcui", False))
    if not (swaggerui or grpcui):
        return None
    from kportforward.webui import WebUIs

    return WebUIs(swaggerui=swaggerui, grpcui=grpcui)
