"""The global ``--context`` / ``-n`` filters: only the forwards of that context or namespace.

As a kubectl user reads them: a forward without ``context:`` goes through the kubeconfig's current
context, and one without ``namespace:`` through its context's namespace, so ``--context C`` keeps
those too when C is the current context, and ``-n NS`` keeps them when their context's namespace
is NS. Pure: the caller says what the current context is and what a context's namespace is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from kportforward.core.models import Config, ForwardSpec
from kportforward.errors import ArgumentError


def matches(
    spec: ForwardSpec,
    context: str | None,
    namespace: str | None,
    current_context: str | None,
    namespace_of: Callable[[str | None], str],
) -> bool:
    """True when ``spec`` belongs to ``context`` and ``namespace`` (None: any)."""
    effective = spec.context or current_context
    if context is not None and effective != context:
        return False
    if namespace is not None:
        ns = spec.namespace or namespace_of(effective)
        if ns != namespace:
            return False
    return True


def select_forwards(
    config: Config,
    context: str | None,
    namespace: str | None,
    current_context: str | None,
    namespace_of: Callable[[str | None], str] = lambda _: "default",
) -> Config:
    """``config`` with only the forwards of ``context`` / ``namespace``; unchanged when both are
    None. No forward left is an ArgumentError (exit 2) naming what the config has."""
    if context is None and namespace is None:
        return config
    kept = tuple(
        s for s in config.forwards if matches(s, context, namespace, current_context, namespace_of)
    )
    if not kept and config.forwards:
        wanted = " and ".join(
            part
            for part in (
                f"context {context!r}" if context is not None else "",
                f"namespace {namespace!r}" if namespace is not None else "",
            )
            if part
        )
        contexts = sorted({s.context or f"{current_context} (current)" for s in config.forwards})
        namespaces = sorted(
            {s.namespace or namespace_of(s.context or current_context) for s in config.forwards}
        )
        raise ArgumentError(
            f"no configured forward is in {wanted}",
            f"the forwards use contexts {', '.join(contexts)} and namespaces "
            f"{', '.join(namespaces)}",
        )
    # Rejected forwards keep their Failed rows: their spec did not parse, so their context and
    # namespace are unknown, and hiding a broken entry would hide the reason it does not run.
    return replace(config, forwards=kept)
