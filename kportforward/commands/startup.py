"""The checks ``run`` and the dashboard make before they start: which forwards can run at all.

A forward whose kubeconfig is missing, or whose context does not exist, fails alone (the
supervisor shows it Failed with the same message) and the others start. Only when no forward can
start is it an exit-2 error, so a script learns at once that nothing will work. An unreachable
cluster or expired credentials are states, not errors: those forwards wait Suspended.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from kportforward.core.models import Config, ForwardSpec
from kportforward.errors import BadInputError, KPortForwardError


def forward_problems(forwards: Iterable[ForwardSpec], explicit: str | None) -> dict[str, str]:
    """Forward name → why it cannot run with its kubeconfig (unknown context, missing file).

    ``explicit`` is ``--kubeconfig``; when it names a file that cannot be read that is a bad
    argument for every forward, raised as KubeconfigError.
    """
    from kportforward.kube.kubeconfig import Kubeconfig, load_kubeconfig_for

    if explicit is not None:
        load_kubeconfig_for(explicit)  # --kubeconfig itself must work: exit 2 otherwise
    views: dict[str | None, Kubeconfig | KPortForwardError] = {}
    problems: dict[str, str] = {}
    for spec in forwards:
        path = spec.kubeconfig or explicit
        path = os.path.expanduser(path) if path else None
        if path not in views:
            try:
                views[path] = load_kubeconfig_for(path)
            except KPortForwardError as exc:
                views[path] = exc
        view = views[path]
        if isinstance(view, KPortForwardError):
            problems[spec.name] = f"forward '{spec.name}': {view}"
            continue
        try:
            view.context(spec.context)
        except KPortForwardError as exc:
            problems[spec.name] = f"forward '{spec.name}': {exc}"
    return problems


def check_startable(config: Config, explicit: str | None) -> list[str]:
    """The per-forward problems as lines for stderr. When no forward can start at all, every
    problem but the last is printed (one line each) and the last is raised: exit 2, N lines."""
    problems = forward_problems(config.forwards, explicit)
    lines = [p.message for p in config.rejected] + [problems[n] for n in sorted(problems)]
    if lines and len(problems) == len(config.forwards):
        for line in lines[:-1]:
            print(f"kportforward: error: {line}", file=sys.stderr, flush=True)
        raise BadInputError(lines[-1])
    return lines
