"""Where a context's credentials come from, and the command that fixes them when they fail.

Read from the kubeconfig's ``users[].user`` entry: an exec credential plugin (recognised: ``aws eks
get-token``, ``aws-iam-authenticator``, ``gke-gcloud-auth-plugin``, Azure ``kubelogin``,
``kubectl oidc-login``), a static token, a client certificate. For each the fix a person runs
(``aws sso login --profile dev``, ``gcloud auth login`` …) and the credential caches worth watching,
so a suspended cluster is probed again the moment the user has logged in. Nothing here runs a
plugin or keeps a secret: only command names, profile names and paths.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_KUBECONFIG_BYTES = 1024 * 1024
"""Kubeconfigs larger than this are not read for credential hints (real ones are kilobytes)."""


@dataclass(frozen=True, slots=True)
class CredentialSource:
    """How one kubeconfig user authenticates, and what to do when that fails."""

    kind: str
    """``aws``, ``aws-iam-authenticator``, ``gke``, ``azure``, ``oidc``, ``exec``, ``token``,
    ``client-cert``, ``auth-provider``, ``basic`` or ``none``."""
    user: str
    """The kubeconfig user entry's name."""
    fix: str
    """The command (or the one-line instruction) that gets working credentials again."""
    command: str | None = None
    """The exec plugin's command as written, when there is one."""
    watch: tuple[str, ...] = ()
    """Credential caches whose change means "try again now"."""

    def plugin_missing(self) -> bool:
        """True when the exec plugin cannot be found at all (not installed)."""
        if not self.command:
            return False
        if os.sep in self.command:
            return not os.access(os.path.expanduser(self.command), os.X_OK)
        return shutil.which(self.command) is None


def _home(*parts: str) -> str:
    return str(Path.home().joinpath(*parts))


def _flag(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def classify_exec(
    user: str, command: str, args: Iterable[str], env: Mapping[str, str]
) -> CredentialSource:
    """The credential source of an exec plugin, from its command, arguments and environment."""
    args = [str(a) for a in args]
    base = os.path.basename(command)
    profile = _flag(args, "--profile") or env.get("AWS_PROFILE")
    aws_caches = (_home(".aws", "sso", "cache"), _home(".aws", "cli", "cache"),
                  _home(".aws", "credentials"))  # fmt: skip
    if base == "aws" and "get-token" in args:
        fix = f"aws sso login --profile {profile}" if profile else "aws sso login"
        return CredentialSource("aws", user, fix, command, aws_caches)
    if base == "aws-iam-authenticator":
        fix = f"aws sso login --profile {profile}" if profile else "aws sso login"
        return CredentialSource("aws-iam-authenticator", user, fix, command, aws_caches)
    if base == "gke-gcloud-auth-plugin":
        return CredentialSource(
            "gke", user, "gcloud auth login", command, (_home(".config", "gcloud"),)
        )
    if base == "kubelogin" and "get-token" in args:
        mode = _flag(args, "--login", "-l") or env.get("AAD_LOGIN_METHOD") or "devicecode"
        fix = (
            "az login"
            if mode == "azurecli"
            else "kubelogin convert-kubeconfig -l azurecli && az login"
        )
        caches: tuple[str, ...] = (_home(".kube", "cache", "kubelogin"), _home(".azure"))
        return CredentialSource("azure", user, fix, command, caches)
    if base == "kubectl-oidc_login" or (base == "kubectl" and "oidc-login" in args):
        rest = args[args.index("oidc-login") + 1 :] if "oidc-login" in args else args
        fix = "kubectl oidc-login " + " ".join(shlex.quote(a) for a in rest)
        oidc_caches = (_home(".kube", "cache", "oidc-login"),)
        return CredentialSource("oidc", user, fix.strip(), command, oidc_caches)
    shown = " ".join(shlex.quote(a) for a in [command, *args])
    return CredentialSource("exec", user, f"run {shown} to see why it fails", command)


def _source_of(name: str, user: Mapping[str, Any]) -> CredentialSource:
    exec_ = user.get("exec")
    if isinstance(exec_, Mapping) and exec_.get("command"):
        env = {
            str(e.get("name")): str(e.get("value"))
            for e in exec_.get("env") or []
            if isinstance(e, Mapping)
        }
        return classify_exec(name, str(exec_["command"]), exec_.get("args") or [], env)
    if user.get("token") or user.get("tokenFile"):
        return CredentialSource(
            "token", name, f"get a new token and put it in users '{name}' of the kubeconfig"
        )
    if user.get("client-certificate") or user.get("client-certificate-data"):
        return CredentialSource(
            "client-cert",
            name,
            f"get a new client certificate for users '{name}' (it was rejected or expired)",
        )
    if user.get("auth-provider"):
        return CredentialSource(
            "auth-provider", name, "log in again with your cluster's login tool (auth-provider)"
        )
    if user.get("username"):
        return CredentialSource("basic", name, f"fix the password of users '{name}'")
    return CredentialSource("none", name, "the kubeconfig gives this context no credentials")


def credential_sources(paths: Iterable[str | Path]) -> dict[str, CredentialSource]:
    """Context name → its user's credential source, over the kubeconfig files (first wins,
    as kubectl merges them). Unreadable or odd files are skipped: this only feeds hints."""
    import yaml

    users: dict[str, Mapping[str, Any]] = {}
    contexts: dict[str, str] = {}
    for path in paths:
        try:
            p = Path(path)
            if not p.is_file() or p.stat().st_size > MAX_KUBECONFIG_BYTES:
                continue
            doc = yaml.safe_load(p.read_text(encoding="utf-8", errors="replace"))
        except (OSError, yaml.YAMLError, RecursionError):
            continue
        if not isinstance(doc, Mapping):
            continue
        for entry in doc.get("users") or []:
            if isinstance(entry, Mapping) and isinstance(entry.get("user"), Mapping):
                users.setdefault(str(entry.get("name")), entry["user"])
        for entry in doc.get("contexts") or []:
            if isinstance(entry, Mapping) and isinstance(entry.get("context"), Mapping):
                contexts.setdefault(str(entry.get("name")), str(entry["context"].get("user")))
    return {ctx: _source_of(user, users.get(user) or {}) for ctx, user in contexts.items()}
