"""What a Go kportforward user relies on: lenient values, one bad forward failing alone, the Go
tool's config path, Go durations, and the YAML layer's guards (issues #17 and #18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kportforward.core import config_yaml
from kportforward.core.config import (
    config_sources,
    load_config,
    parse_config_text,
    target_kind,
    user_config_path,
)
from kportforward.core.config_fields import MAX_WARNINGS, TARGET_KINDS
from kportforward.core.durations import parse_duration
from kportforward.errors import ConfigError
from tests.conftest import DATA

GOOD = DATA / "config" / "good"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    load_config.cache_clear()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- leniency ----------------------------------------------------------------------------------


def test_go_valid_values_load_with_warnings_not_errors() -> None:
    config = load_config(GOOD / "go_lenient.yaml")
    assert config.rejected == ()
    users = config.forward("grpc-users")
    assert (users.type, users.namespace) == ("grpc", None)  # kept as written; "" = context's
    assert users.url == "localhost:9090"  # unknown types behave like other: no http://
    bare = config.forward("bare-pod")
    assert (bare.target, bare.type) == ("pod/legacy-0", "")
    kinds = {s.name: target_kind(s.target) for s in config.forwards}
    assert kinds["agent"] == "daemonset"
    assert kinds["migrate"] == "job"
    assert kinds["old"] == "replicationcontroller"
    assert config.settings.monitoring_interval == 5400.0
    texts = [str(w) for w in config.warnings]
    assert any("portForwards.grpc-users.type" in t and "did you mean 'rpc'" in t for t in texts)
    assert any("portForwards.bare-pod.type" in t and "empty type" in t for t in texts)


@pytest.mark.parametrize(
    ("kind", "canonical"),
    [
        ("daemonset", "daemonset"),
        ("daemonsets.apps", "daemonset"),
        ("ds", "daemonset"),
        ("job", "job"),
        ("jobs.batch", "job"),
        ("replicationcontroller", "replicationcontroller"),
        ("rc", "replicationcontroller"),
        ("deploy", "deployment"),
        ("statefulsets.apps", "statefulset"),
        ("po", "pod"),
    ],
)
def test_every_kind_kubectl_port_forwards_to(kind: str, canonical: str) -> None:
    assert TARGET_KINDS[kind] == canonical
    parsed = parse_config_text(f"portForwards:\n  a: {{target: {kind}/x}}\n")
    assert dict(parsed.forwards[0].fields)["target"].value == f"{kind}/x"


def test_a_bare_name_must_still_be_a_valid_object_name() -> None:
    (raw,) = parse_config_text("portForwards:\n  a: {target: Not_Valid}\n").forwards
    ((field, error),) = raw.errors
    assert field == "target" and "not a valid Kubernetes object name" in str(error)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("50ms", 0.05),
        ("300us", 0.0003),
        ("300µs", 0.0003),
        ("300μs", 0.0003),
        ("1500000000ns", 1.5),
        (".5s", 0.5),
        ("5.s", 5.0),
        ("+5s", 5.0),
        ("1h0m0s", 3600.0),
        ("2m 30s", 150.0),
        ("0", 0.0),
        ("25h", 90000.0),
        (3, 3.0),
        (0.5, 0.5),
    ],
)
def test_go_duration_forms(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "s", "1x", "1h-30m", "-1s", "--1s", "1.2.3s", "h1", "9" * 101, True, None]
)
def test_not_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_durations_outside_the_range_are_clamped_with_a_warning_naming_the_value() -> None:
    parsed = parse_config_text("monitoringInterval: 25h\nuiOptions: {refreshRate: 1ms}\n")
    values = {name: f.value for name, f in parsed.settings}
    assert values == {"monitoring_interval": 86400.0, "refresh_rate": 0.05}
    texts = [w.message for w in parsed.warnings]
    assert any("'25h'" in t and "using 24h" in t for t in texts)
    assert any("'1ms'" in t and "using 50ms" in t for t in texts)


def test_a_bare_number_duration_warns_what_the_go_tool_does() -> None:
    parsed = parse_config_text("monitoringInterval: 5\n")
    assert parsed.settings[0][1].value == 5.0
    (warning,) = parsed.warnings
    assert "read as 5s" in warning.message and "yaml.v3" in warning.message
    assert "refuses" in warning.message


@pytest.mark.parametrize("value", ["0", "0s", "-1s", "-5"])
def test_zero_and_negative_durations_stay_errors(value: str) -> None:
    with pytest.raises(ConfigError, match="monitoringInterval"):
        parse_config_text(f"monitoringInterval: {value}\n")


# --- one bad forward fails alone --------------------------------------------------------------


def test_a_bad_value_fails_that_forward_only(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.yaml",
        "portForwards:\n"
        "  good: {target: svc/good, targetPort: 80, localPort: 8080}\n"
        "  bad:\n"
        "    target: svc/bad\n"
        "    targetPort: 80\n"
        "    localPort: 70000\n"
        "  worse: {target: svc/w, targetPort: '²', localPort: 017}\n",
    )
    config = load_config(cfg)
    assert [s.name for s in config.forwards] == ["good"]
    assert [p.name for p in config.rejected] == ["bad", "worse"]
    bad, worse = config.rejected
    assert bad.message.startswith(f"{cfg}:6: portForwards.bad.localPort: port 70000 is out of")
    assert " — use a port from 1 to 65535" in bad.message
    assert "portForwards.worse.targetPort" in worse.message
    assert "| also" in worse.message and "octal" in worse.message
    assert load_config(cfg) is config  # the caching contract holds with rejections


def test_a_later_source_fixes_or_disables_a_bad_forward(tmp_path: Path, hermetic_env: Path) -> None:
    write(
        hermetic_env / ".config" / "kportforward" / "config.yaml",
        "portForwards:\n"
        "  a: {target: svc/a, targetPort: 80, localPort: 0}\n"
        "  b: {target: svc/b, targetPort: 80, localPort: 0}\n"
        "  c: [not, a, mapping]\n",
    )
    assert {p.name for p in load_config().rejected} == {"a", "b", "c"}
    flag = write(
        tmp_path / "fix.yaml",
        "portForwards:\n  a: {localPort: 8080}\n  b: {disabled: true}\n  c: {disabled: true}\n",
    )
    config = load_config(flag)
    assert config.rejected == ()
    assert [s.name for s in config.forwards] == ["a"]
    assert config.forward("a").local_port == 8080


def test_whole_file_problems_stay_config_errors(tmp_path: Path) -> None:
    for text in ("portForwards: [a]\n", "- a\n", "portForwards: {a: 1\n"):
        cfg = write(tmp_path / "c.yaml", text)
        load_config.cache_clear()
        with pytest.raises(ConfigError):
            load_config(cfg)


# --- the Go tool's config path ----------------------------------------------------------------


@pytest.fixture
def split_xdg(hermetic_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_CONFIG_HOME somewhere other than ~/.config, as on many desktops."""
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    return xdg


GO_FILE = "portForwards:\n  go: {target: svc/go, targetPort: 80, localPort: 8080}\n"
OUR_FILE = "portForwards:\n  ours: {target: svc/ours, targetPort: 80, localPort: 8081}\n"


def test_the_go_tools_file_is_used_when_ours_does_not_exist(
    hermetic_env: Path, split_xdg: Path
) -> None:
    go = write(hermetic_env / ".config" / "kportforward" / "config.yaml", GO_FILE)
    config = load_config()
    assert [s.name for s in config.forwards] == ["go"]
    assert config.sources[-1] == str(go)
    (warning,) = config.warnings
    assert str(go) in warning.message and "does not exist" in warning.message
    assert user_config_path() == go
    assert go in config_sources()
    # Ours appearing later wins at once (and the files differ: one warning says so).
    ours = write(split_xdg / "kportforward" / "config.yaml", OUR_FILE)
    config = load_config()
    assert [s.name for s in config.forwards] == ["ours"]
    (warning,) = config.warnings
    assert "differs" in warning.message and str(ours) in warning.message
    # Once per process: a reload after an edit does not repeat it.
    write(ours, OUR_FILE.replace("8081", "8082"))
    config = load_config()
    assert config.forward("ours").local_port == 8082
    assert config.warnings == ()


def test_identical_files_at_both_paths_say_nothing(hermetic_env: Path, split_xdg: Path) -> None:
    write(hermetic_env / ".config" / "kportforward" / "config.yaml", OUR_FILE)
    write(split_xdg / "kportforward" / "config.yaml", OUR_FILE)
    config = load_config()
    assert config.warnings == ()
    assert load_config() is config


# --- the YAML layer ---------------------------------------------------------------------------


def test_nested_merges_are_resolved_once() -> None:
    lines = ["x-a0: &a0 {namespace: a}"]
    for i in range(1, 12):
        lines.append(f"x-a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 12)}]}}")
    lines.append("portForwards:\n  x:\n    <<: *a11\n    target: pod/x\n    targetPort: 1")
    lines.append("    localPort: 2")
    # 12 levels of 12 copies would be 12**11 walks without the memo; with it, a few hundred.
    parsed = parse_config_text("\n".join(lines) + "\n")
    assert dict(parsed.forwards[0].fields)["namespace"].value == "a"


def test_merge_output_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_yaml, "MAX_MERGED_KEYS", 50)
    keys = ", ".join(f"namespace{i}: a" for i in range(20))
    text = f"x-big: &big {{{keys}}}\nportForwards:\n" + "".join(
        f"  f{i}: {{<<: *big}}\n" for i in range(5)
    )
    with pytest.raises(ConfigError, match="merges expand to more than 50 keys"):
        parse_config_text(text)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0x_", "not an integer"),
        ("!!int abc", "not an integer"),
        ("!!int ''", "not an integer"),
        ("!!float abc", "not a number"),
        ("017", "octal"),
        ("7:38:20", "base-60"),
        ("9" * 5000, "5000-digit"),
    ],
)
def test_constructor_errors_name_file_line_and_key(value: str, words: str) -> None:
    text = f"portForwards:\n  a:\n    target: pod/a\n    targetPort: 1\n    localPort: {value}\n"
    (raw,) = parse_config_text(text, "f.yaml").forwards
    ((field, error),) = raw.errors
    assert field == "local_port"
    assert (error.path, error.line, error.key) == ("f.yaml", 5, "portForwards.a.localPort")
    assert words in str(error)


def test_quoted_forms_are_the_fix_the_hint_gives() -> None:
    (raw,) = parse_config_text("portForwards:\n  a: {target: pod/a, targetPort: '017'}\n").forwards
    assert dict(raw.fields)["target_port"].value == 17


def test_warnings_are_bounded_and_suggestions_limited() -> None:
    text = "".join(f"lcalPort{i}: 1\n" for i in range(500))
    parsed = parse_config_text(text)
    assert len(parsed.warnings) == MAX_WARNINGS + 1
    assert parsed.warnings[-1].message == f"and {500 - MAX_WARNINGS} more warnings (not shown)"
    assert sum("did you mean" in w.message for w in parsed.warnings) <= 10


@pytest.mark.timeout(60)  # a hang guard, not a speed assertion (benchmarks measure speed)
def test_ten_megabytes_of_unknown_keys_give_a_bounded_result(tmp_path: Path) -> None:
    cfg = tmp_path / "unknown.yaml"
    line = "an-unknown-key-{:07d}: some value\n"
    count = (config_yaml.MAX_CONFIG_BYTES - 100) // len(line.format(0))
    cfg.write_text("".join(line.format(i) for i in range(count)))
    config = load_config(cfg)
    assert len(config.warnings) <= MAX_WARNINGS + 1
    assert f"and {count - MAX_WARNINGS} more" in config.warnings[-1].message
