"""Command-line parsing and dispatch.

Heavy imports (textual, kubernetes, asyncio machinery) happen inside the command that needs them, so
``kportforward --version`` and ``--help`` stay fast and import neither.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from kportforward import __version__, cliux
from kportforward.errors import ArgumentError, KPortForwardError

log = logging.getLogger(__name__)

EPILOG = """\
examples:
  kportforward demo                  the dashboard over a simulated cluster
  kportforward check                 validate ~/.config/kportforward/config.yaml
  kportforward run --json            headless, one JSON object per event
  kportforward --config extra.yaml   the dashboard with extra.yaml merged over your config
  kportforward -n payments run       only the forwards of namespace payments
  kportforward add -n shop web       append service/web of namespace shop to your config
  kportforward init                  write a commented starter config
  kportforward --config-url https://example.com/team.yaml run
                                     shared team defaults under your own file
  kportforward status --json         the running instance's forwards
  kportforward wait --start api      start headless if needed; exit 0 once api is verified

exit codes: 0 ok, 1 runtime failure, 2 bad input (config, arguments, kubeconfig, missing kubectl),
            3 no instance runs (status, wait, start/stop/restart)
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit 2 through our error family."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `sim --kubeconfig X` is not --kubeconfig-out X
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing usage: the CLI prints one line."""
        raise ArgumentError(message, f"see '{self.prog} --help'")


def _add_common(
    parser: argparse.ArgumentParser,
    *,
    suppress: bool,
    groups: frozenset[str] = cliux.ALL_GROUPS,
) -> None:
    """The common options of ``groups`` (see ``cliux.COMMON_OPTIONS``): a subcommand lists only
    those it uses."""
    default = argparse.SUPPRESS if suppress else None
    if "config" in groups:
        parser.add_argument(
            "--config", metavar="PATH", default=default, help="config file merged over the others"
        )
    if "kubeconfig" in groups:
        parser.add_argument(
            "--kubeconfig", metavar="PATH", default=default, help="kubeconfig for every forward"
        )
    if "kubectl" in groups:
        parser.add_argument(
            "--kubectl",
            metavar="PATH",
            default=default,
            help="kubectl executable (default: on PATH)",
        )
    if "log" in groups:
        parser.add_argument(
            "--log-file",
            metavar="PATH",
            default=default,
            help="write a log here (a regular file, created 0600; or /dev/null)",
        )
    if "filters" in groups:
        cliux.add_filters(parser, suppress=suppress)
    if "config" in groups:
        _add_config_url(parser, default)
    if "debug" in groups:
        _add_debug(parser, default)
    if "log" in groups:
        parser.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS if suppress else 0,
            help="more detail in the log",
        )


def _add_config_url(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--config-url",
        metavar="URL",
        default=default,
        help="remote defaults merged under your config (https; '' for the embedded ones only)",
    )


def _add_debug(parser: argparse.ArgumentParser, default: object) -> None:
    debug = parser.add_argument_group("debugging (the Go tool's flags)")
    debug.add_argument(
        "--mem-stats-interval",
        metavar="D",
        default=default,
        help="log memory statistics every D (0 = off; 1s-24h)",
    )
    debug.add_argument(
        "--heap-snapshot-dir", metavar="DIR", default=default, help="write heap snapshots here"
    )
    debug.add_argument(
        "--heap-snapshot-interval",
        metavar="D",
        default=default,
        help="take a tracemalloc heap snapshot every D (0 = off; 10s-24h)",
    )
    debug.add_argument(
        "--pprof", metavar="ADDR", default=default, help="not available: use 'kportforward profile'"
    )


def _add_webuis(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The Go tool's web UI flags (the dashboard, ``run`` and ``demo``)."""
    default = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "--swaggerui",
        action="store_true",
        default=default,
        help="Swagger UI for every rest forward with a swaggerPath (127.0.0.1, ports from 9100)",
    )
    parser.add_argument(
        "--grpcui",
        action="store_true",
        default=default,
        help="grpcui (when on PATH) for every rpc forward (127.0.0.1, ports from 9200)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by tests and docs)."""
    parser = _Parser(
        prog="kportforward",
        description="Keep many kubectl port-forwards alive, with a terminal dashboard.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kportforward {__version__}")
    _add_common(parser, suppress=False)
    _add_webuis(parser, suppress=False)
    sub = parser.add_subparsers(
        dest="command", title="commands", metavar="COMMAND", parser_class=_Parser
    )

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p, suppress=True, groups=cliux.groups_for(name))
        return p

    _add_webuis(command("dashboard", "open the dashboard (the default)"), suppress=True)
    demo = command("demo", "the dashboard over a simulated cluster; no cluster or config needed")
    _add_webuis(demo, suppress=True)
    demo.add_argument("--headless", action="store_true", help="print run's output instead of a UI")
    demo.add_argument("--json", action="store_true", help="with --headless: JSON lines")
    demo.add_argument(
        "--duration", metavar="DURATION", help="with --headless: stop after this long (up to 7d)"
    )
    run = command("run", "keep the forwards alive without a UI; one line per event")
    _add_webuis(run, suppress=True)
    run.add_argument("--json", action="store_true", help="one JSON object per line per event")
    check = command("check", "validate the merged config and print the forwards")
    check.add_argument("--json", action="store_true", help="print the forwards as JSON")
    check.add_argument(
        "--offline",
        action="store_true",
        help="check the config only: not the kubectl binary, kubeconfig or contexts",
    )
    sim = command("sim", "run the cluster simulator in the foreground")
    sim.add_argument("--world", metavar="FILE", help="YAML world (default: the demo world)")
    sim.add_argument(
        "--port", type=int, default=0, help="listen port on 127.0.0.1, 0-65535 (default 0: any)"
    )
    sim.add_argument("--kubeconfig-out", metavar="PATH", help="write the kubeconfig here")
    sim.add_argument("--tls", action="store_true", help="serve https with a bearer token")
    profile = command("profile", "profile the real supervisor under load")
    profile.add_argument(
        "--duration", metavar="DURATION", default="30s", help="up to 24h (default 30s)"
    )
    profile.add_argument("--output", metavar="DIR", default="profile-out", help="report directory")
    profile.add_argument(
        "--forwards", metavar="N", type=int, default=50, help="1-1000 (default 50)"
    )
    profile.add_argument(
        "--churn", metavar="RATE", type=float, default=0.0, help="kubectl kills per second, 0-100"
    )
    profile.add_argument("--cpuprofile", metavar="FILE", help="also write the cProfile data here")
    profile.add_argument("--memprofile", metavar="FILE", help="also write the memory report here")
    command("version", "print the version")
    # -- control: talk to the running instance (kportforward.control; docs/CONTROL.md) --------
    run.add_argument(
        "--replace", action="store_true", help="stop the instance running on this config first"
    )
    status = command("status", "the running instance's forwards (exit 3: none runs)")
    status.add_argument("--json", action="store_true", help="one JSON object")
    wait = command("wait", "exit 0 once the forwards are verified (Running); 1 at the timeout")
    wait.add_argument("names", nargs="*", metavar="NAME", help="forwards to wait for")
    wait.add_argument("--all", action="store_true", help="every forward (the default)")
    wait.add_argument("--group", metavar="G", action="append", help="every forward of group G")
    wait.add_argument("--timeout", metavar="DURATION", default="60s", help="default 60s")
    wait.add_argument(
        "--start", action="store_true", help="start an instance (headless, detached) if none runs"
    )
    wait.add_argument("--json", action="store_true", help="print the result as JSON")
    for verb in ("start", "stop", "restart"):
        act = command(verb, f"{verb} forwards of the running instance")
        act.add_argument("names", nargs="*", metavar="NAME", help="forward names")
        act.add_argument("--group", metavar="G", action="append", help=f"{verb} group G")
        act.add_argument("--all", action="store_true", help=f"{verb} every forward")
        if verb == "stop":
            act.add_argument(
                "--instance", action="store_true", help="stop the instance itself (all forwards)"
            )
    mcp = command("mcp", "an MCP server on stdio for the running instance (kportforward[mcp])")
    mcp.add_argument(
        "--start", action="store_true", help="start an instance (headless) if none runs"
    )
    command("init", "write a commented starter config at the user path (never overwrites)")
    completion = command("completion", "print the shell completion script (bash, zsh, fish)")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"), help="your shell")
    discover = command("discover", "list the services and ports of a namespace (-n, --context)")
    discover.add_argument("--json", action="store_true", help="one JSON document")
    add = command("add", "append forwards for services of a namespace to your config file")
    add.add_argument("services", nargs="*", metavar="SERVICE[:PORT]", help="services to add")
    add.add_argument("--all", action="store_true", help="every service port of the namespace")
    add.add_argument("--dry-run", action="store_true", help="print the block; change nothing")
    _complete_forward_names(parser)
    return parser


def _complete_forward_names(parser: argparse.ArgumentParser) -> None:
    """Forward-name arguments (start/stop/restart/wait …) complete from the config."""
    from kportforward.commands.completion import forward_names

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for arg in sub._actions:
                    if not arg.option_strings and arg.dest in (
                        "name",
                        "names",
                        "forward",
                        "forwards",
                    ):
                        arg.completer = forward_names


# command name -> module in kportforward.commands exposing main(args) -> int
_COMMANDS = {
    None: "dashboard",
    "dashboard": "dashboard",
    "demo": "demo",
    "run": "run",
    "check": "check",
    "sim": "sim",
    "profile": "profile",
    "init": "init",
    "completion": "completion",
    "add": "add",
    "discover": "add",
    "status": "status",
    "wait": "wait",
    "start": "act",
    "stop": "act",
    "restart": "act",
    "mcp": "mcp",
}


# Commands that read the user's config (and so the remote defaults); demo uses its own world.
_LOADS_CONFIG = {None, "dashboard", "run", "check"}
# Commands that run long enough for the debug reports to mean something.
_LONG_RUNNING = {None, "dashboard", "run", "demo"}


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args``, but an unknown option is named as such, never as a bad command.

    argparse reads ``kportforward --swaggerui run`` fine, but ``--unknown VALUE`` makes VALUE look
    like a command ("invalid choice"); the unknown option is the real problem, so say that.
    """
    try:
        return parser.parse_args(argv)
    except ArgumentError as exc:
        unknown = _first_unknown_option(parser, argv)
        if unknown is None or "unrecognized arguments" in exc.message:
            raise
        raise ArgumentError(
            f"unknown option {unknown}", f"see '{parser.prog} --help' for the options"
        ) from None


def _first_unknown_option(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    known: set[str] = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        known.update(p._option_string_actions)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    for token in argv:
        if token == "--":
            break
        if token.startswith("-") and token != "-" and token.split("=", 1)[0] not in known:
            return token.split("=", 1)[0]
    return None


def _wants_check_json(argv: list[str]) -> bool:
    return "check" in argv and "--json" in argv


def _duration_arg(flag: str, value: str | None) -> float:
    from kportforward.core.durations import parse_duration

    if value is None:
        return 0.0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ArgumentError(f"{flag}: {exc}", "e.g. 30s, 5m or 1h; 0 turns it off") from None


def _debug_options(args: argparse.Namespace) -> Any:
    from kportforward.debugstats import DebugOptions

    return DebugOptions(
        _duration_arg("--mem-stats-interval", getattr(args, "mem_stats_interval", None)),
        getattr(args, "heap_snapshot_dir", None),
        _duration_arg("--heap-snapshot-interval", getattr(args, "heap_snapshot_interval", None)),
    )


def _run_command(args: argparse.Namespace) -> int:
    """Set up what every command shares (remote defaults, debug reports), then run it."""
    if getattr(args, "pprof", None) is not None:
        raise ArgumentError(
            "--pprof (Go's pprof server) has no Python counterpart",
            "use 'kportforward profile' (cProfile and memory reports) or --heap-snapshot-dir",
        )
    if getattr(args, "kubeconfig", None):
        from kportforward.kube.kubeconfig_yaml import materialise_kubeconfig

        # `--kubeconfig <(cmd)`: read the pipe once into a private copy that kubectl can open too.
        args.kubeconfig = materialise_kubeconfig(os.path.expanduser(args.kubeconfig))
    options = _debug_options(args)
    if args.command in _LOADS_CONFIG:
        from kportforward import remote_defaults

        # run and check wait for the fetch (5 s at most); the dashboard starts from the cache.
        args.remote_defaults = remote_defaults.prepare(
            getattr(args, "config_url", None),
            getattr(args, "config", None),
            fetch_now=args.command in ("run", "check"),
        )
    stats = None
    if args.command in _LONG_RUNNING:
        from kportforward import debugstats

        stats = debugstats.start(options)
        if options.mem_stats_interval and not getattr(args, "log_file", None):
            print(
                "kportforward: warning: --mem-stats-interval writes to the log; "
                "add --log-file PATH to keep it",
                file=sys.stderr,
            )
    else:
        from kportforward import debugstats

        debugstats.validate(options)
    try:
        module = importlib.import_module(f"kportforward.commands.{_COMMANDS[args.command]}")
        return int(module.main(args))
    finally:
        if stats is not None:
            stats.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kportforward`` console script; returns the exit code."""
    # Until --log-file is known, log records go nowhere (never to the terminal as stray lines).
    logging.getLogger().addHandler(logging.NullHandler())
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        from kportforward.commands.completion import autocomplete

        autocomplete(parser)  # a shell asking for completions: answered, then exit
        args = parse(parser, tokens)
        if args.command == "version":
            print(f"kportforward {__version__}")
            return 0
        cliux.check_common_options(args)
        cliux.check_combinations(args)
        cliux.preflight_ui(args)  # bad input is named as such, terminal or not
        cliux.require_terminal(args)
        from kportforward.logs import setup_logging

        setup_logging(getattr(args, "log_file", None), getattr(args, "verbose", 0))
        return _run_command(args)
    except KPortForwardError as exc:
        log.error("%s", exc)
        if _wants_check_json(tokens):
            from kportforward.commands.check import print_json_failure

            print_json_failure(exc)
        print(f"kportforward: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the boundary: one line for a person, the traceback for the log
        log.exception("unexpected error")
        print(
            f"kportforward: unexpected error: {type(exc).__name__}: {exc} "
            "(run with -v --log-file PATH for details)",
            file=sys.stderr,
        )
        return 1
