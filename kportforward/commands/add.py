"""``kportforward discover`` and ``kportforward add``: a namespace's services, from the API.

``discover [-n NS] [--context C] [--json]`` lists the services and their TCP ports.
``add [-n NS] [--context C] SERVICE[:PORT]... | --all [--dry-run]`` appends one forward per picked
port to the config file (``--config`` when given, else the user file) as a commented block,
never rewriting a byte of it; a running dashboard or ``run`` picks the new forwards up by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from kportforward.core.config_append import (
    NewForward,
    append_forwards,
    block_to_append,
    plan_forwards,
    taken_names_and_ports,
)
from kportforward.errors import ArgumentError
from kportforward.kube.discover import Discovery, ServiceInfo


def discover(args: argparse.Namespace) -> Discovery:
    """The services of the namespace named by ``-n`` (else the context's), through the API."""
    from kportforward.kube.discover import discover_services

    return asyncio.run(
        discover_services(
            getattr(args, "namespace", None),
            kubeconfig=getattr(args, "kubeconfig", None),
            context=getattr(args, "context", None),
        )
    )


def listing(found: Discovery) -> str:
    """A table of the services and ports, for a person."""
    lines = [f"namespace {found.namespace} (context {found.context})"]
    if not found.services:
        return lines[0] + ": no service with a TCP port"
    width = max(len(s.name) for s in found.services)
    for service in found.services:
        ports = ", ".join(f"{p.port}" + (f"/{p.name}" if p.name else "") for p in service.ports)
        lines.append(f"  {service.name.ljust(width)}  {ports}")
    return "\n".join(lines)


def as_json(found: Discovery) -> str:
    """The discovery as one JSON document."""
    return json.dumps(
        {
            "namespace": found.namespace,
            "context": found.context,
            "services": [
                {
                    "name": s.name,
                    "type": s.type,
                    "ports": [
                        {"port": p.port, "name": p.name, "targetPort": p.target_port}
                        for p in s.ports
                    ],
                }
                for s in found.services
            ],
        }
    )


def pick(found: Discovery, wanted: list[str], everything: bool) -> list[tuple[str, int, str, str]]:
    """``(service, port, port name, appProtocol)`` for ``SERVICE`` / ``SERVICE:PORT`` words.

    A service named without a port means all its ports. Unknown names or ports are exit 2, naming
    what exists.
    """
    services: dict[str, ServiceInfo] = {s.name: s for s in found.services}
    if everything:
        wanted = list(services)
    picks: list[tuple[str, int, str, str]] = []
    for word in wanted:
        name, _, port_text = word.partition(":")
        service = services.get(name)
        if service is None:
            known = ", ".join(services) or "none"
            raise ArgumentError(
                f"no service {name!r} with a TCP port in namespace {found.namespace}",
                f"services there: {known}",
            )
        ports = service.ports
        if port_text:
            ports = tuple(p for p in service.ports if port_text in (str(p.port), p.name))
            if not ports:
                known = ", ".join(
                    str(p.port) + (f"/{p.name}" if p.name else "") for p in service.ports
                )
                raise ArgumentError(
                    f"service {name} has no port {port_text!r}", f"its ports: {known}"
                )
        for p in ports:
            item = (service.name, p.port, p.name, p.app_protocol)
            if item not in picks:
                picks.append(item)
    return picks


def plan(args: argparse.Namespace, found: Discovery, path: str) -> list[NewForward]:
    """The entries to append for ``args``' picks, avoiding names and ports already configured."""
    from kportforward.core.config import load_config

    picks = pick(found, list(args.services), args.all)
    if not picks:
        raise ArgumentError(
            "name the services to add (SERVICE or SERVICE:PORT), or --all",
            f"see 'kportforward discover -n {found.namespace}'",
        )
    config = load_config(getattr(args, "config", None))
    names = {s.name for s in config.forwards} | {p.name for p in config.rejected}
    ports = {s.local_port for s in config.forwards}
    try:
        with open(path, encoding="utf-8") as fh:
            more_names, more_ports = taken_names_and_ports(fh.read(), path)
    except OSError:
        more_names, more_ports = set(), set()
    context = getattr(args, "context", None)
    return plan_forwards(picks, found.namespace, context, names | more_names, ports | more_ports)


def main_discover(args: argparse.Namespace) -> int:
    """List the namespace's services and ports."""
    found = discover(args)
    print(as_json(found) if getattr(args, "json", False) else listing(found))
    return 0


def main(args: argparse.Namespace) -> int:
    """Append the picked services to the config file."""
    from kportforward.core.config import user_config_path

    if getattr(args, "command", None) == "discover":
        return main_discover(args)
    path = str(getattr(args, "config", None) or user_config_path())
    found = discover(args)
    forwards = plan(args, found, path)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    comment = (
        f"Added by kportforward add on {when} from namespace {found.namespace} "
        f"(context {found.context})"
    )
    if args.dry_run:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            text = ""
        sys.stdout.write(block_to_append(text, path, forwards, comment))
        print(f"(dry run: {path} not changed)", file=sys.stderr)
        return 0
    result = append_forwards(path, forwards, comment)
    verb = "Created" if result.created else "Appended to"
    print(f"{verb} {path}: {', '.join(result.names)}")
    sys.stdout.write(result.text)
    print("A running kportforward picks them up by itself (it watches the file).")
    return 0
