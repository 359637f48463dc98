"""World descriptions from YAML files and dicts, with errors that name the file, line and key.

The format, with every key, is shown in ``kportforward/sim/example-world.yaml`` (``EXAMPLE``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kportforward.sim.world import (
    PHASES,
    World,
    WorldError,
    _container_port,
    _labels,
    _service_port,
)

EXAMPLE = Path(__file__).with_name("example-world.yaml")
SECTIONS = ("services", "deployments", "statefulsets", "replicasets", "pods")
ALLOWED = {
    "services": {"name", "selector", "ports"},
    "pods": {"name", "labels", "ports", "phase", "ready"},
    "workload": {"name", "selector", "labels", "ports", "replicas", "phase", "ready"},
}


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fail(path: tuple[str | int, ...], problem: str) -> WorldError:
    return WorldError(f"{_dotted(path)}: {problem}", path)


def _ports(value: Any, path: tuple[str | int, ...], *, service: bool) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, "must be a list of ports")
    convert = _service_port if service else _container_port
    out = []
    for i, item in enumerate(value):
        try:
            out.append(convert(item, ""))
        except WorldError as exc:
            problem = str(exc).split(": ", 1)[-1]
            raise _fail((*path, i), problem) from None
    return out


def world_from_dict(data: Any) -> World:
    """Build a World from its dict description (see :meth:`World.from_dict`)."""
    if not isinstance(data, Mapping):
        raise WorldError("the world must be a mapping with a 'namespaces' key")
    for key in data:
        if key not in ("namespaces", "seed"):
            raise _fail((str(key),), "unknown top-level key (use 'namespaces')")
    seed = data.get("seed", 0) or 0
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _fail(("seed",), "must be a whole number")
    world = World(seed=seed)
    namespaces = data.get("namespaces") or {}
    if not isinstance(namespaces, Mapping):
        raise _fail(("namespaces",), "must be a mapping of namespace name to its contents")
    for ns, body in namespaces.items():
        ns = str(ns)
        world.add_namespace(ns)
        if not isinstance(body or {}, Mapping):
            raise _fail(("namespaces", ns), "must be a mapping of sections")
        for section, items in (body or {}).items():
            here: tuple[str | int, ...] = ("namespaces", ns, str(section))
            if section not in SECTIONS:
                raise _fail(here, f"unknown section (use {', '.join(SECTIONS)})")
            if not isinstance(items or [], list):
                raise _fail(here, "must be a list")
            for i, item in enumerate(items or []):
                _add(world, ns, str(section), item, (*here, i))
    return world


def _add(world: World, ns: str, section: str, item: Any, where: tuple[str | int, ...]) -> None:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
        raise _fail(where, "each entry needs a 'name'")
    kind = section if section in ("services", "pods") else "workload"
    for key in item:
        if key not in ALLOWED[kind]:
            raise _fail((*where, str(key)), f"unknown key (use {', '.join(sorted(ALLOWED[kind]))})")
    name = item["name"]
    ports = _ports(item.get("ports", [80] if kind == "services" else []), (*where, "ports"),
                   service=kind == "services")  # fmt: skip
    phase = item.get("phase", "Running")
    if phase not in PHASES:
        raise _fail((*where, "phase"), f"{phase!r} is not one of {', '.join(PHASES)}")
    ready = item.get("ready", True)
    if not isinstance(ready, bool):
        raise _fail((*where, "ready"), "must be true or false")
    if kind == "services":
        selector = _labels(item.get("selector"), "") if "selector" in item else None
        world.add_service(name, namespace=ns, selector=selector, ports=ports)
    elif kind == "pods":
        labels = _labels(item.get("labels"), "") if "labels" in item else None
        world.add_pod(name, namespace=ns, labels=labels, ports=ports, phase=phase, ready=ready)
    else:
        replicas = item.get("replicas", 1)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise _fail((*where, "replicas"), "must be a number >= 0")
        raw = item.get("selector", item.get("labels"))
        selector = _labels(raw, "") if raw is not None else None
        world.add_workload(
            section[:-1],
            name,
            namespace=ns,
            selector=selector,
            replicas=replicas,
            ports=ports,
            phase=phase,
            ready=ready,
        )


MAX_WORLD_BYTES = 4 << 20
"""A world file larger than this is refused (the demo world is 2 KiB)."""


def read_world_file(path: str | Path) -> str:
    """The text of a world file: a regular file of at most ``MAX_WORLD_BYTES``, read without
    blocking (a FIFO, a device such as ``/dev/zero``, a directory or a symlink loop is refused).
    Raises WorldError."""
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except OSError as exc:
        raise WorldError(f"{name}: cannot read the world file ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise WorldError(f"{name}: the world file is not a regular file (a directory or device?)")
    if st.st_size > MAX_WORLD_BYTES:
        raise WorldError(f"{name}: the world file is larger than {MAX_WORLD_BYTES >> 20} MiB")
    try:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(name, flags)
    except OSError as exc:
        raise WorldError(f"{name}: cannot read the world file ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WorldError(f"{name}: the world file is not a regular file")
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 16, MAX_WORLD_BYTES + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_WORLD_BYTES:
                raise WorldError(
                    f"{name}: the world file is larger than {MAX_WORLD_BYTES >> 20} MiB"
                )
    except OSError as exc:
        raise WorldError(f"{name}: cannot read the world file ({exc.strerror})") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise WorldError(f"{name}: the world file is not UTF-8 text") from None


def load_world_file(path: str | Path) -> World:
    """Read and build a world file; WorldError messages start with ``FILE:LINE: key``."""
    return world_from_text(read_world_file(path), str(path))


def world_from_text(text: str, path: str) -> World:
    """Build a world from YAML ``text`` read from ``path`` (named in messages). Raises WorldError.

    Callers that read untrusted files should bound the YAML's merge-key expansion first.
    """
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise WorldError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # A tagged scalar that does not construct (``!!int abc``).
        raise WorldError(f"{path}: a value YAML cannot construct ({type(exc).__name__})") from None
    try:
        return world_from_dict(data or {})
    except WorldError as exc:
        line = _line_of(root, exc.path)
        where = f"{path}:{line}" if line else str(path)
        raise WorldError(f"{where}: {exc}", exc.path) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise WorldError(f"{path}: the world cannot be built ({type(exc).__name__})") from None


def _line_of(node: Any, path: tuple[str | int, ...]) -> int | None:
    """1-based line of the deepest node along ``path`` in a composed YAML tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = value if not isinstance(value, yaml.ScalarNode) else key
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
