"""The CLI's user-facing rules that are not parsing: which common options each command shows,
option combinations that are errors, the dashboard's need for a terminal, the global
``--context`` / ``-n`` filters. ``cli.py`` calls these; they import nothing heavy.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from kportforward.errors import ArgumentError

if TYPE_CHECKING:
    from kportforward.core.models import Config

UI_COMMANDS = (None, "dashboard")

COMMON_OPTIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"config", "kubeconfig", "kubectl", "log", "filters", "debug"}),
    "dashboard": frozenset({"config", "kubeconfig", "kubectl", "log", "filters", "debug"}),
    "run": frozenset({"config", "kubeconfig", "kubectl", "log", "filters", "debug"}),
    "check": frozenset({"config", "kubeconfig", "kubectl", "log", "filters", "debug"}),
    "demo": frozenset({"kubectl", "log", "debug"}),
    "profile": frozenset({"kubectl", "log", "debug"}),
    "sim": frozenset({"log", "debug"}),
    "add": frozenset({"config", "kubeconfig", "log", "filters"}),
    "discover": frozenset({"kubeconfig", "log", "filters"}),
    "init": frozenset(),
    "completion": frozenset(),
    "version": frozenset(),
}
"""Which groups of the common options each command takes (and lists in its --help): ``config``
(--config, --config-url), ``kubeconfig``, ``kubectl``, ``log`` (--log-file, -v), ``filters``
(--context, -n), ``debug`` (the Go tool's memory/heap flags). Other commands get an alias of
their own module in ``cli._COMMANDS``; unknown ones take every group."""

GROUP_DESTS: dict[str, tuple[tuple[str, str], ...]] = {
    "config": (("config", "--config"), ("config_url", "--config-url")),
    "kubeconfig": (("kubeconfig", "--kubeconfig"),),
    "kubectl": (("kubectl", "--kubectl"),),
    "log": (("log_file", "--log-file"), ("verbose", "-v")),
    "filters": (("context", "--context"), ("namespace", "-n/--namespace")),
    "debug": (
        ("mem_stats_interval", "--mem-stats-interval"),
        ("heap_snapshot_dir", "--heap-snapshot-dir"),
        ("heap_snapshot_interval", "--heap-snapshot-interval"),
        ("pprof", "--pprof"),
    ),
}
ALL_GROUPS = frozenset(GROUP_DESTS)


def groups_for(command: str | None) -> frozenset[str]:
    """The common option groups ``command`` takes."""
    return COMMON_OPTIONS.get(command, ALL_GROUPS)


def check_common_options(args: argparse.Namespace) -> None:
    """A common option given before a command that does not use it (``kportforward --kubeconfig
    X sim``) is an error rather than silently ignored."""
    wanted = groups_for(args.command)
    for group, dests in GROUP_DESTS.items():
        if group in wanted:
            continue
        for dest, flag in dests:
            if getattr(args, dest, None):
                name = args.command or "the dashboard"
                usage = " ".join(("kportforward", *([args.command] if args.command else [])))
                raise ArgumentError(
                    f"{flag} does not apply to {name}", f"drop it (see '{usage} --help')"
                )


def add_filters(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """``--context`` and ``-n/--namespace``, as kubectl spells them."""
    default = argparse.SUPPRESS if suppress else None
    context = parser.add_argument(
        "--context",
        metavar="NAME",
        default=default,
        help="only the forwards of this kube context (add/discover: read this context)",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        default=default,
        help="only the forwards of this namespace (add/discover: list this namespace)",
    )
    from kportforward.commands.completion import contexts

    context.completer = contexts  # type: ignore[attr-defined]


def check_combinations(args: argparse.Namespace) -> None:
    """Options that only mean something together with another one are errors without it."""
    if args.command == "demo" and not getattr(args, "headless", False):
        ignored = [
            flag
            for flag, dest in (("--json", "json"), ("--duration", "duration"))
            if getattr(args, dest, None)
        ]
        if ignored:
            raise ArgumentError(
                f"{' and '.join(ignored)} only appl{'y' if len(ignored) > 1 else 'ies'} "
                "with --headless (the dashboard would ignore "
                f"{'them' if len(ignored) > 1 else 'it'})",
                f"add --headless, or drop {' and '.join(ignored)}",
            )
    if args.command == "add" and getattr(args, "all", False) and getattr(args, "services", None):
        raise ArgumentError(
            "--all and SERVICE names exclude each other", "name services, or use --all alone"
        )


def has_terminal() -> bool:
    """True when stdin and stdout are both a terminal."""
    try:
        return os.isatty(sys.stdin.fileno()) and os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # closed, replaced or fileno-less streams
        return False


def require_terminal(args: argparse.Namespace, terminal: Callable[[], bool] = has_terminal) -> None:
    """The dashboard draws on a terminal: without one (a pipe, a file, cron) say what to use."""
    ui = args.command in UI_COMMANDS or (
        args.command == "demo" and not getattr(args, "headless", False)
    )
    if not ui:
        return
    if not terminal():
        what = "demo" if args.command == "demo" else "dashboard"
        hint = (
            "use 'kportforward demo --headless'"
            if what == "demo"
            else "use 'kportforward run' to keep the forwards alive without a UI"
        )
        raise ArgumentError(f"the {what} needs a terminal (stdin and stdout are not one)", hint)


def preflight_ui(args: argparse.Namespace) -> None:
    """For the dashboard and the demo's UI: the input checks their commands make anyway (config,
    kubectl, kubeconfig), done first so that a bad input is reported as such even without a
    terminal, before :func:`require_terminal` says the UI needs one."""
    ui = args.command in UI_COMMANDS or (
        args.command == "demo" and not getattr(args, "headless", False)
    )
    if not ui:
        return
    from kportforward.commands.checkenv import find_kubectl, verify_kubectl
    from kportforward.control.paths import paths_for, read_info

    config_arg = getattr(args, "config", None)
    if args.command != "demo" and read_info(paths_for(config_arg, create=False).lock) is not None:
        return  # an instance runs: the dashboard attaches to it and needs none of this

    if args.command == "demo":
        verify_kubectl(find_kubectl(getattr(args, "kubectl", None)))
        return
    from kportforward.commands.startup import check_startable
    from kportforward.core.config import load_config

    config = load_config(getattr(args, "config", None))
    kubectl = find_kubectl(getattr(args, "kubectl", None))
    check_startable(config, getattr(args, "kubeconfig", None))
    verify_kubectl(kubectl)  # after the kubeconfig: its problems name the file and key


def forward_filter(args: argparse.Namespace) -> Callable[[Config], Config] | None:
    """The ``--context``/``-n`` filter for this run, as ``config -> config``; None without one.

    The current context and each context's namespace come from the kubeconfig (``--kubeconfig``
    or ``$KUBECONFIG``); an unreadable kubeconfig counts as no current context, namespace
    ``default``.
    """
    if args.command in ("add", "discover"):
        return None  # there they name what to read, not what to keep
    context = getattr(args, "context", None)
    namespace = getattr(args, "namespace", None)
    if context is None and namespace is None:
        return None
    from kportforward.core.selection import select_forwards

    current, namespaces = _kube_view(getattr(args, "kubeconfig", None))

    def select(config: Config) -> Config:
        return select_forwards(
            config,
            context,
            namespace,
            current,
            lambda name: namespaces.get(name or "", "default"),
        )

    return select


def _kube_view(kubeconfig: str | None) -> tuple[str | None, dict[str, str]]:
    try:
        from kportforward.kube.kubeconfig import shared_watcher

        kc = shared_watcher(kubeconfig).current()
        current = kc.current_context or None
        return current, {name: c.namespace or "default" for name, c in kc.contexts.items()}
    except Exception:
        return None, {}
