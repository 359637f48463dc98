"""Finding and reading kubeconfig files (bounded), parsing their YAML (merge keys bounded) and
checking its shape, with messages that name file, line and key.

Only types and key paths reach a message, never values: the line a YAML error points at, or a
value of the wrong type, could be a token.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kportforward.errors import KubeconfigError
from kportforward.owned import make_owned_dir
from kportforward.safeio import MiB, is_stream_path, read_user_file, write_user_file

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# pyyaml quotes the document's own text in some problems (a tag, an alias, a character): that
# text could be a credential, so quoted parts never reach a message.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
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


MAX_KUBECONFIG_BYTES = 4 * MiB
"""A kubeconfig larger than this is refused (real ones with hundreds of clusters are < 1 MiB)."""
STREAM_TIMEOUT = 10.0
"""How long a kubeconfig passed as a pipe (``<(command)``) may take to arrive."""
MAX_MERGED_ENTRIES = 100_000
"""YAML merge keys (``<<``) may copy at most this many mapping entries into a document."""


def _read_error(message: str, hint: str) -> KubeconfigError:
    if "does not exist" in message:
        hint = "check the path given to --kubeconfig, KUBECONFIG or the forward's 'kubeconfig'"
    elif "is a directory" in message:
        hint = "point it at the kubeconfig file"
    return KubeconfigError(message, hint)


def read_text(path: Path, must_exist: bool) -> str | None:
    """The file as text; None if it is missing and need not exist. Raises KubeconfigError.

    Bounded (``safeio.read_user_file``): a FIFO, a device, a directory, a symlink loop or a file
    over ``MAX_KUBECONFIG_BYTES`` is refused without blocking; an inherited pipe is read once.
    """
    data = read_user_file(
        path,
        what="kubeconfig",
        error=_read_error,
        max_bytes=MAX_KUBECONFIG_BYTES,
        timeout=STREAM_TIMEOUT,
        missing_ok=not must_exist,
    )
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KubeconfigError(f"kubeconfig {path} is not text (not UTF-8)", FIX_HINT) from None


class ExpansionError(ValueError):
    """A document whose merge keys would expand it past the bound, or merge into themselves."""


def merged_size(node: Any) -> int:
    """How many mapping entries merge keys will copy when ``node`` is constructed.

    pyyaml's ``flatten_mapping`` copies every merged mapping's entries (duplicates included) into
    the mapping that merges it, level by level, so nested merges grow geometrically: a 657-byte
    document can take hours. This walks the composed tree once (memoised per node) and totals the
    entries copied, so such a document is refused before it is built. Plain entries cost what
    the file's size allows; only the copies are counted against ``MAX_MERGED_ENTRIES``.
    """
    sizes: dict[int, int] = {}
    total = 0
    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        key = id(current)
        if isinstance(current, yaml.ScalarNode) or (key in sizes and not done):
            continue
        if not done:
            sizes[key] = -1  # in progress: a merge that reaches it again is a cycle
            stack.append((current, True))
            children = (
                [v for pair in current.value for v in pair]
                if isinstance(current, yaml.MappingNode)
                else list(current.value)
            )
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        size = 0
        if isinstance(current, yaml.MappingNode):
            for k, v in current.value:
                if k.tag != "tag:yaml.org,2002:merge":
                    size += 1
                    continue
                targets = v.value if isinstance(v, yaml.SequenceNode) else [v]
                for target in targets:
                    merged = sizes.get(id(target), 0)
                    if merged < 0:
                        raise ExpansionError("a merge key (<<) refers to a mapping containing it")
                    size += merged
                    total += merged
        else:
            size = len(current.value)
        sizes[key] = size
        if total > MAX_MERGED_ENTRIES:
            raise ExpansionError(
                f"merge keys (<<) and aliases expand it past {MAX_MERGED_ENTRIES:,} entries"
            )
    return total


def parse_document(path: Path, text: str) -> dict[str, Any]:
    """The YAML document as a mapping (empty for an empty file). Raises KubeconfigError.

    Composed first, its merge-key expansion bounded (``merged_size``), then constructed: the
    time and memory this takes are linear in the file's size.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            merged_size(node)
        doc = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        # Only the problem and the position: the offending line could hold a token.
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        where = f"{path}:{line}" if line else str(path)
        problem = _QUOTED.sub("…", exc.problem or "parse error")
        raise KubeconfigError(
            f"{where}: kubeconfig is not valid YAML ({problem})", FIX_HINT
        ) from None
    except yaml.YAMLError:
        raise KubeconfigError(f"{path}: kubeconfig is not valid YAML", FIX_HINT) from None
    except ExpansionError as exc:
        raise KubeconfigError(f"{path}: kubeconfig refused: {exc}", FIX_HINT) from None
    except RecursionError:
        raise KubeconfigError(f"{path}: kubeconfig is nested too deeply", FIX_HINT) from None
    except Exception as exc:
        # A tagged scalar that does not construct (``!!int abc``, ``!!float x``, a bad date): name
        # the type only, since the text of the error quotes the value.
        raise KubeconfigError(
            f"{path}: kubeconfig holds a value YAML cannot construct ({type(exc).__name__})",
            FIX_HINT,
        ) from None
    finally:
        loader.dispose()
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(
            f"{path}: kubeconfig must be a mapping (apiVersion, clusters, contexts, users), "
            f"found {describe(doc)}",
            FIX_HINT,
        )
    return doc


_materialised: dict[str, str | KubeconfigError] = {}
_materialised_lock = threading.Lock()


def materialise_kubeconfig(path: str) -> str:
    """``path``, or for a stream (``/dev/fd/N`` as ``--kubeconfig <(command)`` makes) the path of a
    private copy: the pipe is read once (bounded in size and time) into an owned temporary
    directory, so kubectl and every later re-read see the same bytes. Raises KubeconfigError.

    The CLI should pass ``--kubeconfig`` through this before anything uses it, so kubectl (which
    cannot open our inherited descriptor) gets the copy too.
    """
    if not is_stream_path(path):
        return path
    try:
        st = os.stat(path)
        key = f"{path}:{st.st_dev}:{st.st_ino}"  # a reused descriptor number is another pipe
    except OSError:
        return path  # the reader names the problem
    with _materialised_lock:
        done = _materialised.get(key)
        if done is None:
            try:
                data = read_user_file(
                    path,
                    what="kubeconfig",
                    error=KubeconfigError,
                    max_bytes=MAX_KUBECONFIG_BYTES,
                    timeout=STREAM_TIMEOUT,
                )
                directory = make_owned_dir("kubeconfig")
                atexit.register(shutil.rmtree, directory, ignore_errors=True)
                copy = directory / "kubeconfig"
                write_user_file(copy, data or b"", what="kubeconfig copy", error=KubeconfigError)
                done = str(copy)
            except KubeconfigError as exc:
                done = exc
            except OSError as exc:
                done = KubeconfigError(
                    f"cannot copy kubeconfig {path}: {exc.strerror or exc}", "save it to a file"
                )
            _materialised[key] = done
    if isinstance(done, KubeconfigError):
        raise done
    return done


def kubeconfig_paths(explicit: str | None = None) -> list[Path]:
    """The kubeconfig files, like kubectl: ``explicit``, else ``$KUBECONFIG``, else ~/.kube/config.

    ``$KUBECONFIG`` is an ``os.pathsep``-separated list; empty entries and duplicates are dropped.
    A stream (``/dev/fd/N``) is replaced by its private copy (``materialise_kubeconfig``).
    """
    if explicit:
        return [Path(materialise_kubeconfig(os.path.expanduser(explicit)))]
    env = os.environ.get("KUBECONFIG", "")
    paths: list[Path] = []
    for part in env.split(os.pathsep):
        if part:
            p = Path(materialise_kubeconfig(os.path.expanduser(part)))
            if p not in paths:
                paths.append(p)
    return paths or [Path(os.path.expanduser("~/.kube/config"))]
