"""Reading kubeconfig YAML and checking its shape, with messages that name file, line and key.

Only types and key paths reach a message, never values: the line a YAML error points at, or a
value of the wrong type, could be a token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kportforward.errors import KubeconfigError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

FIX_HINT = "fix the file, or point --kubeconfig / KUBECONFIG at a valid kubeconfig"


def describe(value: Any) -> str:
    """What kind of value this is (``a list``, ``a string`` …), for a message."""
    # Name the type only: the value itself might be a credential.
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__


def line_of(text: str, keys: Sequence[str | int]) -> int | None:
    """The 1-based line of ``keys`` in ``text`` (composed again only on the error path)."""
    try:
        node: Any = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    line = None
    for key in keys:
        if node is None:
            break
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            nxt = None
            for k, v in node.value:
                if getattr(k, "value", None) == key:
                    line = k.start_mark.line + 1
                    nxt = v
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


class Shape:
    """Checks one file's structure and builds error messages with file, line and key path."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, keys: Sequence[str | int], message: str) -> KubeconfigError:
        """An error for ``keys`` (e.g. ``contexts[1].context``) at its line in the file."""
        key = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
        line = line_of(self.text, keys)
        where = f"{self.path}:{line}" if line else str(self.path)
        return KubeconfigError(f"{where}: {key}: {message}", FIX_HINT)

    def string(self, obj: Mapping[str, Any], keys: list[str | int], required: bool) -> str:
        """The string at ``keys`` (its last key looked up in ``obj``); empty when absent."""
        value = obj.get(str(keys[-1]))
        if value is None or value == "":
            if required:
                raise self.fail(keys, "is missing")
            return ""
        if not isinstance(value, str):
            raise self.fail(keys, f"must be a string, found {describe(value)}")
        return value

    def entries(self, doc: Mapping[str, Any], section: str, inner: str) -> list[tuple[str, dict]]:
        """``section`` as (name, inner mapping) pairs, shape-checked."""
        items = doc.get(section)
        if items is None:
            return []
        if not isinstance(items, list):
            raise self.fail([section], f"must be a list, found {describe(items)}")
        out: list[tuple[str, dict]] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail([section, i], f"must be a mapping, found {describe(item)}")
            name = self.string(item, [section, i, "name"], required=True)
            body = item.get(inner)
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise self.fail([section, i, inner], f"must be a mapping, found {describe(body)}")
            out.append((name, body))
        return out


def user_auth(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """How a user entry authenticates, and its exec plugin command if any."""
    # Same precedence as client-go: a token beats exec, exec beats basic auth.
    if body.get("token") or body.get("tokenFile"):
        return "token", None
    if body.get("client-certificate-data") or body.get("client-certificate"):
        return "client-cert", None
    exec_cfg = body.get("exec")
    if isinstance(exec_cfg, dict):
        cmd = exec_cfg.get("command")
        return "exec", cmd if isinstance(cmd, str) else None
    if body.get("auth-provider"):
        return "auth-provider", None
    if body.get("username"):
        return "basic", None
    return "none", None


def read_text(path: Path, must_exist: bool) -> str | None:
    """The file as text; None if it is missing and need not exist. Raises KubeconfigError."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        if must_exist:
            raise KubeconfigError(
                f"kubeconfig {path} does not exist",
                "check the path given to --kubeconfig or the forward's 'kubeconfig'",
            ) from None
        return None
    except IsADirectoryError:
        raise KubeconfigError(
            f"kubeconfig {path} is a directory, not a file", "point it at the kubeconfig file"
        ) from None
    except OSError as exc:
        raise KubeconfigError(
            f"cannot read kubeconfig {path}: {exc.strerror or type(exc).__name__}",
            "check the file's permissions",
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KubeconfigError(f"kubeconfig {path} is not text (not UTF-8)", FIX_HINT) from None


def parse_document(path: Path, text: str) -> dict[str, Any]:
    """The YAML document as a mapping (empty for an empty file). Raises KubeconfigError."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # a safe loader (C if available)
    except yaml.MarkedYAMLError as exc:
        # Only the problem and the position: the offending line could hold a token.
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        where = f"{path}:{line}" if line else str(path)
        raise KubeconfigError(
            f"{where}: kubeconfig is not valid YAML ({exc.problem or 'parse error'})", FIX_HINT
        ) from None
    except yaml.YAMLError:
        raise KubeconfigError(f"{path}: kubeconfig is not valid YAML", FIX_HINT) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(
            f"{path}: kubeconfig must be a mapping (apiVersion, clusters, contexts, users), "
            f"found {describe(doc)}",
            FIX_HINT,
        )
    return doc
