"""Property tests of kubeconfig parsing: any input yields a Kubeconfig or a KubeconfigError (one
line, no value quoted), never another exception, and within a time bound (issue #18).

Three generators: arbitrary text; YAML assembled from the constructs attackers use (anchors,
aliases, merge keys, tags, flow and block nesting); and well-formed YAML of kubeconfig shape with
values of every type in every place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kportforward.errors import KubeconfigError
from kportforward.kube.kubeconfig import Kubeconfig, load_kubeconfig

_SCRATCH: list[Path] = []


@pytest.fixture(autouse=True, scope="module")
def _scratch_dir() -> Iterator[None]:
    """One scratch directory for every example (hypothesis examples cannot take tmp_path)."""
    _SCRATCH.append(Path(tempfile.mkdtemp(prefix="kpf-hypothesis-")))
    yield
    shutil.rmtree(_SCRATCH.pop(), ignore_errors=True)


SETTINGS = settings(
    max_examples=int(os.environ.get("KPF_HYPOTHESIS_EXAMPLES", "300")),
    deadline=2000,  # ms per example: a merge bomb or a quadratic walk fails here
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
SECRET = "SECRETVALUE"


def _load(text: str | bytes) -> Kubeconfig | KubeconfigError:
    path = _SCRATCH[-1] / "kubeconfig"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        config = load_kubeconfig([path], must_exist=True)
    except KubeconfigError as exc:
        assert "\n" not in str(exc)
        assert SECRET not in str(exc)
        return exc
    for name in [None, *config.contexts]:
        try:
            config.context(name)
        except KubeconfigError as exc:
            assert "\n" not in str(exc)
    return config


@SETTINGS
@given(st.binary(max_size=2000))
def test_any_bytes(data: bytes) -> None:
    _load(data)


@SETTINGS
@given(st.text(max_size=2000))
def test_any_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be in a file as UTF-8; the bytes test covers bad bytes
    _load(text)


_ATOMS = st.sampled_from([
    "a", "b", "name", "context", "contexts", "clusters", "users", "user", "cluster",
    "current-context", "server", "exec", "command", "<<", "&x", "&y", "*x", "*y", "!!int",
    "!!float", "!!str", "!!map", "!!seq", "!!binary", "!!timestamp", "!!bool", "!!null",
    "!!python/name:os.system", "!custom", "[", "]", "{", "}", ",", ":", ": ", "- ", "? ", "|",
    ">", "'", '"', "#", "---", "...", "\n", "\n  ", "\n    ", "\t", "0x_", "0o17", "017",
    "7:38:20", "1e400", "9" * 50, "~", "null", "yes", "no", SECRET, "%YAML 1.1\n", "\\u0000",
])  # fmt: skip


@SETTINGS
@given(st.lists(_ATOMS, max_size=120).map("".join))
def test_yaml_built_from_hostile_constructs(text: str) -> None:
    _load(text)


def _nested_merges(depth: int, fan: int) -> str:
    lines = ["x0: &x0 {a: 1, b: 2}"]
    for i in range(1, depth):
        refs = ", ".join([f"*x{i - 1}"] * fan)
        lines.append(f"x{i}: &x{i} {{<<: [{refs}], k{i}: {i}}}")
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=2000, database=None)
@given(st.integers(1, 30), st.integers(1, 8))
def test_nested_merge_keys_are_linear_or_refused(depth: int, fan: int) -> None:
    outcome = _load(_nested_merges(depth, fan))
    size, copies = 2, 0  # x0 has 2 entries; each level copies ``fan`` times the one below
    for _ in range(1, depth):
        copies += fan * size
        size = fan * size + 1
    assert isinstance(outcome, KubeconfigError) == (copies > 100_000), (copies, outcome)


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.just(SECRET), st.binary(max_size=10),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    ["name", "cluster", "context", "user", "server", "namespace", "token", "exec", "command",
     "client-certificate-data", "auth-provider", "username", "args", "env"]
)  # fmt: skip
_ENTRY = st.dictionaries(
    st.sampled_from(["name", "cluster", "context", "user"]),
    st.one_of(_VALUES, st.dictionaries(_KEYS, _VALUES, max_size=5)),
    max_size=3,
)
_DOC = st.dictionaries(
    st.sampled_from(["apiVersion", "kind", "clusters", "contexts", "users", "current-context",
                     "preferences", "extensions"]),
    st.one_of(_VALUES, st.lists(st.one_of(_ENTRY, _VALUES), max_size=4)),
    max_size=6,
)  # fmt: skip


@SETTINGS
@given(_DOC)
def test_kubeconfig_shaped_documents_with_any_values(doc: dict) -> None:
    _load(yaml.safe_dump(doc, allow_unicode=True))


@SETTINGS
@given(st.lists(st.tuples(st.text(min_size=1, max_size=6), st.text(max_size=6)), max_size=5),
       st.text(max_size=6))  # fmt: skip
def test_well_formed_contexts_resolve_or_say_why(names: list[tuple[str, str]], current: str):
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": n, "context": {"cluster": c}} for n, c in names],
        "current-context": current,
    }
    outcome = _load(yaml.safe_dump(doc))
    if isinstance(outcome, Kubeconfig):
        assert outcome.current_context == (current or None)
        assert set(outcome.contexts) == {n for n, _ in names}
