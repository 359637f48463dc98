"""The CLI rules that are not parsing: combinations, the terminal, the global filters."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kportforward import cliux
from kportforward.core.models import Config
from kportforward.errors import ArgumentError
from tests.ui.fakes import spec


def ns(**kw) -> argparse.Namespace:
    kw.setdefault("command", None)
    return argparse.Namespace(**kw)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (ns(command="demo", headless=False, json=True, duration=None), "--json only applies"),
        (ns(command="demo", headless=False, json=False, duration="2s"), "--duration only applies"),
        (ns(command="demo", headless=False, json=True, duration="2s"), "--json and --duration"),
        (ns(command="add", all=True, services=["web"]), "--all and SERVICE"),
    ],
)
def test_rejected_combinations(args: argparse.Namespace, words: str) -> None:
    with pytest.raises(ArgumentError, match=words) as info:
        cliux.check_combinations(args)
    assert info.value.exit_code == 2


def test_accepted_combinations() -> None:
    cliux.check_combinations(ns(command="demo", headless=True, json=True, duration="2s"))
    cliux.check_combinations(ns(command="demo", headless=False, json=False, duration=None))
    cliux.check_combinations(ns(command="add", all=True, services=[]))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (ns(), "the dashboard needs a terminal.*kportforward run"),
        (ns(command="dashboard"), "the dashboard needs a terminal"),
        (ns(command="demo", headless=False), "the demo needs a terminal.*demo --headless"),
    ],
)
def test_the_dashboard_needs_a_terminal(args: argparse.Namespace, words: str) -> None:
    with pytest.raises(ArgumentError, match=words):
        cliux.require_terminal(args, terminal=lambda: False)
    cliux.require_terminal(args, terminal=lambda: True)


def test_headless_commands_need_no_terminal() -> None:
    for args in (ns(command="run"), ns(command="demo", headless=True), ns(command="check")):
        cliux.require_terminal(args, terminal=lambda: False)


def test_filters_read_the_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
        "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "users:\n- name: u\n  user: {}\n"
        "contexts:\n- name: dev\n  context: {cluster: c, user: u, namespace: shop}\n"
        "- name: prod\n  context: {cluster: c, user: u}\n"
    )
    config = Config(
        forwards=(
            spec("a", 1, namespace=None),
            spec("b", 2, context="prod", namespace=None),
            spec("c", 3, namespace="data"),
        )
    )
    assert cliux.forward_filter(ns(command="run", context=None, namespace=None)) is None
    pick = cliux.forward_filter(
        ns(command="run", context=None, namespace="shop", kubeconfig=str(kubeconfig))
    )
    assert pick is not None and [s.name for s in pick(config).forwards] == ["a"]
    pick = cliux.forward_filter(
        ns(command="run", context="prod", namespace="default", kubeconfig=str(kubeconfig))
    )
    assert pick is not None and [s.name for s in pick(config).forwards] == ["b"]
    # add/discover read -n/--context as where to look, not as a filter
    assert cliux.forward_filter(ns(command="add", context="prod", namespace="x")) is None
