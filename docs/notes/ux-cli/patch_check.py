"""Apply the ux changes to kportforward/commands/check.py (gousers' version). patch_check.py IN OUT"""
import sys

src, dst = sys.argv[1], sys.argv[2]
s = open(src).read()


def rep(a: str, b: str) -> None:
    global s
    assert a in s, f"anchor not found: {a[:70]!r}"
    s = s.replace(a, b, 1)


rep('''(:attr:`Config.rejected`). With ``--json``, stdout is always one JSON document, also on failure:
``{"ok": false, "errors": [...]}``.
"""''', '''(:attr:`Config.rejected`). With ``--json``, stdout is always one JSON document, also on failure:
``{"ok": false, "errors": [...]}``.

Unless ``--offline``, it also checks what the forwards need outside the file, without contacting a
cluster: that the kubectl binary answers like kubectl, that ``--kubeconfig`` (and each forward's
own kubeconfig) can be read, and that every forward's context exists
(``commands/checkenv.py``). ``--context``/``-n`` check only those forwards.
"""''')
rep('''    json_output = bool(getattr(args, "json", False))
    config = load_config(getattr(args, "config", None))  # errors: the CLI prints them (JSON too)
    try:
        code = _print(config, json_output=json_output)''', '''    json_output = bool(getattr(args, "json", False))
    config = load_config(getattr(args, "config", None))  # errors: the CLI prints them (JSON too)
    from kportforward.cliux import forward_filter

    select = forward_filter(args)
    if select is not None:
        config = select(config)
    env = None
    if not getattr(args, "offline", False):
        from kportforward.commands.checkenv import check_environment

        env = check_environment(
            config, getattr(args, "kubeconfig", None), getattr(args, "kubectl", None)
        )
    try:
        code = _print(config, json_output=json_output, env=env)''')
rep('''def _print(config: Config, *, json_output: bool) -> int:
    for warning in config.warnings:
        print(f"kportforward: warning: {warning}", file=sys.stderr)
    if config.rejected:
        for problem in config.rejected:
            print(f"kportforward: error: {problem.message}", file=sys.stderr)
        if json_output:
            doc = {
                "version": JSON_SCHEMA_VERSION,
                "ok": False,
                "errors": [{"forward": p.name, "message": p.message} for p in config.rejected],
                "warnings": _warnings(config),
            }''', '''def _print(config: Config, *, json_output: bool, env: EnvironmentReport | None = None) -> int:
    for warning in config.warnings:
        print(f"kportforward: warning: {warning}", file=sys.stderr)
    problems = env.problems if env is not None else []
    if env is not None and not (config.rejected or problems):
        for fact in env.facts:  # what was verified, when all is well (errors stand alone)
            print(f"kportforward: {fact}", file=sys.stderr)
    if config.rejected or problems:
        for problem in config.rejected:
            print(f"kportforward: error: {problem.message}", file=sys.stderr)
        for line in problems:
            print(f"kportforward: error: {line}", file=sys.stderr)
        if json_output:
            doc = {
                "version": JSON_SCHEMA_VERSION,
                "ok": False,
                "errors": [{"forward": p.name, "message": p.message} for p in config.rejected]
                + [{"message": line} for line in problems],
                "warnings": _warnings(config),
            }''')
rep('''from kportforward.errors import ConfigError, KPortForwardError
''', '''from kportforward.errors import ConfigError, KPortForwardError

if TYPE_CHECKING:
    from kportforward.commands.checkenv import EnvironmentReport
''')
rep('''from typing import Any, TextIO''', '''from typing import TYPE_CHECKING, Any, TextIO''')
open(dst, "w").write(s)
