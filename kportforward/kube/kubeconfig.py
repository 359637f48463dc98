"""Kubeconfig files: where they are, what they say, and when they change.

Parsed with pyyaml directly (never the kubernetes package: it is slow to import, and this runs at
start-up). Merging follows kubectl: with several files in ``$KUBECONFIG`` the first file that sets a
key wins, for ``current-context`` as for each named cluster, context and user. Messages name files,
lines and keys, never values: tokens, keys, passwords and exec environments must not reach a
terminal or a log.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "KubeCluster",
    "KubeContext",
    "KubeUser",
    "Kubeconfig",
    "KubeconfigWatcher",
    "kubeconfig_paths",
    "load_kubeconfig",
    "load_kubeconfig_for",
    "materialise_kubeconfig",
    "shared_watcher",
    "validate_kubeconfig_for_startup",
]
from kportforward.errors import KubeconfigError, KubeContextError
from kportforward.kube.kubeconfig_yaml import (
    MAX_KUBECONFIG_BYTES,
    Shape,
    describe,
    kubeconfig_paths,
    materialise_kubeconfig,
    parse_document,
    read_text,
    user_auth,
)


@dataclass(frozen=True, slots=True)
class KubeContext:
    """One kube context, with its cluster's server resolved (empty when the cluster is missing)."""

    name: str
    cluster: str
    server: str
    user: str
    """The user entry's name; empty for an anonymous context."""
    namespace: str | None


@dataclass(frozen=True, slots=True)
class KubeCluster:
    """A cluster entry: only what we show, never certificates."""

    name: str
    server: str


@dataclass(frozen=True, slots=True)
class KubeUser:
    """A user entry reduced to how it authenticates; the credentials themselves are not kept."""

    name: str
    auth: str
    """``token``, ``client-cert``, ``exec``, ``auth-provider``, ``basic`` or ``none``."""
    exec_command: str | None = None
    """The exec credential plugin's command, when ``auth == "exec"``."""


def _frozen(d: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(d)


@dataclass(frozen=True)
class Kubeconfig:
    """The merged view of one or more kubeconfig files, as kubectl would see it."""

    current_context: str | None
    contexts: Mapping[str, KubeContext]
    clusters: Mapping[str, KubeCluster] = field(default_factory=lambda: _frozen({}))
    users: Mapping[str, KubeUser] = field(default_factory=lambda: _frozen({}))
    files: tuple[Path, ...] = ()
    """The files that exist and were read, in merge order."""
    sources: tuple[Path, ...] = ()
    """The files among ``files`` that hold a document (kubectl skips an empty file)."""
    searched: tuple[Path, ...] = ()
    """Every path looked at (including missing ones from ``$KUBECONFIG``)."""

    @property
    def where(self) -> str:
        """The files as a person should read them in a message."""
        paths = self.files or self.searched
        return ", ".join(str(p) for p in paths) if paths else "(no kubeconfig file)"

    def context(self, name: str | None = None) -> KubeContext:
        """The context ``name`` (None: the current context), checked to be usable.

        Raises KubeContextError naming the file and what to do when the context does not exist,
        there is no current context, or the context names a missing cluster or user.
        """
        available = ", ".join(sorted(self.contexts)) or "none"
        if name is None:
            if not self.files:
                raise KubeContextError(
                    f"no kubeconfig found (looked at {self.where})",
                    "create one, set KUBECONFIG, or pass --kubeconfig PATH",
                )
            if not self.current_context:
                raise KubeContextError(
                    f"no current context in {self.where}; available: {available}",
                    "run 'kubectl config use-context NAME' or set 'context' on the forward",
                )
            name = self.current_context
            what = f"current context '{name}'"
        else:
            what = f"context '{name}'"
        ctx = self.contexts.get(name)
        if ctx is None:
            raise KubeContextError(
                f"{what} not found in {self.where}; available: {available}",
                "set the forward's 'context' to one of them, or fix current-context "
                "(kubectl config use-context NAME)",
            )
        if not ctx.cluster:
            raise KubeContextError(
                f"{what} in {self.where} names no cluster",
                "set contexts[].context.cluster to one of the clusters in the file",
            )
        cluster = self.clusters.get(ctx.cluster)
        if cluster is None:
            raise KubeContextError(
                f"{what} in {self.where} names cluster '{ctx.cluster}', which is not defined; "
                f"clusters: {', '.join(sorted(self.clusters)) or 'none'}",
                "add the cluster or fix the context's cluster name",
            )
        if not cluster.server:
            raise KubeContextError(
                f"cluster '{ctx.cluster}' in {self.where} has no server",
                "set clusters[].cluster.server to the API server's URL",
            )
        if ctx.user and ctx.user not in self.users:
            raise KubeContextError(
                f"{what} in {self.where} names user '{ctx.user}', which is not defined; "
                f"users: {', '.join(sorted(self.users)) or 'none'}",
                "add the user or fix the context's user name",
            )
        return ctx

    def user_of(self, ctx: KubeContext) -> KubeUser | None:
        """The user entry a context authenticates with (None when anonymous)."""
        return self.users.get(ctx.user) if ctx.user else None


MAX_TOTAL_BYTES = 4 * MAX_KUBECONFIG_BYTES
"""All the files of one ``$KUBECONFIG`` together: each file has its own cap, and so has the list."""


def load_kubeconfig(paths: Iterable[Path | str], *, must_exist: bool = False) -> Kubeconfig:
    """Read and merge ``paths`` (first file to set a key wins).

    Missing files are skipped, as kubectl does for ``$KUBECONFIG``, unless ``must_exist`` (an
    explicitly named file). Raises KubeconfigError (one line: file, line, key, what to do) for an
    unreadable or corrupt file, a document that is not a mapping, or entries of the wrong shape.
    """
    searched = tuple(Path(p) for p in paths)
    files: list[Path] = []
    sources: list[Path] = []
    current: str | None = None
    contexts: dict[str, KubeContext] = {}
    raw_contexts: dict[str, tuple[str, str, str | None]] = {}
    clusters: dict[str, KubeCluster] = {}
    users: dict[str, KubeUser] = {}
    total = 0
    for path in searched:
        text = read_text(path, must_exist)
        if text is None:
            continue
        total += len(text)
        if total > MAX_TOTAL_BYTES:
            raise KubeconfigError(
                f"the kubeconfig files {', '.join(str(p) for p in searched)} together are larger "
                f"than {MAX_TOTAL_BYTES >> 20} MiB",
                "list fewer files in KUBECONFIG",
            )
        files.append(path)
        doc = parse_document(path, text)
        if doc:
            sources.append(path)
        shape = Shape(path, text)
        cc = doc.get("current-context")
        if cc is not None and not isinstance(cc, str):
            raise shape.fail(["current-context"], f"must be a string, found {describe(cc)}")
        if cc and current is None:
            current = cc
        for i, (name, body) in enumerate(shape.entries(doc, "clusters", "cluster")):
            server = shape.string(body, ["clusters", i, "cluster", "server"], required=False)
            clusters.setdefault(name, KubeCluster(name, server))
        for i, (name, body) in enumerate(shape.entries(doc, "users", "user")):
            if "exec" in body and not isinstance(body["exec"], dict):
                raise shape.fail(
                    ["users", i, "user", "exec"],
                    f"must be a mapping, found {describe(body['exec'])}",
                )
            auth, command = user_auth(body)
            users.setdefault(name, KubeUser(name, auth, command))
        for i, (name, body) in enumerate(shape.entries(doc, "contexts", "context")):
            keys: list[str | int] = ["contexts", i, "context"]
            cluster = shape.string(body, [*keys, "cluster"], required=False)
            user = shape.string(body, [*keys, "user"], required=False)
            namespace = shape.string(body, [*keys, "namespace"], required=False) or None
            raw_contexts.setdefault(name, (cluster, user, namespace))
    for name, (cluster, user, namespace) in raw_contexts.items():
        server = clusters[cluster].server if cluster in clusters else ""
        contexts[name] = KubeContext(name, cluster, server, user, namespace)
    return Kubeconfig(
        current_context=current,
        contexts=_frozen(contexts),
        clusters=_frozen(clusters),
        users=_frozen(users),
        files=tuple(files),
        sources=tuple(sources),
        searched=searched,
    )


def load_kubeconfig_for(explicit: str | None = None) -> Kubeconfig:
    """``load_kubeconfig(kubeconfig_paths(explicit))``; an explicitly named file must exist."""
    return load_kubeconfig(kubeconfig_paths(explicit), must_exist=explicit is not None)


def validate_kubeconfig_for_startup(
    explicit: str | None, contexts_needed: Iterable[str | None]
) -> Kubeconfig:
    """Check before starting that the kubeconfig loads and every context needed is usable.

    ``contexts_needed`` holds context names, and None for forwards that follow the current context.
    Raises KubeconfigError / KubeContextError with one line naming the file and what to do.
    Returns the loaded Kubeconfig so the caller need not read it again.
    """
    config = load_kubeconfig_for(explicit)
    for name in sorted(set(contexts_needed), key=lambda n: (n is not None, n or "")):
        config.context(name)
    return config


_Signature = tuple[tuple[int, int, int] | None, ...]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class KubeconfigWatcher:
    """The kubeconfig as it is now, re-read only when one of its files changed.

    ``current()`` costs one ``stat`` per file while nothing changes (no parse); a change of any
    file's (mtime_ns, size, inode) re-reads them all. Never spawns kubectl. Thread-safe. If a
    changed file cannot be parsed (say, half-written, or replaced by a FIFO or ``/dev/zero``), the
    last good view is kept and the problem is in ``error`` until the file changes again; with no
    good view yet the error is raised.

    Called on an event loop's thread with a good view in hand, a re-read happens in a background
    thread and the last good view is returned meanwhile: reading and parsing (up to 4 MiB of YAML)
    never blocks the loop.
    """

    def __init__(
        self,
        explicit: str | None = None,
        timer: Callable[[], float] = time.monotonic,
        min_interval: float = 0.0,
    ) -> None:
        self.explicit = explicit
        self.paths: tuple[Path, ...] = tuple(kubeconfig_paths(explicit))
        self._timer = timer
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._signature: _Signature | None = None
        self._checked_at: float | None = None
        self._config: Kubeconfig | None = None
        self.error: KubeconfigError | None = None
        """The last re-read's failure while an older good view is being served."""
        self.loads = 0
        """How many times the files were parsed (for tests and the profile command)."""
        self.version = 0
        """Increases each time a re-read produced a different view."""
        self._polled = False
        self._polled_context: str | None = None
        self._reading: _Signature | None = None

    @property
    def signature(self) -> _Signature | None:
        """The files' (mtime_ns, size, inode) as of the last ``current()``."""
        return self._signature

    def _sig(self) -> _Signature:
        return tuple(_stat(p) for p in self.paths)

    def current(self) -> Kubeconfig:
        """The merged kubeconfig; re-parsed only if a file's (mtime_ns, size, inode) changed."""
        with self._lock:
            now = self._timer()
            if (
                self._config is not None
                and self._checked_at is not None
                and now - self._checked_at < self._min_interval
            ):
                return self._config
            self._checked_at = now
            sig = self._sig()
            if sig == self._signature and (self._config is not None or self.error is not None):
                if self._config is None:
                    assert self.error is not None
                    raise self.error
                return self._config
            if self._config is not None and _on_event_loop():
                if self._reading is None:
                    self._reading = sig
                    threading.Thread(
                        target=self._read_in_background, args=(sig,), name="kpf-kubeconfig",
                        daemon=True,
                    ).start()  # fmt: skip
                return self._config
            config, error = self._load()
            self._store(sig, config, error)
            if self._config is None:
                assert error is not None
                raise error
            return self._config

    def _load(self) -> tuple[Kubeconfig | None, KubeconfigError | None]:
        try:
            return load_kubeconfig(self.paths, must_exist=self.explicit is not None), None
        except KubeconfigError as exc:
            return None, exc
        except (MemoryError, RecursionError) as exc:
            where = ", ".join(str(p) for p in self.paths)
            return None, KubeconfigError(
                f"kubeconfig {where} cannot be read ({type(exc).__name__})", "fix the file"
            )

    def _store(
        self, sig: _Signature, config: Kubeconfig | None, error: KubeconfigError | None
    ) -> None:
        """Record a read's outcome (the lock held)."""
        self._signature = sig
        self.loads += 1
        self.error = error
        if config is not None and config != self._config:
            self.version += 1
            self._config = config

    def _read_in_background(self, sig: _Signature) -> None:
        config, error = self._load()
        with self._lock:
            self._reading = None
            self._store(sig, config, error)

    def poll(self) -> tuple[str | None, str | None] | None:
        """``(old, new)`` when the current context changed since the last poll, else None.

        The first poll only records the current context. A kubeconfig that cannot be read yet counts
        as no current context.
        """
        try:
            now: str | None = self.current().current_context
        except KubeconfigError:
            now = None
        with self._lock:
            if not self._polled:
                self._polled, self._polled_context = True, now
                return None
            old = self._polled_context
            if old == now:
                return None
            self._polled_context = now
            return (old, now)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_watchers: dict[str | None, KubeconfigWatcher] = {}
_watchers_lock = threading.Lock()


def shared_watcher(explicit: str | None = None) -> KubeconfigWatcher:
    """One process-wide KubeconfigWatcher per explicit path (None: ``$KUBECONFIG``/default).

    ``$KUBECONFIG`` is read when the watcher is first made.
    """
    key = os.path.expanduser(explicit) if explicit else None
    with _watchers_lock:
        watcher = _watchers.get(key)
        if watcher is None or (key is None and watcher.paths != tuple(kubeconfig_paths())):
            watcher = _watchers[key] = KubeconfigWatcher(key)
        return watcher
