"""Reading one config file safely into a YAML node tree that remembers line numbers.

Everything here turns a foreign failure (OSError, UnicodeDecodeError, yaml.YAMLError) into a
one-line :class:`~kportforward.errors.ConfigError` naming the file and, when known, the line.
The node tree (not plain Python objects) is kept so the schema can point at the exact line of a bad
value. Duplicate keys are errors (PyYAML silently keeps the last one); ``<<`` merge keys and
anchors work as YAML 1.1 defines them.
"""

from __future__ import annotations

import os
import stat

import yaml

from kportforward.errors import ConfigError

MAX_CONFIG_BYTES = 10 * 1024 * 1024
"""Config files larger than this are refused: a real one is a few kilobytes."""
MAX_DEPTH = 1000
"""Deeper YAML nesting is refused (libyaml's composer recurses in C and would crash)."""

# libyaml's composer is an order of magnitude faster; its nodes keep marks (line/column) too.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_constructor = yaml.constructor.SafeConstructor()

MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"

_SYNTAX_HINT = "fix the YAML: indent with spaces, put ': ' after every key, quote odd values"


def line_of(node: yaml.Node) -> int:
    """1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def read_text(path: str) -> str:
    """The file's text, or a ConfigError saying why it cannot be used as a config file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError("file not found", "create it, or fix the path", path=path) from None
    except NotADirectoryError:
        raise ConfigError(
            "file not found (a parent is not a directory)", "fix the path", path=path
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", "check the path", path=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(
            "is a directory, not a file", "point at the YAML file inside it", path=path
        )
    # Pipes and terminals could block forever; /dev/null is a handy "no extra config".
    if not stat.S_ISREG(st.st_mode) and path != os.devnull:
        raise ConfigError("is not a regular file", "point at a YAML file", path=path)
    if st.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"file is too large ({st.st_size} bytes; the limit is {MAX_CONFIG_BYTES})",
            "point at the YAML config file, not at a data file",
            path=path,
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except PermissionError:
        raise ConfigError(
            "cannot read: permission denied", "make it readable (chmod u+r)", path=path
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", "check the file", path=path) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"file is too large (the limit is {MAX_CONFIG_BYTES} bytes)",
            "point at the YAML config file",
            path=path,
        )
    return decode(data, path)


def decode(data: bytes, path: str) -> str:
    """Decode config bytes: UTF-8 (a BOM is allowed) or UTF-16 with a BOM; never binary."""
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    # NUL never occurs in UTF-8 text: it marks a binary file (or UTF-16 without a BOM).
    nul = -1 if utf16 else data.find(b"\x00")
    if nul >= 0:
        raise ConfigError(
            "is a binary file, not YAML (it contains NUL bytes)",
            "point at the YAML config file",
            path=path,
            line=data.count(b"\n", 0, nul) + 1,
        )
    try:
        return data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            "save the file as UTF-8 YAML",
            path=path,
            line=data.count(b"\n", 0, exc.start) + 1,
        ) from None


def _check_depth(text: str, path: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before libyaml's recursive composer can crash on it."""
    # Deep nesting needs an opener per level; counting them is cheap, the event scan is not.
    openers = text.count("[") + text.count("{") + text.count("- ") + text.count("? ")
    if openers <= MAX_DEPTH:
        return
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):  # iterative: safe at any depth
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(
                        f"YAML nests deeper than {MAX_DEPTH} levels",
                        "a config is a few levels deep; is this the right file?",
                        path=path,
                        line=None if event.start_mark is None else event.start_mark.line + 1,
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # compose() reports syntax errors with a better message


def compose(text: str, path: str) -> yaml.Node | None:
    """Parse ``text`` into a node tree (None for an empty document)."""
    _check_depth(text, path)
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # At the end of the file the useful line is where the unclosed thing began.
        at_end = exc.problem_mark is not None and exc.problem_mark.line >= len(text.splitlines())
        if at_end and exc.context_mark is not None:
            mark = exc.context_mark
        line = None if mark is None else int(mark.line) + 1
        problem = ", ".join(str(p) for p in (exc.context, exc.problem) if p) or "invalid YAML"
        hint = _SYNTAX_HINT
        lines = text.splitlines()
        text_line = lines[line - 1] if line and line <= len(lines) else ""
        if "\t" in text_line[: len(text_line) - len(text_line.lstrip())] or "\t" in problem:
            hint = "YAML does not allow tabs for indentation; use spaces"
        elif "single document" in problem:
            hint = "keep one YAML document: remove the '---' separators"
        elif "undefined alias" in problem:
            hint = "define the anchor (&name) before using the alias (*name)"
        raise ConfigError(f"YAML syntax error: {problem}", hint, path=path, line=line) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(
            f"contains a character YAML does not allow (#x{exc.character:04x})",
            "is it a binary file? point at a YAML text file",
            path=path,
            line=text.count("\n", 0, exc.position) + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", _SYNTAX_HINT, path=path) from None
    except RecursionError:
        raise ConfigError("YAML nests too deeply", "flatten the file", path=path) from None


def mapping_items(
    node: yaml.MappingNode, path: str, keypath: str, _visiting: frozenset[int] = frozenset()
) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """``(key, key_node, value_node)`` of a mapping, ``<<`` merges applied, duplicate keys refused.

    Explicit keys win over merged ones; among several merged mappings the first wins (YAML 1.1).
    """
    visiting = _visiting | {id(node)}
    items: list[tuple[str, yaml.Node, yaml.Node]] = []
    seen: dict[str, yaml.Node] = {}
    merged: list[tuple[str, yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == MERGE_TAG:
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                merged.extend(_merge_source(source, key_node, path, keypath, visiting))
            continue
        key = _key_text(key_node, path, keypath)
        first = seen.get(key)
        if first is not None:
            raise ConfigError(
                f"duplicate key (lines {line_of(first)} and {line_of(key_node)})",
                "remove one of them; YAML would silently keep only the last",
                path=path,
                line=line_of(key_node),
                key=f"{keypath}.{key}" if keypath else key,
            )
        seen[key] = key_node
        items.append((key, key_node, value_node))
    for key, key_node, value_node in merged:
        if key not in seen:
            seen[key] = key_node
            items.append((key, key_node, value_node))
    return items


def _merge_source(
    source: yaml.Node, merge_key: yaml.Node, path: str, keypath: str, visiting: frozenset[int]
) -> list[tuple[str, yaml.Node, yaml.Node]]:
    where = f"{keypath}.<<" if keypath else "<<"
    if not isinstance(source, yaml.MappingNode):
        raise ConfigError(
            "a '<<' merge key needs a mapping (or a list of mappings) to merge",
            "write '<<: *anchor' where '&anchor' names a mapping",
            path=path,
            line=line_of(merge_key),
            key=where,
        )
    if id(source) in visiting:
        raise ConfigError(
            "a '<<' merge includes the mapping it is in",
            "merge a different anchor",
            path=path,
            line=line_of(merge_key),
            key=where,
        )
    return mapping_items(source, path, keypath, visiting)


def _key_text(key_node: yaml.Node, path: str, keypath: str) -> str:
    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == NULL_TAG or not key_node.value:
        raise ConfigError(
            "a key must be a plain, non-empty name",
            "write 'name: value'",
            path=path,
            line=line_of(key_node),
            key=keypath or None,
        )
    return str(key_node.value)


def scalar(node: yaml.ScalarNode) -> object:
    """The Python value of a scalar node as YAML typed it (str, int, float, bool or None)."""
    tag = node.tag
    if tag == STR_TAG:
        return node.value
    if tag == INT_TAG:
        return _constructor.construct_yaml_int(node)
    if tag == BOOL_TAG:
        return _constructor.construct_yaml_bool(node)
    if tag == NULL_TAG:
        return None
    if tag == FLOAT_TAG:
        return _constructor.construct_yaml_float(node)
    # Timestamps, binary and custom tags: keep the text as written.
    return node.value
