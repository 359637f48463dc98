"""Command-line parsing and dispatch.

Heavy imports (textual, kubernetes, asyncio machinery) happen inside the command that needs them, so
``kportforward --version`` and ``--help`` stay fast and import neither.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from kportforward import __version__
from kportforward.errors import ArgumentError, KPortForwardError

log = logging.getLogger(__name__)

EPILOG = """\
examples:
  kportforward demo                  the dashboard over a simulated cluster
  kportforward check                 validate ~/.config/kportforward/config.yaml
  kportforward run --json            headless, one JSON object per event
  kportforward --config extra.yaml   the dashboard with extra.yaml merged over your config

exit codes: 0 ok, 1 runtime failure, 2 bad input (config, arguments, kubeconfig, missing kubectl)
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit 2 through our error family."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing usage: the CLI prints one line."""
        raise ArgumentError(message, f"see '{self.prog} --help'")


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config", metavar="PATH", default=default, help="config file merged over the others"
    )
    parser.add_argument(
        "--kubeconfig", metavar="PATH", default=default, help="kubeconfig for every forward"
    )
    parser.add_argument(
        "--kubectl", metavar="PATH", default=default, help="kubectl executable (default: on PATH)"
    )
    parser.add_argument(
        "--log-file", metavar="PATH", default=default, help="write a log here (created 0600)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="more detail in the log",
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
    sub = parser.add_subparsers(
        dest="command", title="commands", metavar="COMMAND", parser_class=_Parser
    )

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p, suppress=True)
        return p

    command("dashboard", "open the dashboard (the default)")
    demo = command("demo", "the dashboard over a simulated cluster; no cluster or config needed")
    demo.add_argument("--headless", action="store_true", help="print run's output instead of a UI")
    demo.add_argument("--json", action="store_true", help="with --headless: JSON lines")
    demo.add_argument(
        "--duration", metavar="DURATION", help="with --headless: stop after this long"
    )
    run = command("run", "keep the forwards alive without a UI; one line per event")
    run.add_argument("--json", action="store_true", help="one JSON object per line per event")
    check = command("check", "validate the merged config and print the forwards")
    check.add_argument("--json", action="store_true", help="print the forwards as JSON")
    sim = command("sim", "run the cluster simulator in the foreground")
    sim.add_argument("--world", metavar="FILE", help="YAML world (default: the demo world)")
    sim.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (default: any)")
    sim.add_argument("--kubeconfig-out", metavar="PATH", help="write the kubeconfig here")
    sim.add_argument("--tls", action="store_true", help="serve https with a bearer token")
    profile = command("profile", "profile the real supervisor under load")
    profile.add_argument("--duration", metavar="DURATION", default="30s", help="default 30s")
    profile.add_argument("--output", metavar="DIR", default="profile-out", help="report directory")
    profile.add_argument("--forwards", metavar="N", type=int, default=50, help="default 50")
    profile.add_argument(
        "--churn", metavar="RATE", type=float, default=0.0, help="kubectl kills per second"
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
    return parser


# command name -> module in kportforward.commands exposing main(args) -> int
_COMMANDS = {
    None: "dashboard",
    "dashboard": "dashboard",
    "demo": "demo",
    "run": "run",
    "check": "check",
    "sim": "sim",
    "profile": "profile",
    "status": "status",
    "wait": "wait",
    "start": "act",
    "stop": "act",
    "restart": "act",
    "mcp": "mcp",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kportforward`` console script; returns the exit code."""
    # Until --log-file is known, log records go nowhere (never to the terminal as stray lines).
    logging.getLogger().addHandler(logging.NullHandler())
    try:
        args = build_parser().parse_args(argv)
        if args.command == "version":
            print(f"kportforward {__version__}")
            return 0
        from kportforward.logs import setup_logging

        setup_logging(args.log_file, args.verbose)
        module = importlib.import_module(f"kportforward.commands.{_COMMANDS[args.command]}")
        return int(module.main(args))
    except KPortForwardError as exc:
        log.error("%s", exc)
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
