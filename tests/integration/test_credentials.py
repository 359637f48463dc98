"""Expiring credentials (issue 14): each credential source gets the command that fixes it, only its
context's forwards wait Suspended, and they come up by themselves once the user has logged in.

Each fixture is an exec credential plugin named like the real tool, on PATH, that fails with that
tool's own error text until its credential cache file exists, then prints the simulator's token —
as the real tools do after `aws sso login`, `gcloud auth login`, `az login` or an OIDC login.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from kportforward.sim import generated_world
from tests.conftest import free_ports

pytestmark = pytest.mark.integration

SOURCES = {
    "aws-eks": (
        "aws",
        ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "dev", "--profile", "dev"],
        {},
        ".aws/sso/cache/3f2a.json",
        "Error when retrieving token from sso: Token has expired and refresh failed",
        "aws sso login --profile dev",
    ),
    "aws-iam-authenticator": (
        "aws-iam-authenticator",
        ["token", "-i", "dev"],
        {"AWS_PROFILE": "staging"},
        ".aws/sso/cache/9c1d.json",
        "could not get token: SSOProviderInvalidToken: the SSO session has expired or is invalid",
        "aws sso login --profile staging",
    ),
    "gke": (
        "gke-gcloud-auth-plugin",
        [],
        {},
        ".config/gcloud/credentials.db",
        "ERROR: gke-gcloud-auth-plugin: Reauthentication failed. cannot prompt during "
        "non-interactive execution.",
        "gcloud auth login",
    ),
    "azure": (
        "kubelogin",
        ["get-token", "--login", "azurecli", "--server-id", "6dae42f8"],
        {},
        ".azure/msal_token_cache.json",
        "failed to get token: expected an empty error but received: AzureCLICredential: "
        "ERROR: Please run 'az login' to setup account.",
        "az login",
    ),
    "oidc": (
        "kubectl-oidc_login",
        ["get-token", "--oidc-issuer-url=https://issuer.example", "--oidc-client-id=kpf"],
        {},
        ".kube/cache/oidc-login/abc",
        "error: get-token: authentication error: oauth2: token expired and refresh token is not "
        "set",
        "kubectl oidc-login get-token --oidc-issuer-url=https://issuer.example",
    ),
}


def _plugin(bin_dir: Path, name: str, cache: str, error: str, token: str) -> None:
    """A stand-in for the real tool: its error until ``$HOME/<cache>`` exists, then a token."""
    bin_dir.mkdir(exist_ok=True)
    credential = json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": token},
        }
    )
    path = bin_dir / name
    path.write_text(
        "#!/bin/sh\n"
        f'if [ -e "$HOME/{cache}" ]; then\n'
        f"  echo '{credential}'\n  exit 0\nfi\n"
        f'echo "{error}" >&2\nexit 1\n'
    )
    path.chmod(0o755)


def _kubeconfig(sim, path: Path, command: str, args: list[str], env: dict[str, str]) -> str:
    """The simulator's kubeconfig with two contexts: ``exec`` (the plugin) and ``static`` (its
    token, which keeps working)."""
    doc = yaml.safe_load(sim.kubeconfig_path.read_text())
    token = doc["users"][0]["user"]["token"]
    cluster = doc["contexts"][0]["context"]["cluster"]
    doc["users"] = [
        {"name": "static", "user": {"token": token}},
        {
            "name": "sso",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": command,
                    "args": args,
                    "env": [{"name": k, "value": v} for k, v in env.items()] or None,
                    "interactiveMode": "Never",
                }
            },
        },
    ]
    doc["contexts"] = [
        {"name": "exec", "context": {"cluster": cluster, "user": "sso"}},
        {"name": "static", "context": {"cluster": cluster, "user": "static"}},
    ]
    doc["current-context"] = "static"
    path.write_text(yaml.safe_dump(doc))
    return token


class Run:
    """``kportforward run --json`` with its stdout JSON lines and stderr collected."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kportforward", "run", "--json", *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self.objects: list[dict] = []
        self.errors: list[str] = []
        for stream, sink in ((self.proc.stdout, self.objects), (self.proc.stderr, self.errors)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream, sink) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            if sink is not None and line.startswith("{"):
                sink.append(json.loads(line))
            elif isinstance(sink, list):
                sink.append(line.rstrip("\n"))

    def last(self, name: str) -> dict | None:
        return next(
            (o for o in reversed(self.objects) if o.get("forward") == name and "state" in o), None
        )

    def wait(self, what: str, pred, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = pred()
            if got:
                return got
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{what}: {self.objects[-6:]} {self.errors[-5:]}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_expired_credentials_suspend_one_context_with_the_fix_and_resume_after_login(
    kubectl: str, sim_factory, tmp_path: Path, source: str
) -> None:
    command, args, env, cache, error, fix = SOURCES[source]
    sim = sim_factory(generated_world(2), tls=True)
    kubeconfig = tmp_path / "kubeconfig"
    token = _kubeconfig(sim, kubeconfig, command, args, env)
    _plugin(tmp_path / "bin", command, cache, error, token)
    home = Path(os.environ["HOME"])
    ports = free_ports(2)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "portForwards": {
                    "sso": {"target": "service/svc-000", "targetPort": 9000,
                            "localPort": ports[0], "namespace": "default", "context": "exec"},
                    "plain": {"target": "service/svc-001", "targetPort": 9000,
                              "localPort": ports[1], "namespace": "default",
                              "context": "static"},
                }
            }
        )
    )  # fmt: skip
    env_run = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    run = Run(["--config", str(config), "--kubeconfig", str(kubeconfig)], env_run)
    try:
        # At start: a warning with the fix, not an exit.
        run.wait("a startup warning naming the fix", lambda: any(fix in e for e in run.errors))
        suspended = run.wait(
            "sso Suspended with the fix",
            lambda: (
                (o := run.last("sso")) and o["state"] == "Suspended" and fix in o["reason"] and o
            ),
        )
        assert error.split(":")[0] in suspended["reason"] or "credential" in suspended["reason"]
        # Only that context: the other forward runs.
        run.wait("plain Running", lambda: (o := run.last("plain")) and o["state"] == "Running")
        plain_pid = run.last("plain")["pid"]  # type: ignore[index]
        time.sleep(1.0)
        assert run.last("sso")["state"] == "Suspended"  # type: ignore[index]
        # The user logs in: the tool writes its cache; the forward comes up by itself.
        target = home / cache
        target.parent.mkdir(parents=True, exist_ok=True)
        logged_in = time.monotonic()
        target.write_text("{}")
        run.wait("sso Running after the login",
                 lambda: (o := run.last("sso")) and o["state"] == "Running", 15)  # fmt: skip
        took = time.monotonic() - logged_in
        assert run.last("plain")["pid"] == plain_pid  # type: ignore[index]
        assert "SECRET" not in json.dumps(run.objects)
        print(f"{source}: Running {took:.2f} s after the cache file appeared")
        assert run.stop() == 0
    finally:
        run.kill()
