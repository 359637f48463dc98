"""The access probe against the simulator: ok, 401, 403, stopped and hung servers, TLS tokens."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from kportforward.kube import client as kclient
from kportforward.kube.access import probe_access
from kportforward.sim import Simulator


def _copy_kubeconfig(sim: Simulator, dest: Path, **user: str) -> Path:
    """A copy of the simulator's kubeconfig, optionally with a different user entry."""
    assert sim.kubeconfig_path is not None
    shutil.copy(sim.kubeconfig_path, dest)
    if user:
        doc = yaml.safe_load(dest.read_text())
        doc["users"][0]["user"] = dict(user)
        dest.write_text(yaml.safe_dump(doc))
    return dest


async def test_probe_ok_makes_only_namespaced_requests(sim: Simulator) -> None:
    sim.clear_log()
    result = await probe_access(kubeconfig=str(sim.kubeconfig_path), timeout=5.0)
    assert result.ok, result
    assert result.context == sim.context_name and result.namespace == "default"
    assert result.server == sim.url and "v1.32.4" in result.message
    assert sim.count("GET", r"^/version") == 1
    assert sim.count("GET", r"^/api/v1/namespaces/default/pods\?limit=1$") == 1
    # Never a cluster-scoped list a namespace-only user could not make.
    assert sim.count(path_regex=r"^/api/v1/(pods|namespaces)(\?|$)") == 0

    other = await probe_access(kubeconfig=str(sim.kubeconfig_path), namespace="payments")
    assert other.ok and sim.count("GET", r"^/api/v1/namespaces/payments/pods") == 1


async def test_probe_follows_the_current_context_from_kubeconfig_env(
    sim: Simulator, monkeypatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(sim.kubeconfig_path))
    result = await probe_access(timeout=5.0)
    assert result.ok and result.context == sim.context_name


async def test_401_is_auth_and_recovers_when_lifted(sim: Simulator) -> None:
    rule = sim.add_rule(401)
    result = await probe_access(kubeconfig=str(sim.kubeconfig_path), timeout=5.0)
    assert result.kind == "auth", result
    assert result.server_answered is True
    assert "You must be logged in" in result.message and sim.url in result.message
    assert "\n" not in result.message
    sim.remove_rule(rule)
    assert (await probe_access(kubeconfig=str(sim.kubeconfig_path), timeout=5.0)).ok


async def test_403_on_the_namespaced_check_is_forbidden(sim: Simulator) -> None:
    sim.add_rule(403, method="GET", path_regex=r"^/api/v1/namespaces/default/pods")
    result = await probe_access(kubeconfig=str(sim.kubeconfig_path), timeout=5.0)
    assert result.kind == "forbidden", result
    assert "cannot list" in result.message and "default" in result.message
    # Another namespace is still fine: the probe is per namespace.
    assert (await probe_access(kubeconfig=str(sim.kubeconfig_path), namespace="payments")).ok


async def test_stopped_simulator_is_network(
    sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = sim_factory()
    kubeconfig = _copy_kubeconfig(sim, tmp_path / "config")
    assert (await probe_access(kubeconfig=str(kubeconfig), timeout=5.0)).ok
    sim.stop_in_thread()
    result = await probe_access(kubeconfig=str(kubeconfig), timeout=5.0)
    assert result.kind == "network", result
    assert sim.url in result.message and "refused" in result.message.lower()
    assert result.server_answered is False


async def test_hung_simulator_is_network_within_the_timeout(sim: Simulator) -> None:
    kubeconfig = str(sim.kubeconfig_path)
    assert (await probe_access(kubeconfig=kubeconfig, timeout=5.0)).ok  # warm: import, client
    sim.hang()
    try:
        result = await probe_access(kubeconfig=kubeconfig, timeout=1.0)
        assert result.kind == "network", result
        assert sim.url in result.message
        assert result.seconds < 1.0 + 3.0  # bounded by the probe's timeout, not the server
    finally:
        sim.resume()
    assert (await probe_access(kubeconfig=kubeconfig, timeout=5.0)).ok


async def test_tls_with_token_ok_and_wrong_token_is_auth_without_leaking(
    sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = sim_factory(tls=True, token="kpf-real-token-0123456789")
    good = await probe_access(kubeconfig=str(sim.kubeconfig_path), timeout=5.0)
    assert good.ok, good
    wrong = _copy_kubeconfig(sim, tmp_path / "wrong", token="kpf-wrong-token-9876543210")
    result = await probe_access(kubeconfig=str(wrong), timeout=5.0)
    assert result.kind == "auth", result
    assert "You must be logged in" in result.message
    for secret in ("kpf-real-token", "kpf-wrong-token"):
        assert secret not in result.message


async def test_tls_without_the_ca_is_config(
    sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = sim_factory(tls=True)
    path = _copy_kubeconfig(sim, tmp_path / "noca")
    doc = yaml.safe_load(path.read_text())
    del doc["clusters"][0]["cluster"]["certificate-authority-data"]
    path.write_text(yaml.safe_dump(doc))
    result = await probe_access(kubeconfig=str(path), timeout=5.0)
    assert result.kind == "config", result
    assert "TLS" in result.message and sim.token not in result.message  # type: ignore[operator]


async def test_repeated_probes_reuse_one_client(sim: Simulator) -> None:
    kubeconfig = str(sim.kubeconfig_path)
    for _ in range(3):
        assert (await probe_access(kubeconfig=kubeconfig, timeout=5.0)).ok
    watcher = kclient.shared_watcher(kubeconfig)
    keys = [k for k in kclient._cache if k[0] == watcher.paths]
    assert len(keys) == 1
    assert watcher.loads == 1  # the kubeconfig was parsed once for all three probes


async def test_exec_plugin_token_is_used_and_cached(
    sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = sim_factory(tls=True, token="kpf-exec-token-0123456789")
    runs = tmp_path / "runs"
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(
        "#!/bin/sh\n"
        f'echo run >> "{runs}"\n'
        # provideClusterInfo: the plugin is told which server it is logging in to.
        'case "$KUBERNETES_EXEC_INFO" in *127.0.0.1*) ;; *) echo "no info" >&2; exit 3;; esac\n'
        'printf \'%s\' \'{"apiVersion": "client.authentication.k8s.io/v1", '
        '"kind": "ExecCredential", "status": {"token": "kpf-exec-token-0123456789"}}\'\n'
    )
    plugin.chmod(0o755)
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "provideClusterInfo": True,
        }
    }
    path = _copy_kubeconfig(sim, tmp_path / "config")
    doc = yaml.safe_load(path.read_text())
    doc["users"][0]["user"] = exec_user
    path.write_text(yaml.safe_dump(doc))
    for _ in range(3):
        result = await probe_access(kubeconfig=str(path), timeout=5.0)
        assert result.ok, result
    assert runs.read_text().count("run") == 1  # the credential is cached with the client
    # A 401 drops the cached client, so the next probe asks the plugin again.
    rule = sim.add_rule(401)
    assert (await probe_access(kubeconfig=str(path), timeout=5.0)).kind == "auth"
    sim.remove_rule(rule)
    assert (await probe_access(kubeconfig=str(path), timeout=5.0)).ok
    assert runs.read_text().count("run") == 2
    assert "kpf-exec-token" not in path.read_text()  # the kubeconfig was never written


async def test_debug_logs_of_the_kube_layer_never_contain_the_token(
    sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    import asyncio
    import logging

    from kportforward.core.models import ForwardSpec
    from kportforward.kube.pods import PodWatcher, resolve_pods

    token = "kpf-secret-token-for-logs-0123456789"
    sim = sim_factory(tls=True, token=token)
    kubeconfig = str(sim.kubeconfig_path)
    log_file = tmp_path / "debug.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    watcher = PodWatcher(asyncio.get_running_loop(), lambda change: None, backoff_initial=0.05)
    try:
        assert (await probe_access(kubeconfig=kubeconfig)).ok
        spec = ForwardSpec(name="w", target="service/web-frontend", target_port=80, local_port=1)
        assert await resolve_pods(spec, kubeconfig=kubeconfig, context=None)
        rule = sim.add_rule(401)
        assert (await probe_access(kubeconfig=kubeconfig)).kind == "auth"
        watcher.watch(kubeconfig, None, "default")  # fails with 401 and logs its retries
        deadline = asyncio.get_running_loop().time() + 10
        while "pod watch" not in log_file.read_text():
            assert asyncio.get_running_loop().time() < deadline, "the watcher logged nothing"
            await asyncio.sleep(0.05)
        sim.remove_rule(rule)
        while not watcher.synced(kubeconfig, None, "default"):
            assert asyncio.get_running_loop().time() < deadline, "the watcher never synced"
            await asyncio.sleep(0.05)
    finally:
        watcher.close()
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    text = log_file.read_text()
    assert "credentials rejected" in text  # the watcher's retry was logged ...
    assert token not in text  # ... and nothing anywhere carried the token
