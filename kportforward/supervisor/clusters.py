"""The cluster registry: the one owner of contexts, reachability and the kubeconfig's health.

A cluster is a :class:`ClusterKey` — the kubeconfig path kubectl reads (None: ``$KUBECONFIG`` or the
default) and the context name it uses. Forwards without an explicit ``context`` follow the
kubeconfig's current context; the registry knows it (read off the loop, cached) and says when it
changes. While a cluster is suspended (kubectl found it unreachable or it rejected the
credentials), one access probe per backoff step — not one kubectl per forward — decides when it is
back. A kubeconfig that is deleted or broken while running blocks new spawns (the tunnels that work
keep working) until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kportforward.core.backoff import Backoff
from kportforward.core.models import ClusterStatus, ForwardSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class ClusterKey:
    """One cluster as kubectl reaches it: a kubeconfig (None: the default) and a context."""

    kubeconfig: str | None
    context: str | None
    """None only while the kubeconfig has no current context."""

    @property
    def label(self) -> str:
        """The context's name for people."""
        return self.context or "(no current context)"


ProbeAccess = Callable[[str | None, str | None, str | None], Awaitable[tuple[bool, str, str]]]
"""``(kubeconfig, context, namespace) -> (ok, kind, message)``: one RBAC-safe access probe."""


async def default_probe_access(
    kubeconfig: str | None, context: str | None, namespace: str | None, timeout: float = 5.0
) -> tuple[bool, str, str]:
    """The kube layer's access probe (``/version`` plus a namespaced check), run off the loop."""
    from kportforward.kube.access import probe_access  # lazy: imports the kubernetes client

    result = await probe_access(context, kubeconfig, namespace, timeout)
    return result.kind == "ok", result.kind, result.message


def access_backoff() -> Backoff:
    """Access-probe steps for a suspended cluster: quick, because one probe per cluster is cheap
    and traffic should flow again within seconds of the API answering."""
    return Backoff(base=0.5, cap=2.0, first_free=False)


@dataclass
class _View:
    """What one kubeconfig said when last read."""

    current: str | None = None
    contexts: dict[str, str] | None = None
    """Context name → server URL."""
    problem: str | None = None
    """Why the kubeconfig cannot be used now (missing, broken); None when fine."""
    credentials: dict[str, Any] | None = None
    """Context name → ``kube.credentials.CredentialSource`` (for fixes and caches to watch)."""
    files: tuple[str, ...] = ()


@dataclass
class _Suspension:
    reason: str
    namespace: str | None
    fix: str = ""
    watch: tuple[str, ...] = ()
    poke: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when something the credentials depend on changed: probe now, not at the next step."""
    seen: tuple[Any, ...] = ()
    task: asyncio.Task[None] | None = None
    probes: int = 0


class ClusterRegistry:
    """Contexts, reachability and kubeconfig health for every cluster the forwards use."""

    def __init__(
        self,
        default_kubeconfig: str | None,
        on_change: Callable[[ClusterKey, bool, str], None],
        probe: ProbeAccess | None = None,
        backoff: Callable[[], Backoff] = access_backoff,
    ) -> None:
        self.default_kubeconfig = default_kubeconfig
        self._on_change = on_change
        self._probe = probe or default_probe_access
        self._new_backoff = backoff
        self._views: dict[str | None, _View] = {}
        self._watchers: dict[str | None, Any] = {}
        self._down: dict[ClusterKey, _Suspension] = {}
        self._backoffs: dict[ClusterKey, Backoff] = {}
        self._reachable: dict[ClusterKey, tuple[bool, str]] = {}

    # -- which cluster ----------------------------------------------------------------------------

    def kubeconfig_of(self, spec: ForwardSpec | None) -> str | None:
        """The kubeconfig path the forward's kubectl reads (None: the default lookup); with no
        spec, the one forwards without a ``kubeconfig`` of their own read."""
        path = (spec.kubeconfig if spec else None) or self.default_kubeconfig
        return os.path.expanduser(path) if path else None

    def key_of(self, spec: ForwardSpec) -> ClusterKey:
        """The cluster the forward's kubectl talks to now."""
        kubeconfig = self.kubeconfig_of(spec)
        context = spec.context or self._view(kubeconfig).current
        return ClusterKey(kubeconfig, context)

    def _view(self, kubeconfig: str | None) -> _View:
        view = self._views.get(kubeconfig)
        if view is None:
            view = self._views[kubeconfig] = _View()
        return view

    def check_spec(self, spec: ForwardSpec) -> str | None:
        """Why the forward cannot run with this kubeconfig (an unknown context …), or None."""
        kubeconfig = self.kubeconfig_of(spec)
        view = self._view(kubeconfig)
        if view.contexts is None:  # never read successfully
            return f"forward '{spec.name}': {view.problem}" if view.problem else None
        where = kubeconfig or "the default kubeconfig"
        names = ", ".join(sorted(view.contexts)) or "none"
        if spec.context and spec.context not in view.contexts:
            return (
                f"forward '{spec.name}': context '{spec.context}' not found in {where}; "
                f"available: {names} — set the forward's 'context' to one of them"
            )
        if not spec.context and view.current is None and view.problem is None:
            return (
                f"forward '{spec.name}': no current context in {where}; available: {names} — "
                "run 'kubectl config use-context NAME' or set 'context' on the forward"
            )
        return None

    # -- reading the kubeconfigs (off the loop) ---------------------------------------------------

    def _watcher(self, kubeconfig: str | None) -> Any:
        watcher = self._watchers.get(kubeconfig)
        if watcher is None:
            from kportforward.kube.kubeconfig import KubeconfigWatcher

            watcher = self._watchers[kubeconfig] = KubeconfigWatcher(kubeconfig)
        return watcher

    def _read(self, kubeconfig: str | None) -> _View:
        """Blocking: read one kubeconfig (a stat while unchanged) into a view."""
        from kportforward.errors import KPortForwardError

        watcher = self._watcher(kubeconfig)
        present = [p for p in watcher.paths if os.path.exists(p)]
        if not present:
            shown = kubeconfig or os.pathsep.join(str(p) for p in watcher.paths) or "~/.kube/config"
            return _View(problem=f"kubeconfig {shown} is missing")
        try:
            config = watcher.current()
        except (KPortForwardError, OSError) as exc:
            return _View(problem=f"kubeconfig broken: {exc}")
        if watcher.error is not None:
            return _View(problem=f"kubeconfig broken: {watcher.error}")
        contexts = {name: ctx.server for name, ctx in config.contexts.items()}
        from kportforward.kube.credentials import credential_sources

        files = tuple(str(p) for p in watcher.paths)
        return _View(config.current_context, contexts, None, credential_sources(files), files)

    async def refresh(
        self, kubeconfigs: Iterable[str | None]
    ) -> list[tuple[str | None, _View, _View]]:
        """Re-read the kubeconfigs (in a thread); ``(kubeconfig, old, new)`` for each that changed.

        A kubeconfig that became missing or broken keeps its last good contexts (running tunnels
        keep their context) and gains a ``problem``.
        """
        changes = []
        for kubeconfig in dict.fromkeys(kubeconfigs):
            try:
                new = await asyncio.to_thread(self._read, kubeconfig)
            except Exception as exc:  # never let a watcher end supervision
                new = _View(problem=f"kubeconfig unreadable: {exc}")
            old = self._view(kubeconfig)
            if new.problem is not None:
                new = _View(old.current, old.contexts, new.problem, old.credentials, old.files)
            if (new.current, new.contexts, new.problem) != (old.current, old.contexts, old.problem):
                changes.append((kubeconfig, old, new))
            if new != old:
                self._views[kubeconfig] = new
                # A kubeconfig edited (a new token, a new exec setup): probe its clusters now.
                for key, down in self._down.items():
                    if key.kubeconfig == kubeconfig:
                        down.poke.set()
        return changes

    def credential(self, key: ClusterKey) -> Any:
        """The ``CredentialSource`` of ``key``'s context, when the kubeconfig names one."""
        return (self._view(key.kubeconfig).credentials or {}).get(key.context or "")

    async def watch_credentials(self) -> None:
        """Poke the suspended clusters whose credential caches changed (a login happened)."""
        for down in list(self._down.values()):
            if not down.watch:
                continue
            seen = await asyncio.to_thread(_signature, down.watch)
            if seen != down.seen:
                down.seen = seen
                down.poke.set()

    # -- reachability -----------------------------------------------------------------------------

    def blocker(self, key: ClusterKey) -> str | None:
        """Why nothing may be spawned for ``key`` now, or None."""
        problem = self._view(key.kubeconfig).problem
        if problem:
            return f"{problem}; waiting for it"
        down = self._down.get(key)
        return down.reason if down else None

    def probes(self, key: ClusterKey) -> int:
        """Access probes made since ``key`` was suspended (for tests and ``profile``)."""
        down = self._down.get(key)
        return down.probes if down else 0

    def report_down(
        self, key: ClusterKey, reason: str, namespace: str | None, *, auth: bool = False
    ) -> None:
        """kubectl says ``key`` is unreachable or rejects us; probe until it answers.

        For failing credentials the reason ends with the command that fixes them, and the
        credential caches that command writes are watched, so the cluster comes back within a
        probe of the login.
        """
        if key in self._down:
            return
        backoff = self._backoffs.get(key)
        if backoff is None:
            backoff = self._backoffs[key] = self._new_backoff()
        down = _Suspension(reason, namespace)
        if auth and (source := self.credential(key)) is not None:
            down.fix, down.watch = source.fix, source.watch
            down.seen = _signature(source.watch)
            reason = down.reason = f"{reason} — fix: {source.fix}"
        self._down[key] = down
        self._reachable[key] = (False, reason)
        down.task = asyncio.get_running_loop().create_task(
            self._revive(key, down, backoff), name=f"access-probe {key.label}"
        )
        self._on_change(key, False, reason)

    async def probe_access(self, key: ClusterKey, namespace: str | None) -> tuple[bool, str, str]:
        """One access probe of ``key`` now: (ok, kind, message)."""
        return await self._probe(key.kubeconfig, key.context, namespace)

    def report_up(self, key: ClusterKey, reason: str) -> None:
        """A tunnel of ``key`` carried bytes: it is reachable (if it was not known to be)."""
        if key in self._down:
            return
        if self._reachable.get(key, (None, ""))[0] is not True:
            self._reachable[key] = (True, reason)
            self._on_change(key, True, reason)

    async def _revive(self, key: ClusterKey, down: _Suspension, backoff: Backoff) -> None:
        backoff.reset()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(down.poke.wait(), backoff.next_delay())
            down.poke.clear()
            down.probes += 1
            try:
                ok, kind, message = await self._probe(key.kubeconfig, key.context, down.namespace)
            except Exception as exc:  # a broken probe must not leave the cluster suspended forever
                log.warning("access probe for %s failed: %s", key.label, exc)
                ok, kind, message = False, "error", str(exc)
            if ok or kind == "forbidden":
                break  # forbidden: the cluster answers; kubectl will report the real problem
            down.reason = f"{kind}: {message}" if message else kind
            if down.fix:
                down.reason += f" — fix: {down.fix}"
        self._down.pop(key, None)
        self._reachable[key] = (True, "access probe passed")
        self._on_change(key, True, "access probe passed")

    def statuses(self, keys: Iterable[ClusterKey]) -> tuple[ClusterStatus, ...]:
        """The given clusters (those the forwards use now), by context name and server."""
        out = []
        for key in sorted(set(keys), key=lambda k: (k.context or "", k.kubeconfig or "")):
            view = self._view(key.kubeconfig)
            server = (view.contexts or {}).get(key.context or "", "")
            if view.problem:
                out.append(ClusterStatus(key.label, server, False, view.problem))
                continue
            reach = self._reachable.get(key)
            down = self._down.get(key)
            out.append(
                ClusterStatus(
                    key.label,
                    server,
                    reach[0] if reach else None,
                    down.reason if down else (reach[1] if reach else ""),
                    down.fix if down else "",
                )
            )
        return tuple(out)

    def forget(self, keep: Iterable[ClusterKey]) -> None:
        """Drop reachability of clusters no forward uses any more."""
        keep = set(keep)
        for key in [k for k in self._reachable if k not in keep and k not in self._down]:
            del self._reachable[key]

    async def close(self) -> None:
        """Cancel every pending access probe."""
        tasks = [d.task for d in self._down.values() if d.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._down.clear()


def _signature(paths: Iterable[str]) -> tuple[Any, ...]:
    """Blocking: (mtime_ns, size) of each path and of the files directly in it (a cache dir)."""
    out: list[Any] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_mtime_ns, st.st_size))
        if os.path.isdir(path):
            with contextlib.suppress(OSError), os.scandir(path) as entries:
                for entry in sorted(entries, key=lambda e: e.name)[:200]:
                    with contextlib.suppress(OSError):
                        est = entry.stat()
                        out.append((entry.name, est.st_mtime_ns, est.st_size))
    return tuple(out)
