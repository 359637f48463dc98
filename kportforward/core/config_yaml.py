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


MAX_MERGE_DEPTH = 32
"""``<<`` merges nested deeper than this are refused (real configs use one or two levels)."""
MAX_MERGED_KEYS = 200_000
"""Total keys all merges of one document may produce: expansion is bounded by output size."""

Items = list[tuple[str, yaml.Node, yaml.Node]]


class Mappings:
    """Reads the mappings of one document: ``<<`` merges resolved once per mapping (memoised).

    Without the memo, nested merges re-walk every merged mapping at each level (exponential: a
    657-byte file pinned a core for hours). With it, each mapping is walked once, and the keys all
    merges produce together are capped by :data:`MAX_MERGED_KEYS`, so the work is linear in the
    size of the result and the result is bounded.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._memo: dict[int, Items | ConfigError] = {}
        self._budget = MAX_MERGED_KEYS

    @property
    def exhausted(self) -> bool:
        """True once merges produced more than :data:`MAX_MERGED_KEYS`: the whole file is bad."""
        return self._budget < 0

    def items(self, node: yaml.MappingNode, keypath: str) -> Items:
        """``(key, key_node, value_node)`` of a mapping, merges applied, duplicate keys refused.

        Explicit keys win over merged ones; among several merged mappings the first wins (YAML 1.1).
        """
        return self._items(node, keypath, ())

    def _items(self, node: yaml.MappingNode, keypath: str, stack: tuple[int, ...]) -> Items:
        done = self._memo.get(id(node))
        if isinstance(done, ConfigError):
            raise done.with_traceback(None)
        if done is not None:
            return done
        try:
            result = self._walk(node, keypath, (*stack, id(node)))
        except ConfigError as exc:
            self._memo[id(node)] = exc
            raise
        self._memo[id(node)] = result
        return result

    def _walk(self, node: yaml.MappingNode, keypath: str, stack: tuple[int, ...]) -> Items:
        items: Items = []
        seen: dict[str, yaml.Node] = {}
        merged: Items = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    merged.extend(self._merge_source(source, key_node, keypath, stack))
                continue
            key = _key_text(key_node, self.path, keypath)
            first = seen.get(key)
            if first is not None:
                raise ConfigError(
                    f"duplicate key (lines {line_of(first)} and {line_of(key_node)})",
                    "remove one of them; YAML would silently keep only the last",
                    path=self.path,
                    line=line_of(key_node),
                    key=f"{keypath}.{key}" if keypath else key,
                )
            seen[key] = key_node
            items.append((key, key_node, value_node))
        if merged:
            for key, key_node, value_node in merged:
                if key not in seen:
                    seen[key] = key_node
                    items.append((key, key_node, value_node))
            self._budget -= len(items)
            if self._budget < 0:
                raise ConfigError(
                    f"'<<' merges expand to more than {MAX_MERGED_KEYS} keys",
                    "a config merges a few small anchors; is this the right file?",
                    path=self.path,
                    line=line_of(node),
                    key=keypath or None,
                )
        return items

    def _merge_source(
        self, source: yaml.Node, merge_key: yaml.Node, keypath: str, stack: tuple[int, ...]
    ) -> Items:
        where = f"{keypath}.<<" if keypath else "<<"
        if not isinstance(source, yaml.MappingNode):
            raise ConfigError(
                "a '<<' merge key needs a mapping (or a list of mappings) to merge",
                "write '<<: *anchor' where '&anchor' names a mapping",
                path=self.path,
                line=line_of(merge_key),
                key=where,
            )
        if id(source) in stack:
            raise ConfigError(
                "a '<<' merge includes the mapping it is in",
                "merge a different anchor",
                path=self.path,
                line=line_of(merge_key),
                key=where,
            )
        if len(stack) >= MAX_MERGE_DEPTH:
            raise ConfigError(
                f"'<<' merges nest deeper than {MAX_MERGE_DEPTH} levels",
                "flatten the anchors: merge a few small mappings",
                path=self.path,
                line=line_of(merge_key),
                key=where,
            )
        return self._items(source, keypath, stack)


def mapping_items(node: yaml.MappingNode, path: str, keypath: str) -> Items:
    """:meth:`Mappings.items` for a single mapping (no memo shared with other calls)."""
    return Mappings(path).items(node, keypath)


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


class BadScalar(ValueError):
    """A scalar YAML typed (``!!int``, a YAML 1.1 number form …) that has no sensible value."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


MAX_NUMBER_CHARS = 40
"""Longer numbers are refused before conversion (a port has 5 digits, a duration a few more)."""
_BOOLS = {
    "yes": True, "no": False, "true": True, "false": False, "on": True, "off": False,
}  # fmt: skip


def short(text: str, limit: int = 40) -> str:
    """``repr(text)``, cut to about ``limit`` characters for a one-line message."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[: limit - 10]}…({len(text)} characters)"


def scalar(node: yaml.ScalarNode) -> object:
    """The Python value of a scalar node as YAML typed it (str, int, float, bool or None).

    Raises :class:`BadScalar` for a value its tag cannot hold (``!!int abc``, ``!!bool maybe``,
    ``0x_``), a number too long to be meant, and the YAML 1.1 forms that silently change a number
    (``017`` is octal 15, ``7:38:20`` is base-60 27500).
    """
    tag = node.tag
    if tag == STR_TAG:
        return node.value
    if tag == INT_TAG:
        return _int(str(node.value))
    if tag == BOOL_TAG:
        value = _BOOLS.get(str(node.value).lower())
        if value is None:
            raise BadScalar(f"{short(node.value)} is not a YAML boolean", "write true or false")
        return value
    if tag == NULL_TAG:
        return None
    if tag == FLOAT_TAG:
        return _float(str(node.value))
    # Timestamps, binary and custom tags: keep the text as written.
    return node.value


def _int(text: str) -> int:
    digits = text.replace("_", "")
    sign = -1 if digits[:1] == "-" else 1
    body = digits[1:] if digits[:1] in "+-" and digits else digits
    if len(body) > MAX_NUMBER_CHARS:
        raise BadScalar(f"a {len(body)}-digit number", "write a number of sensible size")
    if ":" in body:
        raise BadScalar(
            f"{text} is a base-60 number in YAML 1.1 (it would read as {_sexagesimal(body, sign)})",
            "quote it, or write the number you mean",
        )
    try:
        if body[:2] in ("0b", "0x"):
            return sign * int(body[2:], 2 if body[1] == "b" else 16)
        if len(body) > 1 and body[0] == "0":
            octal = int(body, 8)
            raise BadScalar(
                f"{text} is an octal number in YAML 1.1 (it would read as {sign * octal})",
                "remove the leading zero, or quote it",
            )
        return sign * int(body)
    except ValueError as exc:
        if isinstance(exc, BadScalar):
            raise
        raise BadScalar(f"{short(text)} is not an integer", "write a whole number") from None


def _float(text: str) -> float:
    value = text.replace("_", "").lower()
    if len(value) > MAX_NUMBER_CHARS:
        raise BadScalar(f"a {len(value)}-character number", "write a number of sensible size")
    if value in (".inf", "+.inf", "-.inf", ".nan"):
        return float(value.replace(".", ""))
    if ":" in value:
        raise BadScalar(
            f"{text} is a base-60 number in YAML 1.1", "quote it, or write the number you mean"
        )
    try:
        return float(value)
    except ValueError:
        raise BadScalar(f"{short(text)} is not a number", "write a number like 1.5") from None


def _sexagesimal(body: str, sign: int) -> int | str:
    try:
        total = 0
        for part in body.split(":"):
            total = total * 60 + int(part)
        return sign * total
    except ValueError:
        return "something else"
