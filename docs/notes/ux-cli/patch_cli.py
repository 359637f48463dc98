"""Apply the ux CLI changes to kportforward/cli.py (gousers' version). Usage: patch_cli.py IN OUT"""
import sys

src, dst = sys.argv[1], sys.argv[2]
s = open(src).read()


def rep(a: str, b: str) -> None:
    global s
    assert a in s, f"anchor not found: {a[:70]!r}"
    s = s.replace(a, b, 1)


rep('''from kportforward import __version__
from kportforward.errors import ArgumentError, KPortForwardError
''', '''from kportforward import __version__, cliux
from kportforward.errors import ArgumentError, KPortForwardError
''')
rep('''  kportforward --config extra.yaml   the dashboard with extra.yaml merged over your config
''', '''  kportforward --config extra.yaml   the dashboard with extra.yaml merged over your config
  kportforward -n payments run       only the forwards of namespace payments
  kportforward add -n shop web       append service/web of namespace shop to your config
  kportforward init                  write a commented starter config
''')
# argparse's prefix matching turned `sim --kubeconfig X` into --kubeconfig-out X: no abbreviations.
rep('''    def error(self, message: str) -> NoReturn:''', '''    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `sim --kubeconfig X` is not --kubeconfig-out X
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:''')
# _add_common: only the groups a command takes
rep('''def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
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
        "--config-url",''', '''def _add_common(
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
            "--log-file", metavar="PATH", default=default, help="write a log here (created 0600)"
        )
    if "filters" in groups:
        cliux.add_filters(parser, suppress=suppress)
    if "config" not in groups:
        pass
    else:
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
        "--config-url",''')
rep('''        help="remote defaults merged under your config (https; '' for the embedded ones only)",
    )
    debug = parser.add_argument_group("debugging (the Go tool's flags)")''', '''        help="remote defaults merged under your config (https; '' for the embedded ones only)",
    )


def _add_debug(parser: argparse.ArgumentParser, default: object) -> None:
    debug = parser.add_argument_group("debugging (the Go tool's flags)")''')
rep('''    debug.add_argument(
        "--pprof", metavar="ADDR", default=default, help="not available: use 'kportforward profile'"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="more detail in the log",
    )
''', '''    debug.add_argument(
        "--pprof", metavar="ADDR", default=default, help="not available: use 'kportforward profile'"
    )
''')
s = s.replace('''    if "config" not in groups:
        pass
    else:
        _add_config_url(parser, default)''', '''    if "config" in groups:
        _add_config_url(parser, default)''')
rep('''    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p, suppress=True)
        return p
''', '''    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p, suppress=True, groups=cliux.groups_for(name))
        return p
''')
rep('''    check.add_argument("--json", action="store_true", help="print the forwards as JSON")
''', '''    check.add_argument("--json", action="store_true", help="print the forwards as JSON")
    check.add_argument(
        "--offline",
        action="store_true",
        help="check the config only: not the kubectl binary, kubeconfig or contexts",
    )
''')
rep('''    command("version", "print the version")
    return parser
''', '''    command("version", "print the version")
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
                    if not arg.option_strings and arg.dest in ("name", "names", "forward", "forwards"):
                        arg.completer = forward_names
''')
rep('''    "profile": "profile",
}
''', '''    "profile": "profile",
    "init": "init",
    "completion": "completion",
    "add": "add",
    "discover": "add",
}
''')
rep('''    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse(build_parser(), tokens)
        if args.command == "version":
            print(f"kportforward {__version__}")
            return 0
        from kportforward.logs import setup_logging

        setup_logging(args.log_file, args.verbose)
        return _run_command(args)''', '''    tokens = list(sys.argv[1:] if argv is None else argv)
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
        return _run_command(args)''')
open(dst, "w").write(s)
