"""``kportforward check``: validate the merged config and print the forwards (a table, or JSON).

stdout carries the table (or the JSON document) only; the source files and any warnings go to
stderr, so the output can be piped. Errors propagate as ConfigError: the CLI prints one line and
exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from kportforward.core.config import load_config, user_config_path
from kportforward.core.models import DEFAULT_ADDRESS, Config, ForwardSpec

JSON_SCHEMA_VERSION = 1
COLUMNS = ("NAME", "TARGET", "NAMESPACE", "PORTS", "TYPE", "CONTEXT", "GROUP")


def main(args: argparse.Namespace) -> int:
    """Run the command; 0 when the config is valid (warnings allowed)."""
    config = load_config(getattr(args, "config", None))
    try:
        code = _print(config, json_output=bool(getattr(args, "json", False)))
        sys.stdout.flush()  # inside the try: a closed pipe must not surface at exit
        return code
    except BrokenPipeError:
        # `check --json | head`: the reader left; that is not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


def _print(config: Config, *, json_output: bool) -> int:
    for warning in config.warnings:
        print(f"kportforward: warning: {warning}", file=sys.stderr)
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
        "warnings": [
            {"message": w.message, "file": w.path, "line": w.line, "key": w.key}
            for w in config.warnings
        ],
    }
