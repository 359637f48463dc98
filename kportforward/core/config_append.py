"""Adding forwards to the user's config file by appending a commented block — never a rewrite.

Every byte already in the file stays where it is: the new entries are written with the file opened
for appending, after checking that the file did not change since it was read and that the result
still loads. YAML refuses a second ``portForwards`` key, so entries can only be appended when
``portForwards`` is the file's last top-level key in block style (or absent); otherwise the
error says what to change by hand. Pure apart from the one file it reads and appends to.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import yaml

from kportforward.core.config import merge, parse_config_text
from kportforward.core.config_yaml import compose, line_of
from kportforward.errors import ConfigError

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
WEB_PORTS = frozenset({80, 443, 3000, 5000, 8000, 8080, 8443, 8888, 9000})


@dataclass(frozen=True, slots=True)
class NewForward:
    """One forward to add, in the config's own terms."""

    name: str
    target: str
    target_port: int | str
    local_port: int
    namespace: str
    type: str = "other"
    context: str | None = None


def guess_type(port: int, name: str = "", app_protocol: str = "") -> str:
    """``rpc`` for gRPC-looking ports, ``web`` for HTTP-looking ones, else ``other``."""
    words = f"{name} {app_protocol}".lower()
    if "grpc" in words or "h2c" in words:
        return "rpc"
    if "http" in words or "web" in words or port in WEB_PORTS:
        return "web"
    return "other"


def pick_local_port(port: int, taken: set[int]) -> int:
    """The service's own port when unprivileged and free in the config, else a nearby one.

    Privileged ports move up by 8000 (80 → 8080, 443 → 8443), as people usually do by hand.
    """
    candidate = port + 8000 if port < 1024 else port
    while candidate in taken or candidate > 65535:
        candidate = 10000 if candidate >= 65535 else candidate + 1
    taken.add(candidate)
    return candidate


def unique_name(wanted: str, taken: set[str]) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3`` … when the config already has that name."""
    name, n = wanted, 2
    while name in taken:
        name, n = f"{wanted}-{n}", n + 1
    taken.add(name)
    return name


def _scalar(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def render_entries(forwards: Sequence[NewForward], indent: int, step: int, comment: str) -> str:
    """The YAML lines for ``forwards`` as entries of a block mapping at column ``indent``."""
    pad, inner = " " * indent, " " * (indent + step)
    lines = [f"{pad}# {line}" if line else f"{pad}#" for line in comment.splitlines()]
    for f in forwards:
        lines.append(f"{pad}{_scalar(f.name)}:")
        fields: list[tuple[str, object]] = [
            ("target", f.target),
            ("targetPort", f.target_port),
            ("localPort", f.local_port),
            ("namespace", f.namespace),
            ("type", f.type),
        ]
        if f.context:
            fields.append(("context", f.context))
        lines += [f"{inner}{key}: {_scalar(value)}" for key, value in fields]
    return "\n".join(lines) + "\n"


def block_to_append(text: str, path: str, forwards: Sequence[NewForward], comment: str) -> str:
    """The exact text to append to ``text`` (the file's content) to add ``forwards``.

    Raises ConfigError (naming the line) when the file's shape does not allow appending.
    """
    root = compose(text, path)
    lead = "" if not text or text.endswith("\n") else "\n"
    if root is None:
        return lead + "portForwards:\n" + render_entries(forwards, 2, 2, comment)
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise ConfigError(
            "the file is not a block mapping (key: value lines), so nothing can be appended",
            "add the forwards by hand",
            path=path,
            line=line_of(root),
        )
    keys = [(k.value, k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode)]
    found = [(i, k, v) for i, (name, k, v) in enumerate(keys) if name == "portForwards"]
    if not found:
        return lead + "portForwards:\n" + render_entries(forwards, 2, 2, comment)
    index, key_node, value = found[0]
    if index != len(root.value) - 1:
        raise ConfigError(
            "portForwards is not the last top-level key, so entries cannot be appended to it",
            "move the portForwards block to the end of the file (or add the forwards by hand)",
            path=path,
            line=line_of(key_node),
            key="portForwards",
        )
    if isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null") and not value.value:
        return lead + render_entries(forwards, 2, 2, comment)
    if not isinstance(value, yaml.MappingNode) or value.flow_style:
        raise ConfigError(
            "portForwards is written in flow style ({ … }), so entries cannot be appended",
            "write it as 'portForwards:' followed by indented entries",
            path=path,
            line=line_of(value),
            key="portForwards",
        )
    first_key, first_value = value.value[0]
    indent = first_key.start_mark.column
    step = 2
    if (
        isinstance(first_value, yaml.MappingNode)
        and first_value.value
        and not first_value.flow_style
    ):
        step = max(1, first_value.value[0][0].start_mark.column - indent)
    return lead + render_entries(forwards, indent, step, comment)


@dataclass(frozen=True, slots=True)
class Appended:
    """What ``append_forwards`` wrote."""

    path: str
    text: str
    """The bytes appended (as text)."""
    names: tuple[str, ...]
    created: bool


def append_forwards(path: str, forwards: Sequence[NewForward], comment: str) -> Appended:
    """Append ``forwards`` to the config file at ``path`` (created when missing).

    The new content is checked to load before anything is written; the write is one append, and
    it is refused if the file changed since it was read. Raises ConfigError (exit 2).
    """
    if not forwards:
        raise ConfigError("nothing to add", "pick at least one service port")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from None
    created = not os.path.exists(path)
    text = data.decode("utf-8")
    block = block_to_append(text, path, forwards, comment)
    merged = merge([parse_config_text(text + block, path)])
    known = {s.name for s in merged.forwards} | {p.name for p in merged.rejected}
    missing = [f.name for f in forwards if f.name not in known]
    if missing:
        raise ConfigError(
            f"the appended entries would not load ({', '.join(missing)})",
            "add the forwards by hand",
            path=path,
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        with open(path, "ab") as fh:
            if fh.tell() != len(data):
                raise ConfigError(
                    "the file changed while the forwards were being added",
                    "try again",
                    path=path,
                )
            fh.write(block.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise ConfigError(f"cannot append: {exc.strerror}", path=path) from None
    return Appended(path, block, tuple(f.name for f in forwards), created)


def taken_names_and_ports(text: str, path: str) -> tuple[set[str], set[int]]:
    """Names and local ports the file already uses (empty when it does not parse)."""
    try:
        merged = merge([parse_config_text(text, path)])
    except ConfigError:
        return set(), set()
    names = {s.name for s in merged.forwards} | {p.name for p in merged.rejected}
    return names, {s.local_port for s in merged.forwards}


def plan_forwards(
    picks: Iterable[tuple[str, int, str, str]],
    namespace: str,
    context: str | None,
    taken_names: set[str],
    taken_ports: set[int],
) -> list[NewForward]:
    """Config entries for picked ``(service, port, port_name, app_protocol)`` tuples.

    A service picked with several ports gets one forward per port, named after the port.
    """
    picks = list(picks)
    per_service: dict[str, int] = {}
    for service, *_ in picks:
        per_service[service] = per_service.get(service, 0) + 1
    out = []
    for service, port, port_name, app_protocol in picks:
        wanted = service if per_service[service] == 1 else f"{service}-{port_name or port}"
        out.append(
            NewForward(
                name=unique_name(wanted, taken_names),
                target=f"service/{service}",
                target_port=port,
                local_port=pick_local_port(port, taken_ports),
                namespace=namespace,
                type=guess_type(port, port_name, app_protocol),
                context=context,
            )
        )
    return out
