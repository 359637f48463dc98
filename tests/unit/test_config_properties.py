"""Property tests: any input to the config loader or the duration parser yields a result or the
project's own error, never another exception, and within a time bound (hypothesis' deadline)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kportforward.core.config import merge, parse_config_text
from kportforward.core.config_yaml import decode
from kportforward.core.durations import parse_duration
from kportforward.core.models import Config
from kportforward.errors import ConfigError

SETTINGS = settings(
    max_examples=300,
    database=None,  # hermetic: no .hypothesis directory in the checkout
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
)

KEYS = [
    "portForwards",
    "monitoringInterval",
    "uiOptions",
    "configUrl",
    "target",
    "targetPort",
    "localPort",
    "namespace",
    "type",
    "disabled",
    "address",
    "kubeconfig",
    "refreshRate",
    "<<",
    "x-a",
]
SCALARS = st.one_of(
    st.sampled_from(
        [
            "0x_",
            "0b_",
            "017",
            "7:38:20",
            "!!int abc",
            "!!bool maybe",
            "!!float abc",
            "'²'",
            ".inf",
            ".nan",
            "-.inf",
            "~",
            "''",
            "yes",
            "no",
            "1h30m",
            "25h",
            "50ms",
            "300us",
            "-5s",
            "0",
            "1e400",
            "9" * 50,
            "svc/a",
            "a",
            "ds/x",
            "job/x",
            "bogus/x",
            "http",
            "*a",
            "&a x",
            "[1, 2]",
            "{a: 1}",
            "https://example.com/c.yaml",
            "http://127.0.0.1/x",
        ]
    ),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=20).map(lambda s: yaml.safe_dump(s).strip().removesuffix("...").strip()),
)


@st.composite
def config_documents(draw: st.DrawFn) -> str:
    """YAML documents shaped like configs, with hostile values where values go."""
    forwards = draw(
        st.dictionaries(
            st.text("abcxyz-", min_size=1, max_size=5),
            st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=6),
            max_size=4,
        )
    )
    lines = ["x-a: &a {namespace: shop, type: rest}"] if draw(st.booleans()) else []
    lines.append("portForwards:")
    for name, fields in forwards.items():
        lines.append(f"  {name}:")
        lines += [f"    {key}: {value}" for key, value in fields.items()]
    for key, value in draw(st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=3)).items():
        if key != "portForwards":
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def _load(text: str) -> Config | None:
    try:
        return merge([parse_config_text(text, "prop.yaml")])
    except ConfigError as exc:
        assert "\n" not in str(exc)  # one line, always
        return None


@SETTINGS
@given(config_documents())
def test_config_shaped_documents(text: str) -> None:
    config = _load(text)
    if config is not None:
        for problem in config.rejected:
            assert "\n" not in problem.message and problem.message.startswith("prop.yaml:")
        assert not {s.name for s in config.forwards} & {p.name for p in config.rejected}


@SETTINGS
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    _load(text)


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes(data: bytes) -> None:
    try:
        text = decode(data, "prop.yaml")
    except ConfigError:
        return
    _load(text)


DURATION_TEXT = st.one_of(
    st.text(max_size=30),
    st.text("0123456789.+-hmsuµnμ ", max_size=30),
    st.from_regex(r"[+-]?(\d{0,25}(\.\d{0,5})?(ns|us|µs|ms|s|m|h)){1,4}", fullmatch=True),
)


@SETTINGS
@given(st.one_of(DURATION_TEXT, st.integers(), st.floats(), st.booleans(), st.none()))
def test_duration_parser(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        assert str(exc)
        return
    assert 0 <= seconds <= 2**63 / 1e9


@pytest.mark.parametrize("text", ["1h30m", "1.5h", "90m", "5400s", "5400000ms"])
def test_equal_durations_are_equal(text: str) -> None:
    assert parse_duration(text) == pytest.approx(5400.0)
