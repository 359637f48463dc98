"""Appending forwards to a config file: only ever appended bytes, and a result that loads."""

from __future__ import annotations

import os

import pytest

from kportforward.core.config import load_config
from kportforward.core.config_append import (
    NewForward,
    append_forwards,
    block_to_append,
    guess_type,
    pick_local_port,
    plan_forwards,
    unique_name,
)
from kportforward.errors import ConfigError

WEB = NewForward("web", "service/web", 80, 8080, "shop", "web")
GRPC = NewForward("orders", "service/orders", 9090, 9090, "shop", "rpc", context="kind-dev")

EXISTING = """\
# my forwards — keep this comment, and the odd spacing below
uiOptions:
    theme: light   # trailing comment

portForwards:
    api:
        target: service/api
        targetPort: 80
        localPort: 8080
        namespace: default
# a comment at the end, no newline"""


def test_appending_keeps_every_byte_and_matches_the_files_indentation(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(EXISTING.encode())
    before = path.read_bytes()
    result = append_forwards(str(path), [WEB, GRPC], "Added by a test")
    after = path.read_bytes()
    assert after[: len(before)] == before
    assert after[len(before) :].decode() == result.text
    assert result.text.startswith("\n    # Added by a test\n    web:\n        target: service/web")
    config = load_config(str(path))
    names = {s.name: s for s in config.forwards}
    assert set(names) == {"api", "web", "orders"}
    assert names["orders"].context == "kind-dev" and names["orders"].type == "rpc"
    assert names["web"].local_port == 8080 and names["web"].namespace == "shop"


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n", "uiOptions:\n  theme: dark\n", "portForwards:\n", "portForwards:"],
)
def test_files_without_entries_gain_a_portforwards_block(tmp_path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    append_forwards(str(path), [WEB], "c")
    assert path.read_text().startswith(text)
    assert [s.name for s in load_config(str(path)).forwards] == ["web"]


def test_a_missing_file_is_created(tmp_path) -> None:
    path = tmp_path / "new" / "config.yaml"
    result = append_forwards(str(path), [WEB], "c")
    assert result.created and [s.name for s in load_config(str(path)).forwards] == ["web"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("portForwards: {}\n", "flow style"),
        (
            "portForwards:\n  a:\n    target: svc/a\n    targetPort: 1\n    localPort: 2000\n"
            "uiOptions: {}\n",
            "not the last top-level key",
        ),
        ("[1, 2]\n", "not a block mapping"),
    ],
)
def test_shapes_that_cannot_be_appended_to_are_refused_untouched(
    tmp_path, text: str, words: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    stat = os.stat(path)
    with pytest.raises(ConfigError, match=words) as info:
        append_forwards(str(path), [WEB], "c")
    assert str(path) in str(info.value)
    assert path.read_text() == text and os.stat(path).st_mtime_ns == stat.st_mtime_ns


def test_a_name_that_would_clash_is_refused_before_writing(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "portForwards:\n  web:\n    target: svc/w\n    targetPort: 1\n    localPort: 2000\n"
    )
    with pytest.raises(ConfigError, match="duplicate key"):
        append_forwards(str(path), [WEB], "c")
    assert path.read_text().count("web:") == 1


def test_block_quotes_names_yaml_would_misread() -> None:
    odd = NewForward("yes", "service/yes", 80, 8080, "on", "web")
    block = block_to_append("", "f", [odd], "c")
    assert '"yes":' in block and 'namespace: "on"' in block


def test_planning_picks_ports_names_and_types() -> None:
    names, ports = {"api"}, {8080}
    planned = plan_forwards(
        [("api", 80, "http", ""), ("db", 5432, "", ""), ("db", 9090, "grpc", "")],
        "shop",
        None,
        names,
        ports,
    )
    assert [(f.name, f.local_port, f.type) for f in planned] == [
        ("api-2", 8081, "web"),
        ("db-5432", 5432, "other"),
        ("db-grpc", 9090, "rpc"),
    ]
    assert guess_type(443) == "web" and guess_type(7000, app_protocol="kubernetes.io/h2c") == "rpc"
    assert pick_local_port(443, set()) == 8443 and unique_name("a", {"a", "a-2"}) == "a-3"
