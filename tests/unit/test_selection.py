"""The global --context / -n filters, as a kubectl user reads them."""

from __future__ import annotations

import pytest

from kportforward.core.models import Config, ForwardProblem
from kportforward.core.selection import select_forwards
from kportforward.errors import ArgumentError
from tests.ui.fakes import spec

CONFIG = Config(
    forwards=(
        spec("a", 1001, namespace="shop"),
        spec("b", 1002, namespace="shop", context="staging"),
        spec("c", 1003, namespace=None),  # the current context, and its namespace
        spec("d", 1004, namespace="data", context="prod"),
    ),
    rejected=(ForwardProblem("broken", "f:3: bad"),),
)
NAMESPACES = {"kind-dev": "shop", "staging": "default", "prod": "default"}


def names(context: str | None, namespace: str | None) -> list[str]:
    picked = select_forwards(CONFIG, context, namespace, "kind-dev", NAMESPACES.__getitem__)
    return [s.name for s in picked.forwards]


def test_filters() -> None:
    assert names(None, None) == ["a", "b", "c", "d"]
    assert names("kind-dev", None) == ["a", "c"]  # no context: the current one
    assert names("staging", None) == ["b"]
    assert names(None, "shop") == ["a", "b", "c"]  # c: the current context's namespace
    assert names("prod", "data") == ["d"]
    kept = select_forwards(CONFIG, "prod", None, "kind-dev", NAMESPACES.__getitem__)
    assert kept.rejected == CONFIG.rejected  # a broken entry keeps its Failed row


def test_nothing_left_is_exit_2_naming_what_there_is() -> None:
    with pytest.raises(ArgumentError, match="no configured forward is in context 'nope'") as info:
        names("nope", None)
    assert info.value.exit_code == 2
    assert "kind-dev (current), prod, staging" in str(info.value)
