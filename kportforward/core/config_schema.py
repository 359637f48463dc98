"""The config schema: checks one file's node tree and turns it into typed, line-tagged fields.

Each file is checked on its own (types, ranges, formats); required keys are checked after merging
(see :mod:`kportforward.core.config`), because an override may legitimately set a single field.
Every error names the file, the line, the key path (``portForwards.api.localPort``) and a fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from kportforward.core.config_yaml import BOOL_TAG, NULL_TAG, line_of, mapping_items, scalar
from kportforward.core.durations import parse_duration
from kportforward.core.models import FORWARD_TYPES, ConfigWarning
from kportforward.errors import ConfigError

TARGET_KINDS: dict[str, str] = {
    alias: kind
    for kind, aliases in {
        "service": ("service", "services", "svc"),
        "deployment": (
            "deployment",
            "deployments",
            "deploy",
            "deployment.apps",
            "deployments.apps",
        ),
        "statefulset": (
            "statefulset",
            "statefulsets",
            "sts",
            "statefulset.apps",
            "statefulsets.apps",
        ),
        "replicaset": ("replicaset", "replicasets", "rs", "replicaset.apps", "replicasets.apps"),
        "pod": ("pod", "pods", "po"),
    }.items()
    for alias in aliases
}
"""Every target kind kubectl port-forward accepts, mapped to its canonical name."""

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PORT_NAME = re.compile(r"[a-z0-9]([a-z0-9]|-(?!-))*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MONITORING_INTERVAL_RANGE = (0.1, 86400.0)
REFRESH_RATE_RANGE = (0.05, 3600.0)


@dataclass(frozen=True, slots=True)
class Field:
    """One validated value and where it was written."""

    value: object
    path: str
    line: int


@dataclass(frozen=True, slots=True)
class RawForward:
    """One ``portForwards`` entry of one file: the fields it sets, already type-checked."""

    name: str
    path: str
    line: int
    fields: tuple[tuple[str, Field], ...]
    """``(snake_case_field, Field)`` pairs, in file order."""


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """Everything one file contributes, before merging."""

    path: str
    forwards: tuple[RawForward, ...] = ()
    settings: tuple[tuple[str, Field], ...] = ()
    warnings: tuple[ConfigWarning, ...] = ()


class _Ctx:
    """The file being checked and the warnings found so far."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.warnings: list[ConfigWarning] = []

    def fail(self, node: yaml.Node, key: str, message: str, hint: str) -> ConfigError:
        return ConfigError(message, hint, path=self.path, line=line_of(node), key=key)

    def warn(self, node: yaml.Node, key: str, message: str) -> None:
        self.warnings.append(ConfigWarning(message, self.path, line_of(node), key))

    def unknown(self, node: yaml.Node, keypath: str, name: str, known: tuple[str, ...]) -> None:
        suggestion = suggest(name, known)
        extra = f"; did you mean '{suggestion}'?" if suggestion else ""
        self.warn(node, keypath, f"unknown key '{name}' is ignored{extra}")


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (case, '_' and '-' ignored), or None."""

    def norm(s: str) -> str:
        return s.lower().replace("_", "").replace("-", "")

    by_norm = {norm(c): c for c in choices}
    if norm(word) in by_norm:
        return by_norm[norm(word)]
    close = difflib.get_close_matches(norm(word), list(by_norm), n=1, cutoff=0.6)
    return by_norm[close[0]] if close else None


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == NULL_TAG:
        return "nothing (null)"
    if node.tag == BOOL_TAG:
        return f"the boolean {node.value}"
    return repr(node.value)


def _text(ctx: _Ctx, node: yaml.Node, key: str, what: str) -> str:
    """A scalar written as text (numbers are taken as written); booleans and collections refused."""
    if not isinstance(node, yaml.ScalarNode) or node.tag in (BOOL_TAG, NULL_TAG):
        raise ctx.fail(node, key, f"expected {what}, got {_describe(node)}", "quote the value")
    text = str(node.value).strip()
    if not text:
        raise ctx.fail(
            node, key, f"expected {what}, got an empty string", "fill it in or remove the key"
        )
    if _CONTROL.search(text):
        raise ctx.fail(
            node, key, f"{what} contains a control character or line break", "write it on one line"
        )
    return text


def _port(ctx: _Ctx, node: yaml.Node, key: str) -> int:
    value = scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if isinstance(value, str) and value.strip().isdigit():
        raise ctx.fail(
            node, key, f"expected a port number, got the string {value!r}", "remove the quotes"
        )
    if not isinstance(value, int) or isinstance(value, bool):
        raise ctx.fail(
            node,
            key,
            f"expected a port number 1-65535, got {_describe(node)}",
            "write a whole number like 8080",
        )
    if not 1 <= value <= 65535:
        raise ctx.fail(node, key, f"port {value} is out of range", "use a port from 1 to 65535")
    return value


def _target_port(ctx: _Ctx, node: yaml.Node, key: str) -> int | str:
    if isinstance(node, yaml.ScalarNode) and isinstance(value := scalar(node), str):
        text = value.strip()
        if text.isdigit():
            return _port_number(ctx, node, key, int(text))
        if (
            len(text) <= 15
            and _PORT_NAME.fullmatch(text)
            and re.search("[a-z]", text)
            and not text.endswith("-")
        ):
            return text
        raise ctx.fail(
            node,
            key,
            f"{text!r} is neither a port number nor a port name",
            "use a number 1-65535 or a named port (lowercase letters, digits, '-', at most 15)",
        )
    return _port(ctx, node, key)


def _port_number(ctx: _Ctx, node: yaml.Node, key: str, value: int) -> int:
    if not 1 <= value <= 65535:
        raise ctx.fail(node, key, f"port {value} is out of range", "use a port from 1 to 65535")
    return value


def _target(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    text = _text(ctx, node, key, "a target like service/NAME")
    kinds = "service, deployment, statefulset, replicaset or pod"
    if "/" not in text:
        raise ctx.fail(
            node,
            key,
            f"target {text!r} has no kind",
            f"write KIND/NAME, e.g. service/{text} (KIND: {kinds})",
        )
    kind, _, name = text.partition("/")
    if kind.lower() not in TARGET_KINDS:
        guess = suggest(kind.lower(), list(TARGET_KINDS))
        extra = f"did you mean '{guess}'? " if guess else ""
        raise ctx.fail(node, key, f"unknown target kind {kind!r}", f"{extra}KIND is one of {kinds}")
    if not name:
        raise ctx.fail(node, key, f"target {text!r} has no name", f"write {kind}/NAME")
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise ctx.fail(
            node,
            key,
            f"{name!r} is not a valid Kubernetes object name",
            "use lowercase letters, digits, '-' and '.', starting and ending alphanumeric",
        )
    return text


def _namespace(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    text = _text(ctx, node, key, "a namespace name")
    if not _DNS_LABEL.fullmatch(text):
        raise ctx.fail(
            node,
            key,
            f"{text!r} is not a valid namespace name",
            "use at most 63 lowercase letters, digits and '-', starting and ending alphanumeric",
        )
    return text


def _type(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    text = _text(ctx, node, key, "a type").lower()
    if text not in FORWARD_TYPES:
        raise ctx.fail(
            node, key, f"unknown type {text!r}", f"use one of {', '.join(FORWARD_TYPES)}"
        )
    return text


def _disabled(ctx: _Ctx, node: yaml.Node, key: str) -> bool:
    if isinstance(node, yaml.ScalarNode) and node.tag == BOOL_TAG:
        return bool(scalar(node))
    raise ctx.fail(
        node,
        key,
        f"expected true or false, got {_describe(node)}",
        "write disabled: true (no quotes)",
    )


def _address(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    text = _text(ctx, node, key, "an IP address")
    if text.lower() == "localhost":
        return "localhost"
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise ctx.fail(
            node,
            key,
            f"{text!r} is not an IP address",
            "use 127.0.0.1, ::1, localhost or another IP literal",
        ) from None
    if not ip.is_loopback:
        ctx.warn(node, key, f"address {text} exposes the forward beyond this machine")
    return text


def _kubeconfig(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    text = os.path.expanduser(_text(ctx, node, key, "a kubeconfig path"))
    # Relative paths are relative to the config file that names them, not to the working directory.
    if not os.path.isabs(text):
        text = os.path.join(os.path.dirname(os.path.abspath(ctx.path)), text)
    return text


def _plain(what: str) -> Callable[[_Ctx, yaml.Node, str], str]:
    def check(ctx: _Ctx, node: yaml.Node, key: str) -> str:
        return _text(ctx, node, key, what)

    return check


def _duration(bounds: tuple[float, float]) -> Callable[[_Ctx, yaml.Node, str], float]:
    def check(ctx: _Ctx, node: yaml.Node, key: str) -> float:
        if not isinstance(node, yaml.ScalarNode):
            raise ctx.fail(
                node, key, f"expected a duration, got {_describe(node)}", "write e.g. 2s"
            )
        value = scalar(node)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ctx.fail(
                node, key, str(exc), "units: ms, s, m, h (e.g. 1m30s); a bare number is seconds"
            ) from None
        low, high = bounds
        if not low <= seconds <= high:
            raise ctx.fail(
                node, key, f"{value} is out of range", f"use a duration from {low:g}s to {high:g}s"
            )
        return seconds

    return check


# YAML key -> (ForwardSpec field, checker); None values mean "unset" for optional keys.
FORWARD_KEYS: dict[str, tuple[str, Callable[[_Ctx, yaml.Node, str], object]]] = {
    "target": ("target", _target),
    "targetPort": ("target_port", _target_port),
    "localPort": ("local_port", _port),
    "namespace": ("namespace", _namespace),
    "type": ("type", _type),
    "swaggerPath": ("swagger_path", _plain("a path")),
    "apiPath": ("api_path", _plain("a path")),
    "disabled": ("disabled", _disabled),
    "context": ("context", _plain("a kube context name")),
    "kubeconfig": ("kubeconfig", _kubeconfig),
    "address": ("address", _address),
    "group": ("group", _plain("a group name")),
}
REQUIRED_KEYS = ("target", "targetPort", "localPort")
SETTINGS_KEYS = ("portForwards", "monitoringInterval", "uiOptions")
UI_KEYS = ("refreshRate", "theme")
_NULL_MEANS_DEFAULT = {"type": "other", "address": "127.0.0.1", "disabled": False}

_monitoring = _duration(MONITORING_INTERVAL_RANGE)
_refresh = _duration(REFRESH_RATE_RANGE)
_theme = _plain("a theme name")


def parse_document(root: yaml.Node | None, path: str) -> ParsedSource:
    """Check one file's node tree; raise ConfigError on the first error, collect warnings."""
    ctx = _Ctx(path)
    if root is None:
        ctx.warnings.append(ConfigWarning("the file is empty; it adds nothing", path))
        return ParsedSource(path, warnings=tuple(ctx.warnings))
    if not isinstance(root, yaml.MappingNode):
        raise ctx.fail(
            root,
            "(top level)",
            f"expected a mapping of settings, got {_describe(root)}",
            "start the file with 'portForwards:' (see docs/CONFIG.md)",
        )
    settings: list[tuple[str, Field]] = []
    forwards: tuple[RawForward, ...] = ()
    for key, key_node, value in mapping_items(root, path, ""):
        if key == "portForwards":
            forwards = _forwards(ctx, value)
        elif key == "monitoringInterval":
            settings.append(
                ("monitoring_interval", Field(_monitoring(ctx, value, key), path, line_of(value)))
            )
        elif key == "uiOptions":
            settings.extend(_ui_options(ctx, value))
        elif not key.startswith("x-"):  # x-* keys hold anchors, as in docker-compose files
            ctx.unknown(key_node, key, key, SETTINGS_KEYS)
    return ParsedSource(path, forwards, tuple(settings), tuple(ctx.warnings))


def _ui_options(ctx: _Ctx, node: yaml.Node) -> list[tuple[str, Field]]:
    if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
        return []
    if not isinstance(node, yaml.MappingNode):
        raise ctx.fail(
            node,
            "uiOptions",
            f"expected a mapping, got {_describe(node)}",
            "write refreshRate: and theme: under it",
        )
    out: list[tuple[str, Field]] = []
    for key, key_node, value in mapping_items(node, ctx.path, "uiOptions"):
        keypath = f"uiOptions.{key}"
        if key == "refreshRate":
            out.append(
                ("refresh_rate", Field(_refresh(ctx, value, keypath), ctx.path, line_of(value)))
            )
        elif key == "theme":
            out.append(("theme", Field(_theme(ctx, value, keypath), ctx.path, line_of(value))))
        else:
            ctx.unknown(key_node, keypath, key, UI_KEYS)
    return out


def _forwards(ctx: _Ctx, node: yaml.Node) -> tuple[RawForward, ...]:
    if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
        return ()
    if not isinstance(node, yaml.MappingNode):
        raise ctx.fail(
            node,
            "portForwards",
            f"expected a mapping of forward names, got {_describe(node)}",
            "write 'portForwards:' then one indented 'name:' per forward",
        )
    out = []
    for name, name_node, entry in mapping_items(node, ctx.path, "portForwards"):
        keypath = f"portForwards.{name}"
        if name != name.strip() or _CONTROL.search(name) or len(name) > 253:
            raise ctx.fail(
                name_node,
                f"portForwards.{name!r}",
                "a forward name must be one line without surrounding spaces",
                "rename it",
            )
        out.append(RawForward(name, ctx.path, line_of(name_node), _entry(ctx, entry, keypath)))
    return tuple(out)


def _entry(ctx: _Ctx, node: yaml.Node, keypath: str) -> tuple[tuple[str, Field], ...]:
    if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
        return ()
    if not isinstance(node, yaml.MappingNode):
        raise ctx.fail(
            node,
            keypath,
            f"expected a mapping of settings, got {_describe(node)}",
            "indent target:, targetPort: and localPort: under the forward's name",
        )
    fields = []
    for key, key_node, value in mapping_items(node, ctx.path, keypath):
        spec = FORWARD_KEYS.get(key)
        if spec is None:
            ctx.unknown(key_node, f"{keypath}.{key}", key, tuple(FORWARD_KEYS))
            continue
        field_name, check = spec
        if isinstance(value, yaml.ScalarNode) and value.tag == NULL_TAG:
            if key in REQUIRED_KEYS:
                raise ctx.fail(
                    value, f"{keypath}.{key}", "a required key has no value", f"give {key} a value"
                )
            fields.append(
                (field_name, Field(_NULL_MEANS_DEFAULT.get(key), ctx.path, line_of(value)))
            )
            continue
        fields.append(
            (field_name, Field(check(ctx, value, f"{keypath}.{key}"), ctx.path, line_of(value)))
        )
    return tuple(fields)
