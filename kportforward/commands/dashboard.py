"""``kportforward`` (no subcommand) and ``kportforward dashboard``: the Textual dashboard.

Everything that can be wrong with the input (config, kubectl, kubeconfig) is checked before the UI
starts, so it is reported as one line with exit 2 on a normal terminal. Nothing here contacts the
cluster: the supervisor starts inside the app after its first frame is drawn.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

log = logging.getLogger(__name__)


def check_kubeconfigs(config: Any, explicit: str | None) -> None:
    """One line, exit 2, when a kubeconfig or context the forwards need is unusable; reads files."""
    from kportforward.kube.kubeconfig import validate_kubeconfig_for_startup

    needed: dict[str | None, set[str | None]] = {}
    for spec in config.forwards:
        needed.setdefault(spec.kubeconfig or explicit, set()).add(spec.context)
    for kubeconfig, contexts in needed.items():
        validate_kubeconfig_for_startup(kubeconfig, contexts)


def build_supervisor(config: Any, args: argparse.Namespace, kubectl: str) -> Any:
    """The real supervisor for ``config``, watching the config files for changes."""
    from kportforward.supervisor.supervisor import Supervisor

    return Supervisor(
        config,
        kubectl=kubectl,
        kubeconfig=getattr(args, "kubeconfig", None),
        config_path=getattr(args, "config", None),
        watch_config=True,
    )


def run_dashboard(supervisor: Any, *, config_path: str, config_arg: str | None) -> int:
    """Run the app over ``supervisor`` until the user quits; returns the exit code."""
    from kportforward.ui.app import make_app

    app = make_app(supervisor, config_path=config_path, config_arg=config_arg)
    code = app.run()
    return int(code or 0)


def main(args: argparse.Namespace) -> int:
    """Load and check the config, kubectl and kubeconfig, then open the dashboard."""
    from kportforward.commands.run import resolve_kubectl
    from kportforward.core.config import load_config, user_config_path

    config_arg = getattr(args, "config", None)
    config = load_config(config_arg)
    kubectl = resolve_kubectl(getattr(args, "kubectl", None))
    check_kubeconfigs(config, getattr(args, "kubeconfig", None))
    supervisor = build_supervisor(config, args, kubectl)
    config_path = str(config_arg or user_config_path())
    log.info("dashboard: %d forwards, config %s", len(config.forwards), config_path)
    return run_dashboard(supervisor, config_path=config_path, config_arg=config_arg)
