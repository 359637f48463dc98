"""``kportforward completion SHELL``: the shell completion script, and the completers it calls.

argcomplete (see pyproject.toml for why) completes from the real argument parser, so options and
subcommands can never drift from what the CLI accepts; forward names for start/stop/restart/wait
come from the config as loaded right now. The script only calls back into ``kportforward`` with
``_ARGCOMPLETE`` set, and ``cli.main`` hands such a call to :func:`autocomplete` before anything
else happens (nothing is started, nothing printed but the candidates).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from kportforward.errors import ArgumentError

SHELLS = ("bash", "zsh", "fish")
INSTALL = {
    "bash": 'eval "$(kportforward completion bash)"   # in ~/.bashrc',
    "zsh": 'eval "$(kportforward completion zsh)"    # in ~/.zshrc (after compinit)',
    "fish": "kportforward completion fish > ~/.config/fish/completions/kportforward.fish",
}


def forward_names(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """Forward names from the config (with ``--config`` if given) that start with ``prefix``.

    A config that does not load completes nothing rather than printing an error into the prompt.
    """
    try:
        from kportforward.core.config import load_config

        config = load_config(getattr(parsed_args, "config", None))
    except Exception:
        return []
    return [spec.name for spec in config.forwards if spec.name.startswith(prefix)]


def contexts(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """Context names from the kubeconfig (``--kubeconfig`` if given)."""
    try:
        from kportforward.kube.kubeconfig import shared_watcher

        kc = shared_watcher(getattr(parsed_args, "kubeconfig", None)).current()
        names = list(kc.contexts)
    except Exception:
        return []
    return [name for name in names if name.startswith(prefix)]


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer a completion request (``_ARGCOMPLETE`` set by the script) and exit; else return."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)  # exits the process after writing the candidates


def main(args: argparse.Namespace) -> int:
    """Print the completion script for ``args.shell``."""
    shell = args.shell
    if shell not in SHELLS:
        raise ArgumentError(
            f"no completion for shell {shell!r}", f"choose one of: {', '.join(SHELLS)}"
        )
    import argcomplete

    sys.stdout.write(argcomplete.shellcode(["kportforward"], shell=shell))
    if sys.stdout.isatty():
        print(f"# install: {INSTALL[shell]}", file=sys.stderr)
    return 0
