"""The config schema: checks one file's node tree and turns it into typed, line-tagged fields.

Each file is checked on its own (types, ranges, formats); required keys are checked after merging
(see :mod:`kportforward.core.config`), because an override may legitimately set a single field.
Every error names the file, the line, the key path (``portForwards.api.localPort``) and a fix.

Two kinds of error: a problem with the file as a whole (not a mapping, ``portForwards`` not a
mapping, a duplicate forward name, a bad setting) raises :class:`ConfigError`; a bad value inside
one forward is recorded on that forward only (:attr:`RawForward.errors`), so the others still run.
The value checkers live in :mod:`kportforward.core.config_fields`.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from kportforward.core import config_fields as fields
from kportforward.core.config_fields import (
    CONTROL,
    MONITORING_INTERVAL_RANGE,
    REFRESH_RATE_RANGE,
    TARGET_KINDS,
    Ctx,
    describe,
    suggest,
)
from kportforward.core.config_yaml import NULL_TAG, line_of
from kportforward.core.models import ConfigWarning
from kportforward.errors import ConfigError

__all__ = [
    "FORWARD_KEYS",
    "MONITORING_INTERVAL_RANGE",
    "REFRESH_RATE_RANGE",
    "REQUIRED_KEYS",
    "TARGET_KINDS",
    "Field",
    "ParsedSource",
    "RawForward",
    "parse_document",
    "suggest",
]


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
    errors: tuple[tuple[str, ConfigError], ...] = ()
    """``(snake_case_field, error)`` for values that failed; ``""`` for the entry as a whole.
    A later source that sets the same field validly overrides the error."""


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """Everything one file contributes, before merging."""

    path: str
    forwards: tuple[RawForward, ...] = ()
    settings: tuple[tuple[str, Field], ...] = ()
    warnings: tuple[ConfigWarning, ...] = ()
    config_url: Field | None = None
    """``configUrl``: remote defaults merged under this file (``""``: embedded only)."""


Checker = Callable[[Ctx, yaml.Node, str], object]

# YAML key -> (ForwardSpec field, checker); None values mean "unset" for optional keys.
FORWARD_KEYS: dict[str, tuple[str, Checker]] = {
    "target": ("target", fields.target),
    "targetPort": ("target_port", fields.target_port),
    "localPort": ("local_port", fields.port),
    "namespace": ("namespace", fields.namespace),
    "type": ("type", fields.forward_type),
    "swaggerPath": ("swagger_path", fields.plain("a path")),
    "apiPath": ("api_path", fields.plain("a path")),
    "disabled": ("disabled", fields.disabled),
    "context": ("context", fields.plain("a kube context name")),
    "kubeconfig": ("kubeconfig", fields.kubeconfig),
    "address": ("address", fields.address),
    "group": ("group", fields.plain("a group name")),
    "frontDoor": ("front_door", fields.flag),
    "holdTimeout": ("hold_timeout", fields.duration(fields.HOLD_TIMEOUT_RANGE)),
}
REQUIRED_KEYS = ("target", "targetPort", "localPort")
SETTINGS_KEYS = (
    "portForwards", "monitoringInterval", "keepAlive", "frontDoor", "holdTimeout", "uiOptions",
    "configUrl",
)  # fmt: skip
UI_KEYS = ("refreshRate", "theme")
_NULL_MEANS_DEFAULT = {"type": "other", "address": "127.0.0.1", "disabled": False}

_monitoring = fields.duration(MONITORING_INTERVAL_RANGE)
# Global settings whose value is one checker: YAML key -> (Settings field, checker).
_SETTINGS: dict[str, tuple[str, Checker]] = {
    "monitoringInterval": ("monitoring_interval", _monitoring),
    "keepAlive": ("keep_alive", fields.duration(fields.KEEP_ALIVE_RANGE)),
    "frontDoor": ("front_door", fields.flag),
    "holdTimeout": ("hold_timeout", fields.duration(fields.HOLD_TIMEOUT_RANGE)),
}
_refresh = fields.duration(REFRESH_RATE_RANGE)
_theme = fields.plain("a theme name")


def parse_document(root: yaml.Node | None, path: str) -> ParsedSource:
    """Check one file's node tree: ConfigError for a whole-file problem, per-forward errors kept."""
    ctx = Ctx(path)
    if root is None:
        ctx.warn(None, None, "the file is empty; it adds nothing")
        return ParsedSource(path, warnings=ctx.finish())
    if not isinstance(root, yaml.MappingNode):
        raise ctx.fail(
            root,
            "(top level)",
            f"expected a mapping of settings, got {describe(root)}",
            "start the file with 'portForwards:' (see docs/CONFIG.md)",
        )
    settings: list[tuple[str, Field]] = []
    forwards: tuple[RawForward, ...] = ()
    config_url: Field | None = None
    for key, key_node, value in ctx.mappings.items(root, ""):
        if key == "portForwards":
            forwards = _forwards(ctx, value)
        elif key in _SETTINGS:
            name, check = _SETTINGS[key]
            settings.append((name, Field(check(ctx, value, key), path, line_of(value))))
        elif key == "uiOptions":
            settings.extend(_ui_options(ctx, value))
        elif key == "configUrl":
            config_url = Field(config_url_value(ctx, value, key), path, line_of(value))
        elif not key.startswith("x-"):  # x-* keys hold anchors, as in docker-compose files
            ctx.unknown(key_node, key, key, SETTINGS_KEYS)
    return ParsedSource(path, forwards, tuple(settings), ctx.finish(), config_url)


def check_url(url: str) -> str | None:
    """Why ``url`` cannot serve remote defaults (None when it can): https, or http on loopback."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return None
        return "plain http is allowed only for 127.0.0.1/localhost; use https"
    return "expected an https:// URL"


def config_url_value(ctx: Ctx, node: yaml.Node, key: str) -> str:
    """``configUrl``: an https URL (http only for loopback), or ``""`` for embedded only."""
    if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
        return ""
    if isinstance(node, yaml.ScalarNode) and not str(node.value).strip():
        return ""
    url = fields.text(ctx, node, key, "a URL")
    problem = check_url(url)
    if problem:
        raise ctx.fail(node, key, f"{fields.short(url)}: {problem}", "write configUrl: https://…")
    return url


def _ui_options(ctx: Ctx, node: yaml.Node) -> list[tuple[str, Field]]:
    if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
        return []
    if not isinstance(node, yaml.MappingNode):
        raise ctx.fail(
            node,
            "uiOptions",
            f"expected a mapping, got {describe(node)}",
            "write refreshRate: and theme: under it",
        )
    out: list[tuple[str, Field]] = []
    for key, key_node, value in ctx.mappings.items(node, "uiOptions"):
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


def _forwards(ctx: Ctx, node: yaml.Node) -> tuple[RawForward, ...]:
    if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
        return ()
    if not isinstance(node, yaml.MappingNode):
        raise ctx.fail(
            node,
            "portForwards",
            f"expected a mapping of forward names, got {describe(node)}",
            "write 'portForwards:' then one indented 'name:' per forward",
        )
    out = []
    for name, name_node, entry in ctx.mappings.items(node, "portForwards"):
        if name != name.strip() or CONTROL.search(name) or len(name) > 253:
            raise ctx.fail(
                name_node,
                f"portForwards.{fields.short(name, 60)}",
                "a forward name must be one line without surrounding spaces, at most 253 long",
                "rename it",
            )
        keypath = f"portForwards.{name}"
        found, errors = _entry(ctx, entry, keypath)
        out.append(RawForward(name, ctx.path, line_of(name_node), found, errors))
    return tuple(out)


def _entry(
    ctx: Ctx, node: yaml.Node, keypath: str
) -> tuple[tuple[tuple[str, Field], ...], tuple[tuple[str, ConfigError], ...]]:
    if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
        return (), ()
    if not isinstance(node, yaml.MappingNode):
        error = ctx.fail(
            node,
            keypath,
            f"expected a mapping of settings, got {describe(node)}",
            "indent target:, targetPort: and localPort: under the forward's name",
        )
        return (), (("", error),)
    try:
        items = ctx.mappings.items(node, keypath)
    except ConfigError as exc:  # a duplicate key, a bad merge: this forward only
        if ctx.mappings.exhausted:
            raise  # the document as a whole is too big once merged
        return (), (("", exc),)
    found: list[tuple[str, Field]] = []
    errors: list[tuple[str, ConfigError]] = []
    for key, key_node, value in items:
        spec = FORWARD_KEYS.get(key)
        if spec is None:
            ctx.unknown(key_node, f"{keypath}.{key}", key, tuple(FORWARD_KEYS))
            continue
        field_name, check = spec
        if isinstance(value, yaml.ScalarNode) and value.tag == NULL_TAG:
            if key in REQUIRED_KEYS:
                errors.append(
                    (
                        field_name,
                        ctx.fail(
                            value,
                            f"{keypath}.{key}",
                            "a required key has no value",
                            f"give {key} a value",
                        ),
                    )
                )
                continue
            found.append(
                (field_name, Field(_NULL_MEANS_DEFAULT.get(key), ctx.path, line_of(value)))
            )
            continue
        try:
            checked = check(ctx, value, f"{keypath}.{key}")
        except ConfigError as exc:
            errors.append((field_name, exc))
            continue
        found.append((field_name, Field(checked, ctx.path, line_of(value))))
    return tuple(found), tuple(errors)
