"""``kportforward check``: validate the merged config and print the forwards (a table, or JSON).

stdout carries the table (or the JSON document) only; the source files, warnings and errors go to
stderr, so the output can be piped. Every problem is listed, one line each, and the exit code is 2:
a whole-file problem (a ConfigError) and every forward that cannot run as written
(:attr:`Config.rejected`). With ``--json``, stdout is always one JSON document, also on failure:
``{"ok": false, "errors": [...]}``.

Unless ``--offline``, it also checks what the forwards need outside the file, without contacting a
cluster: that the kubectl binary answers like kubectl, that ``--kubeconfig`` (and each forward's
own kubeconfig) can be read, and that every forward's context exists
(``commands/checkenv.py``). ``--context``/``-n`` check only those forwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from kportforward.core.config import load_config, user_config_path
from kportforward.core.models import DEFAULT_ADDRESS, Config, ForwardSpec
from kportforward.errors import ConfigError, KPortForwardError

if TYPE_CHECKING:
    from kportforward.commands.checkenv import EnvironmentReport

JSON_SCHEMA_VERSION = 1
COLUMNS = ("NAME", "TARGET", "NAMESPACE", "PORTS", "TYPE", "CONTEXT", "GROUP")


def main(args: argparse.Namespace) -> int:
    """Run the command; 0 when the config is valid (warnings allowed), 2 when anything is not."""
    json_output = bool(getattr(args, "json", False))
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
        code = _print(config, json_output=json_output, env=env)
        sys.stdout.flush()  # inside the try: a closed pipe must not surface at exit
        return code
    except BrokenPipeError:
        # `check --json | head`: the reader left; that is not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


def print_json_failure(exc: KPortForwardError) -> None:
    """The JSON document for a failure before any forward was checked (the CLI calls it)."""
    error: dict[str, Any] = {"message": str(exc)}
    if isinstance(exc, ConfigError):
        error.update(file=exc.path, line=exc.line, key=exc.key)
    json.dump({"version": JSON_SCHEMA_VERSION, "ok": False, "errors": [error]}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _print(config: Config, *, json_output: bool, env: EnvironmentReport | None = None) -> int:
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
            }
            json.dump(doc, sys.stdout, indent=2)
            sys.stdout.write("\n")
        return 2
    if json_output:
        json.dump(to_json(config), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"sources: {', '.join(config.sources)}", file=sys.stderr)
    if not config.forwards:
        print(f"No forwards configured. Add some under portForwards: in {user_config_path()}")
        return 0
    write_table(config, sys.stdout)
    return 0


def _ports(spec: ForwardSpec) -> str:
    ports = f"{spec.local_port}:{spec.target_port}"
    return ports if spec.address == DEFAULT_ADDRESS else f"{spec.address}:{ports}"


def rows(config: Config) -> list[tuple[str, ...]]:
    """One row of cells per enabled forward, in the table's column order."""
    return [
        (
            spec.name,
            spec.target,
            spec.namespace or "-",
            _ports(spec),
            spec.type,
            spec.context or "-",
            spec.group or "-",
        )
        for spec in config.forwards
    ]


def write_table(config: Config, out: TextIO) -> None:
    """Print the forwards as a left-aligned table with a header."""
    table = [COLUMNS, *rows(config)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    for row in table:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


def to_json(config: Config) -> dict[str, Any]:
    """The stable JSON form: camelCase keys as in the config; durations in seconds."""
    return {
        "version": JSON_SCHEMA_VERSION,
        "ok": True,
        "sources": list(config.sources),
        "monitoringIntervalSeconds": config.settings.monitoring_interval,
        "uiOptions": {
            "refreshRateSeconds": config.settings.refresh_rate,
            "theme": config.settings.theme,
        },
        "portForwards": {
            spec.name: {
                "target": spec.target,
                "targetPort": spec.target_port,
                "localPort": spec.local_port,
                "namespace": spec.namespace,
                "type": spec.type,
                "swaggerPath": spec.swagger_path,
                "apiPath": spec.api_path,
                "context": spec.context,
                "kubeconfig": spec.kubeconfig,
                "address": spec.address,
                "group": spec.group,
            }
            for spec in config.forwards
        },
        "warnings": _warnings(config),
    }


def _warnings(config: Config) -> list[dict[str, Any]]:
    return [
        {"message": w.message, "file": w.path, "line": w.line, "key": w.key}
        for w in config.warnings
    ]
