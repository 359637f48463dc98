"""Kubernetes API clients: built off the event loop, cached, bounded in time, failures classified.

The kubernetes package is imported lazily and only from worker threads (it takes ~0.5 s). Clients
are built from the kubeconfig files themselves (so relative certificate paths work) and cached per
(files, their stat signature, context). Exec credential plugins are run here, not by the kubernetes
package, because its ExecProvider waits for the plugin forever: ours kills the plugin's process
group at the deadline and reports a ``config`` failure naming the plugin, the user and the file
(``execplugin.py``).

Every file is read through ``kubeconfig_yaml.read_text`` (bounded, never a FIFO or a device),
including the copy the kubernetes package merges: it is never given a path to open itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime as dt
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlencode

from kportforward.errors import KubeconfigError
from kportforward.kube.classify import KubeApiError
from kportforward.kube.execplugin import run_exec_plugin
from kportforward.kube.kubeconfig import Kubeconfig, KubeContext, shared_watcher
from kportforward.kube.kubeconfig_yaml import parse_document, read_text
from kportforward.safeio import read_user_file

T = TypeVar("T")

_import_lock = threading.Lock()
_kubernetes: ModuleType | None = None


def import_kubernetes() -> ModuleType:
    """Import the kubernetes package (blocking, ~0.5 s once). Call from a worker thread."""
    global _kubernetes
    if _kubernetes is None:
        with _import_lock:
            if _kubernetes is None:
                import kubernetes.client
                import kubernetes.config

                _kubernetes = kubernetes
    return _kubernetes


async def ensure_imported() -> None:
    """Import the kubernetes package off the event loop (no thread at all once it is loaded)."""
    if _kubernetes is None:
        await run_in_thread(import_kubernetes, timeout=60.0, name="kpf-import-kubernetes")


def preload() -> None:
    """Start importing the kubernetes package in a daemon thread, so the first probe is quick."""
    if _kubernetes is None:
        name = "kpf-import-kubernetes"
        threading.Thread(target=import_kubernetes, name=name, daemon=True).start()


async def run_in_thread(fn: Callable[..., T], *args: Any, timeout: float, name: str) -> T:
    """Run blocking ``fn(*args)`` in a fresh daemon thread; give up after ``timeout`` seconds.

    Why not ``asyncio.to_thread``: a call that hangs despite its own timeouts (DNS, a stuck plugin)
    would pin a default-executor thread, and ``asyncio.run`` waits for those at exit. A daemon
    thread that is abandoned blocks nothing.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result, exc = fn(*args), None
        except BaseException as e:
            result, exc = None, e
        # RuntimeError: the loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await asyncio.wait_for(future, timeout)


async def api_call(
    fn: Callable[..., T], *args: Any, timeout: float, name: str, doing: str, hint: str
) -> T:
    """``fn(*args, deadline)`` on a thread of its own (see ``run_in_thread``), after the one-time
    import. ``deadline`` (monotonic) comes first so ``fn`` can say what it was waiting for; at
    ``timeout`` the call is abandoned: KubeApiError("network", "no answer within …s DOING")."""
    await ensure_imported()
    deadline = time.monotonic() + timeout * 0.9
    try:
        return await run_in_thread(fn, *args, deadline, timeout=timeout, name=name)
    except TimeoutError:
        raise KubeApiError("network", f"no answer within {timeout:g}s {doing}", hint) from None


def _cluster_info(root: Any, name: str) -> dict[str, Any]:
    """The cluster as an exec plugin with ``provideClusterInfo`` expects it (client-go Cluster)."""
    for node in root.value.get("clusters") or []:
        if node.value.get("name") == name:
            cluster = node.value.get("cluster") or {}
            keys = ("server", "tls-server-name", "insecure-skip-tls-verify",
                    "certificate-authority-data", "proxy-url", "disable-compression")  # fmt: skip
            info = {k: cluster[k] for k in keys if k in cluster}
            for ext in cluster.get("extensions") or []:
                if isinstance(ext, dict) and ext.get("name") == "client.authentication.k8s.io/exec":
                    info["config"] = ext.get("extension")
            return info
    return {}


def _expiry(status: dict[str, Any]) -> float | None:
    stamp = status.get("expirationTimestamp")
    if not isinstance(stamp, str):
        return None
    try:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Refresh a little early, expressed on the monotonic clock the cache uses.
    return time.monotonic() + (when.timestamp() - time.time()) - 30


def _build(kc: Kubeconfig, ctx: KubeContext, deadline: float) -> tuple[Any, float | None]:
    """A new ApiClient for ``ctx`` and the monotonic time it stops being valid (None: never)."""
    k8s = import_kubernetes()
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigMerger

    expires: float | None = None
    try:
        root = _merged_config(KubeConfigMerger, kc)
        if root is None:  # the files went away since we parsed them
            raise KubeApiError(
                "config",
                f"kubeconfig {kc.where} cannot be read any more",
                "restore it, or point --kubeconfig / KUBECONFIG at a valid kubeconfig",
            )
        _check_referenced_files(root, ctx)
        user = kc.user_of(ctx)
        if user is not None and user.auth == "exec":
            for node in root.value.get("users") or []:
                if node.value.get("name") != ctx.user:
                    continue
                body = dict(node.value.get("user") or {})
                status = run_exec_plugin(
                    body.pop("exec"),
                    os.path.dirname(os.path.abspath(node.path or "")),
                    ctx.user,
                    str(node.path),
                    deadline,
                    _cluster_info(root, ctx.cluster),
                )
                if status.get("token"):
                    body["token"] = status["token"]
                elif status.get("clientCertificateData") and status.get("clientKeyData"):
                    for key, src in (
                        ("client-certificate-data", "clientCertificateData"),
                        ("client-key-data", "clientKeyData"),
                    ):
                        body[key] = base64.b64encode(str(status[src]).encode()).decode()
                else:
                    raise KubeApiError(
                        "config",
                        f"exec credential plugin for user '{ctx.user}' ({node.path}) returned "
                        "neither a token nor a client certificate",
                        "fix the plugin",
                    )
                expires = _expiry(status)
                # Our private copy of the merged config; the files themselves are never written.
                node.value = {**node.value, "user": body}
                break
        configuration = k8s.client.Configuration()
        # Fail fast: the caller's deadline, not urllib3's silent retries, decides how long we wait.
        configuration.retries = False
        client = k8s.config.new_client_from_config_dict(
            config_dict=root,
            context=ctx.name,
            persist_config=False,
            client_configuration=configuration,
        )
    except ConfigException as exc:
        raise KubeApiError(
            "config", f"kubeconfig {kc.where}, context '{ctx.name}': {exc}", "fix the kubeconfig"
        ) from None
    except OSError as exc:
        raise KubeApiError(
            "config",
            f"kubeconfig {kc.where}, context '{ctx.name}': {exc.strerror or exc}",
            "fix the kubeconfig",
        ) from None
    except KubeApiError:
        raise
    except KubeconfigError as exc:  # a file changed into something we refuse to read
        raise KubeApiError("config", exc.message, exc.hint) from None
    except Exception as exc:
        # Only the type: a YAML or decoding error's text may quote a credential.
        raise KubeApiError(
            "config",
            f"kubeconfig {kc.where}, context '{ctx.name}' cannot be used ({type(exc).__name__})",
            "fix the kubeconfig",
        ) from None
    return client, expires


# Files a kubeconfig entry may name, which the kubernetes package reads whole: each must be a
# regular file of sane size, or a FIFO would hang the probe and /dev/zero exhaust memory.
_FILE_KEYS = {"clusters": ("cluster", ("certificate-authority",)),
              "users": ("user", ("client-certificate", "client-key", "tokenFile"))}  # fmt: skip
MAX_REFERENCED_BYTES = 1 << 20


def _referenced_file_error(where: str, message: str, hint: str) -> KubeApiError:
    return KubeApiError("config", f"{where}: {message}", "point it at the file itself")


def _check_referenced_files(root: Any, ctx: KubeContext) -> None:
    """Refuse (KubeApiError ``config``) a certificate, key or token file of ``ctx``'s cluster or
    user that is not a regular file of at most 1 MiB; relative paths are relative to the
    kubeconfig that names them, as client-go resolves them."""
    wanted = {"clusters": ctx.cluster, "users": ctx.user}
    for section, (inner, keys) in _FILE_KEYS.items():
        for node in root.value.get(section) or []:
            if node.value.get("name") != wanted[section]:
                continue
            body = node.value.get(inner) or {}
            for key in keys:
                value = body.get(key) if isinstance(body, dict) else None
                if not isinstance(value, str) or not value:
                    continue
                base = os.path.dirname(os.path.abspath(node.path or ""))
                path = os.path.join(base, os.path.expanduser(value))

                where = f"{section}[{wanted[section]}].{inner}.{key} in {node.path}"
                error = functools.partial(_referenced_file_error, where)
                read_user_file(
                    path,
                    what=key,
                    error=error,
                    max_bytes=MAX_REFERENCED_BYTES,
                    allow_stream=False,
                )


def _merged_config(merger_class: Any, kc: Kubeconfig) -> Any:
    """The kubernetes package's merged config of ``kc.sources``, its files read by us (bounded,
    refusing FIFOs and devices; a pipe's bytes as first read) rather than by its own ``open()``."""

    class BoundedMerger(merger_class):
        config_merged: Any

        def load_config(self, path: str) -> None:
            text = read_text(Path(path), True) or ""
            config = parse_document(Path(path), text)
            if not config:
                raise ConfigException(f"Invalid kube-config. {path} file is empty")
            if self.config_merged is None:
                merged = copy.deepcopy(config)
                for item in ("clusters", "contexts", "users"):
                    merged[item] = []
                self.config_merged = ConfigNode(path, merged, path)
            for item in ("clusters", "contexts", "users"):
                self._merge(item, config.get(item, []) or [], path)
            if "current-context" in config:
                self.config_merged.value["current-context"] = config["current-context"]
            self.config_files[path] = config

    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import ConfigNode

    merger = BoundedMerger(os.pathsep.join(str(p) for p in kc.sources))
    return merger.config


_cache_lock = threading.Lock()
_cache: dict[tuple[Any, ...], tuple[Any, float | None]] = {}
_CACHE_MAX = 32
_build_locks: dict[tuple[Any, ...], threading.Lock] = {}


def resolve_context(kubeconfig: str | None, context: str | None) -> tuple[Kubeconfig, KubeContext]:
    """The parsed kubeconfig and the usable context (cheap: a stat unless the files changed).

    Raises KubeconfigError / KubeContextError.
    """
    kc = shared_watcher(kubeconfig).current()
    return kc, kc.context(context)


def get_client(
    kubeconfig: str | None, context: str | None, deadline: float
) -> tuple[Any, Kubeconfig, KubeContext]:
    """A cached ApiClient for (kubeconfig, context) as the files are now. Blocking: threads only.

    Raises KubeconfigError or KubeApiError (kind ``config``).
    """
    watcher = shared_watcher(kubeconfig)
    kc = watcher.current()
    if watcher.error is not None:
        # The files changed into something unreadable: the last good view is no use for a client.
        raise watcher.error
    ctx = kc.context(context)
    key = (watcher.paths, watcher.signature, ctx.name)
    with _cache_lock:
        build_lock = _build_locks.setdefault((watcher.paths, ctx.name), threading.Lock())
    # One build per (files, context) at a time: concurrent misses would run an exec plugin twice.
    with build_lock:
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and (hit[1] is None or hit[1] > time.monotonic()):
            return hit[0], kc, ctx
        client, expires = _build(kc, ctx, deadline)
        with _cache_lock:
            # Drop clients built from older versions of the same files.
            for old in [k for k in _cache if k[0] == key[0] and k[2] == key[2]]:
                del _cache[old]
            while len(_cache) >= _CACHE_MAX:
                del _cache[next(iter(_cache))]
            _cache[key] = (client, expires)
    return client, kc, ctx


def forget_client(kubeconfig: str | None, context: str | None) -> None:
    """Drop cached clients for (kubeconfig, context), e.g. after a 401, to re-read credentials."""
    watcher = shared_watcher(kubeconfig)
    with _cache_lock:
        for key in list(_cache):
            if key[0] == watcher.paths and (context is None or key[2] == context):
                del _cache[key]


def api_get(api: Any, path: str, query: Mapping[str, Any] | None, timeout: Any) -> Any:
    """GET ``path`` (with ``query``) on ``api``'s server and return the urllib3 response, unread.

    The generated API classes are bypassed on purpose: importing CoreV1Api alone costs ~0.6 s of
    CPU (pydantic-validated methods), and each call pays a validation step we do not need.
    Raises the client's ApiException for a non-2xx answer (its body is read and kept).
    """
    k8s = import_kubernetes()
    config = api.configuration
    headers = {**api.default_headers, "Accept": "application/json"}
    for auth in config.auth_settings().values():  # runs the refresh hook for expiring tokens
        if auth.get("in") == "header" and auth.get("value"):
            headers[auth["key"]] = auth["value"]
    clean = {k: v for k, v in (query or {}).items() if v is not None}
    url = config.host + path + ("?" + urlencode(clean) if clean else "")
    resp = api.rest_client.request("GET", url, headers=headers, _request_timeout=timeout)
    raw = resp.response
    if not 200 <= resp.status <= 299:
        body = raw.data.decode("utf-8", "replace")
        raw.release_conn()
        raise k8s.client.ApiException(status=resp.status, reason=resp.reason, body=body)
    return raw


def api_get_json(api: Any, path: str, query: Mapping[str, Any] | None, timeout: Any) -> Any:
    """``api_get`` and parse the JSON body; the connection goes back to the pool fully read."""
    raw = api_get(api, path, query, timeout)
    try:
        return json.loads(raw.data)
    finally:
        raw.release_conn()


def close_clients() -> None:
    """Drop every cached client and close its pooled connections (at shutdown)."""
    with _cache_lock:
        clients = [client for client, _ in _cache.values()]
        _cache.clear()
    for client in clients:
        with contextlib.suppress(Exception):
            client.rest_client.pool_manager.clear()
