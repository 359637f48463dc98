"""Checkers for single config values: each takes a YAML node and returns the typed value.

Lenient where the Go kportforward is (it unmarshals into plain structs and validates nothing):
any ``type`` string is kept, ``namespace: ""`` means the context's namespace, a bare
``target: NAME`` is ``pod/NAME`` (kubectl's rule), durations take every ``time.ParseDuration``
form and positive values outside our range are clamped with a warning. Strict only where a value
cannot work; then a :class:`~kportforward.errors.ConfigError` names the file, line, key and a fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable

import yaml

from kportforward.core.config_yaml import (
    BOOL_TAG,
    NULL_TAG,
    BadScalar,
    Mappings,
    line_of,
    scalar,
    short,
)
from kportforward.core.durations import format_setting, is_bare_number, parse_duration
from kportforward.core.models import FORWARD_TYPES, ConfigWarning
from kportforward.errors import ConfigError

_KIND_ALIASES: dict[str, tuple[str, ...]] = {
    "service": ("services", "svc"),
    "deployment": ("deployments", "deploy"),
    "statefulset": ("statefulsets", "sts"),
    "replicaset": ("replicasets", "rs"),
    "daemonset": ("daemonsets", "ds"),
    "job": ("jobs",),
    "replicationcontroller": ("replicationcontrollers", "rc"),
    "pod": ("pods", "po"),
}
_KIND_GROUPS = {
    "deployment": "apps",
    "statefulset": "apps",
    "replicaset": "apps",
    "daemonset": "apps",
    "job": "batch",
}
TARGET_KINDS: dict[str, str] = {}
"""Every target kind kubectl port-forward accepts (its SelectorsForObject), by every alias."""
for _kind, _aliases in _KIND_ALIASES.items():
    for _alias in (_kind, *_aliases):
        TARGET_KINDS[_alias] = _kind
        if _kind in _KIND_GROUPS and _alias not in ("deploy", "sts", "rs", "ds"):
            TARGET_KINDS[f"{_alias}.{_KIND_GROUPS[_kind]}"] = _kind

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PORT_NAME = re.compile(r"[a-z0-9]([a-z0-9]|-(?!-))*")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MONITORING_INTERVAL_RANGE = (0.1, 86400.0)
REFRESH_RATE_RANGE = (0.05, 3600.0)
KEEP_ALIVE_RANGE = (0.1, 86400.0)
HOLD_TIMEOUT_RANGE = (0.1, 3600.0)
MAX_WARNINGS = 20
"""Warnings kept per file; the rest are counted in one "and N more" warning."""
MAX_SUGGESTIONS = 10
"""Unknown keys that get a did-you-mean lookup per file (the lookup is the expensive part)."""


class Ctx:
    """The file being checked: its merge reader and its (bounded) warnings."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mappings = Mappings(path)
        self.warnings: list[ConfigWarning] = []
        self.hidden = 0
        self.suggestions = MAX_SUGGESTIONS

    def fail(self, node: yaml.Node, key: str, message: str, hint: str) -> ConfigError:
        """A ConfigError at ``node``'s line for ``key``."""
        return ConfigError(message, hint, path=self.path, line=line_of(node), key=key)

    def warn(self, node: yaml.Node | None, key: str | None, message: str) -> None:
        """Record a warning; beyond :data:`MAX_WARNINGS` only count it."""
        if len(self.warnings) >= MAX_WARNINGS:
            self.hidden += 1
            return
        line = None if node is None else line_of(node)
        self.warnings.append(ConfigWarning(message, self.path, line, key))

    def unknown(self, node: yaml.Node, keypath: str, name: str, known: tuple[str, ...]) -> None:
        """Warn about an unknown key, with a suggestion for the first few."""
        if len(self.warnings) >= MAX_WARNINGS:
            self.hidden += 1
            return
        extra = ""
        if self.suggestions > 0:
            self.suggestions -= 1
            suggestion = suggest(name, known) if len(name) <= 64 else None
            extra = f"; did you mean '{suggestion}'?" if suggestion else ""
        self.warn(node, _clip(keypath), f"unknown key {short(name)} is ignored{extra}")

    def finish(self) -> tuple[ConfigWarning, ...]:
        """The warnings, with one summary line for those not kept."""
        if self.hidden:
            more = f"and {self.hidden} more warning{'s' if self.hidden > 1 else ''} (not shown)"
            return (*self.warnings, ConfigWarning(more, self.path))
        return tuple(self.warnings)

    def value(self, node: yaml.ScalarNode, key: str) -> object:
        """:func:`scalar`, with its errors as this file's ConfigError."""
        try:
            return scalar(node)
        except BadScalar as exc:
            raise self.fail(node, key, exc.message, exc.hint) from None


def _clip(keypath: str) -> str:
    return keypath if len(keypath) <= 120 else f"{keypath[:100]}…"


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (case, '_' and '-' ignored), or None."""

    def norm(s: str) -> str:
        return s.lower().replace("_", "").replace("-", "")

    by_norm = {norm(c): c for c in choices}
    if norm(word) in by_norm:
        return by_norm[norm(word)]
    close = difflib.get_close_matches(norm(word), list(by_norm), n=1, cutoff=0.6)
    return by_norm[close[0]] if close else None


def describe(node: yaml.Node) -> str:
    """How a value reads in a message: ``a mapping``, ``the boolean yes``, ``'abc'``."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == NULL_TAG:
        return "nothing (null)"
    if node.tag == BOOL_TAG:
        return f"the boolean {short(str(node.value))}"
    return short(str(node.value))


def text(ctx: Ctx, node: yaml.Node, key: str, what: str) -> str:
    """A scalar written as text (numbers are taken as written); booleans and collections refused."""
    if not isinstance(node, yaml.ScalarNode) or node.tag in (BOOL_TAG, NULL_TAG):
        raise ctx.fail(node, key, f"expected {what}, got {describe(node)}", "quote the value")
    value = str(node.value).strip()
    if not value:
        raise ctx.fail(
            node, key, f"expected {what}, got an empty string", "fill it in or remove the key"
        )
    if CONTROL.search(value):
        raise ctx.fail(
            node, key, f"{what} contains a control character or line break", "write it on one line"
        )
    return value


def port(ctx: Ctx, node: yaml.Node, key: str) -> int:
    """A port number 1-65535 written as a YAML integer."""
    value = ctx.value(node, key) if isinstance(node, yaml.ScalarNode) else None
    if isinstance(value, str) and _decimal(value.strip()):
        raise ctx.fail(
            node, key, f"expected a port number, got the string {short(value)}", "remove the quotes"
        )
    if not isinstance(value, int) or isinstance(value, bool):
        raise ctx.fail(
            node,
            key,
            f"expected a port number 1-65535, got {describe(node)}",
            "write a whole number like 8080",
        )
    return _port_number(ctx, node, key, value)


def _decimal(value: str) -> bool:
    # str.isdigit() accepts '²' and other digits int() refuses; ports are ASCII.
    return value.isascii() and value.isdigit()


def target_port(ctx: Ctx, node: yaml.Node, key: str) -> int | str:
    """A remote port: a number (also as a quoted string) or a named container/service port."""
    if isinstance(node, yaml.ScalarNode) and isinstance(value := ctx.value(node, key), str):
        stripped = value.strip()
        if _decimal(stripped):
            if len(stripped) > 5:
                raise ctx.fail(
                    node, key, f"port {short(stripped)} is out of range", "use 1 to 65535"
                )
            return _port_number(ctx, node, key, int(stripped))
        if (
            len(stripped) <= 15
            and _PORT_NAME.fullmatch(stripped)
            and re.search("[a-z]", stripped)
            and not stripped.endswith("-")
        ):
            return stripped
        raise ctx.fail(
            node,
            key,
            f"{short(stripped)} is neither a port number nor a port name",
            "use a number 1-65535 or a named port (lowercase letters, digits, '-', at most 15)",
        )
    return port(ctx, node, key)


def _port_number(ctx: Ctx, node: yaml.Node, key: str, value: int) -> int:
    if not 1 <= value <= 65535:
        raise ctx.fail(node, key, f"port {value} is out of range", "use a port from 1 to 65535")
    return value


KINDS_TEXT = (
    "service, deployment, statefulset, replicaset, daemonset, job, replicationcontroller, pod"
)


def target(ctx: Ctx, node: yaml.Node, key: str) -> str:
    """``KIND/NAME``; a bare ``NAME`` is ``pod/NAME`` as kubectl reads it."""
    value = text(ctx, node, key, "a target like service/NAME")
    if "/" not in value:
        _object_name(ctx, node, key, value)
        return f"pod/{value}"
    kind, _, name = value.partition("/")
    if kind.lower() not in TARGET_KINDS:
        guess = suggest(kind.lower(), list(TARGET_KINDS)) if len(kind) <= 64 else None
        extra = f"did you mean '{guess}'? " if guess else ""
        raise ctx.fail(
            node, key, f"unknown target kind {short(kind)}", f"{extra}KIND is one of {KINDS_TEXT}"
        )
    if not name:
        raise ctx.fail(node, key, f"target {short(value)} has no name", f"write {kind}/NAME")
    _object_name(ctx, node, key, name)
    return value


def _object_name(ctx: Ctx, node: yaml.Node, key: str, name: str) -> None:
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise ctx.fail(
            node,
            key,
            f"{short(name)} is not a valid Kubernetes object name",
            "use lowercase letters, digits, '-' and '.', starting and ending alphanumeric",
        )


def namespace(ctx: Ctx, node: yaml.Node, key: str) -> str | None:
    """A namespace name; ``""`` means the context's namespace (None), as in the Go tool."""
    if isinstance(node, yaml.ScalarNode) and node.tag != BOOL_TAG and not str(node.value).strip():
        return None
    value = text(ctx, node, key, "a namespace name")
    if not _DNS_LABEL.fullmatch(value):
        raise ctx.fail(
            node,
            key,
            f"{short(value)} is not a valid namespace name",
            "use at most 63 lowercase letters, digits and '-', starting and ending alphanumeric",
        )
    return value


def forward_type(ctx: Ctx, node: yaml.Node, key: str) -> str:
    """rest, rpc, web or other (any case); any other text is kept as written, with a warning."""
    if isinstance(node, yaml.ScalarNode) and node.tag != BOOL_TAG and not str(node.value).strip():
        ctx.warn(node, key, "an empty type is shown as written and treated as 'other'")
        return ""
    value = text(ctx, node, key, "a type")
    if value.lower() in FORWARD_TYPES:
        return value.lower()
    guess = suggest(value, FORWARD_TYPES) if len(value) <= 64 else None
    if guess is None and "grpc" in value.lower():
        guess = "rpc"
    extra = f"; did you mean '{guess}'?" if guess else ""
    ctx.warn(
        node,
        key,
        f"unknown type {short(value)} is shown as written and treated as 'other' (no http URL)"
        f"{extra}",
    )
    return value


def flag(ctx: Ctx, node: yaml.Node, key: str) -> bool:
    """``true`` or ``false`` written as a YAML boolean (``disabled``, ``frontDoor``)."""
    if isinstance(node, yaml.ScalarNode) and node.tag == BOOL_TAG:
        return bool(ctx.value(node, key))
    name = key.rsplit(".", 1)[-1]
    raise ctx.fail(
        node,
        key,
        f"expected true or false, got {describe(node)}",
        f"write {name}: true or {name}: false (no quotes)",
    )


disabled = flag


def address(ctx: Ctx, node: yaml.Node, key: str) -> str:
    """An IP literal or ``localhost``; a non-loopback one gets a warning."""
    value = text(ctx, node, key, "an IP address")
    if value.lower() == "localhost":
        return "localhost"
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ctx.fail(
            node,
            key,
            f"{short(value)} is not an IP address",
            "use 127.0.0.1, ::1, localhost or another IP literal",
        ) from None
    if not ip.is_loopback:
        ctx.warn(node, key, f"address {value} exposes the forward beyond this machine")
    return value


def kubeconfig(ctx: Ctx, node: yaml.Node, key: str) -> str:
    """A path; relative paths are relative to the config file that names them."""
    value = os.path.expanduser(text(ctx, node, key, "a kubeconfig path"))
    if not os.path.isabs(value):
        value = os.path.join(os.path.dirname(os.path.abspath(ctx.path)), value)
    return value


def plain(what: str) -> Callable[[Ctx, yaml.Node, str], str]:
    """A checker for one line of text described as ``what`` in messages."""

    def check(ctx: Ctx, node: yaml.Node, key: str) -> str:
        return text(ctx, node, key, what)

    return check


def duration(bounds: tuple[float, float]) -> Callable[[Ctx, yaml.Node, str], float]:
    """A checker for a duration within ``bounds`` seconds; outside them it is clamped, with a
    warning that names the value used. Zero and negative durations are errors."""
    low, high = bounds

    def check(ctx: Ctx, node: yaml.Node, key: str) -> float:
        if not isinstance(node, yaml.ScalarNode):
            raise ctx.fail(node, key, f"expected a duration, got {describe(node)}", "write e.g. 2s")
        value = ctx.value(node, key)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ctx.fail(
                node, key, str(exc), "units: ms, s, m, h (e.g. 1m30s); a bare number is seconds"
            ) from None
        if seconds == 0:
            raise ctx.fail(
                node,
                key,
                "a duration must be longer than zero",
                f"use a duration from {format_setting(low)} to {format_setting(high)}",
            )
        if is_bare_number(value):
            ctx.warn(
                node,
                key,
                f"{short(str(node.value))} has no unit and is read as {format_setting(seconds)}; "
                "the Go kportforward (yaml.v3) refuses a number without a unit here: "
                f"write {format_setting(seconds)}",
            )
        clamped = min(max(seconds, low), high)
        if clamped != seconds:
            limit = "shortest" if clamped == low else "longest"
            ctx.warn(
                node,
                key,
                f"{short(str(node.value))} is outside {format_setting(low)}-"
                f"{format_setting(high)}; using {format_setting(clamped)}, the {limit} allowed",
            )
        return clamped

    return check
