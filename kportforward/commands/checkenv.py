"""What ``check`` verifies beyond the config file: the kubectl binary, the kubeconfig, and each
forward's context (``--offline`` skips all of it). Nothing here contacts a cluster.

``verify_kubectl`` is also what ``run`` and the dashboard can call so that ``--kubectl /bin/false``
is "not kubectl" at once instead of a forward that fails again and again.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field

from kportforward.core.models import Config
from kportforward.errors import KPortForwardError, KubectlNotFoundError

VERSION_TIMEOUT = 10.0


def verify_kubectl(path: str, timeout: float = VERSION_TIMEOUT) -> str:
    """``kubectl version --client -o json`` → the client's gitVersion; KubectlNotFoundError (exit
    2) naming the file when it does not answer like kubectl."""
    argv = [path, "version", "--client", "-o", "json"]
    try:
        # The client's own version needs no kubeconfig: a broken one is reported by our own
        # checks (by file and key), not by kubectl hanging on a FIFO or reading /dev/zero. Nor
        # does it need a cache: the gcloud SDK's kubectl was seen creating ~/.kube/cache/http
        # even for this (now and then, on a loaded machine); under the null device it cannot,
        # so `check` leaves the home (and the temp dir) untouched.
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "KUBECONFIG": os.devnull, "KUBECACHEDIR": os.devnull},
        )
    except subprocess.TimeoutExpired:
        raise KubectlNotFoundError(
            f"{path}: no answer to 'version --client' within {timeout:g}s",
            "is it kubectl? pass --kubectl PATH",
        ) from None
    except OSError as exc:
        raise KubectlNotFoundError(
            f"{path}: cannot run it ({exc.strerror})", "pass --kubectl PATH"
        ) from None
    try:
        version = json.loads(done.stdout)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        detail = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
        said = f": {detail[0][:120]}" if detail else ""
        raise KubectlNotFoundError(
            f"{path} is not kubectl ('version --client' exited {done.returncode}{said})",
            "install kubectl or pass --kubectl PATH",
        ) from None
    return str(version)


def find_kubectl(path: str | None) -> str:
    """``--kubectl PATH`` checked, or kubectl on PATH (the same rules as ``run``; kept here so that
    ``check`` imports none of the supervisor)."""
    import os

    if path:
        full = os.path.expanduser(path)
        if not os.path.exists(full):
            raise KubectlNotFoundError(f"--kubectl {path}: no such file", "pass --kubectl PATH")
        if os.path.isdir(full) or not os.access(full, os.X_OK):
            raise KubectlNotFoundError(
                f"--kubectl {path}: not an executable file", "chmod +x it or pass another path"
            )
        return full
    from kportforward.platform import current

    found = current().find_kubectl()
    if found is None:
        raise KubectlNotFoundError(
            "kubectl not found on PATH", "install kubectl or pass --kubectl PATH"
        )
    return str(found)


@dataclass
class EnvironmentReport:
    """What ``check`` found outside the config: facts for stderr, problems that make it exit 2."""

    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_environment(
    config: Config, kubeconfig: str | None, kubectl: str | None
) -> EnvironmentReport:
    """Check the kubectl binary, ``--kubeconfig`` and every forward's kubeconfig and context."""
    from kportforward.commands.startup import forward_problems

    report = EnvironmentReport()
    try:
        path = find_kubectl(kubectl)
        report.facts.append(f"kubectl {verify_kubectl(path)} ({path})")
    except KPortForwardError as exc:
        report.problems.append(str(exc))
    try:
        problems = forward_problems(config.forwards, kubeconfig)
    except KPortForwardError as exc:  # --kubeconfig itself is unreadable
        report.problems.append(str(exc))
        return report
    report.problems += [problems[name] for name in sorted(problems)]
    contexts = sorted({spec.context or "(current context)" for spec in config.forwards})
    if config.forwards and not problems:
        report.facts.append(f"kubeconfig: every forward's context exists ({', '.join(contexts)})")
    return report
