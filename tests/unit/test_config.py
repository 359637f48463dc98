"""Parsing, merging, precedence and the source paths of the config loader."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from kportforward.core import config as config_mod
from kportforward.core.config import (
    EMBEDDED,
    config_sources,
    load_config,
    parse_config_text,
    target_kind,
    user_config_path,
)
from kportforward.core.models import Config, ForwardSpec, Settings
from kportforward.errors import ConfigError
from tests.conftest import DATA, REPO

GOOD = DATA / "config" / "good"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    load_config.cache_clear()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def user_file(home: Path, text: str) -> Path:
    return write(home / ".config" / "kportforward" / "config.yaml", text)


def test_defaults_alone_give_no_forwards_and_the_documented_settings() -> None:
    config = load_config()
    assert config.forwards == ()
    assert config.settings == Settings(monitoring_interval=1.0, refresh_rate=0.25, theme="dark")
    assert config.sources == (EMBEDDED,)
    assert config.warnings == ()


def test_a_go_tool_config_loads_unchanged() -> None:
    config = load_config(GOOD / "go_tool_config.yaml")
    assert [s.name for s in config.forwards] == ["api", "frontend", "users-grpc"]  # sorted
    api = config.forward("api")
    assert api == ForwardSpec(
        name="api",
        target="service/api",
        target_port=80,
        local_port=8080,
        namespace="default",
        type="rest",
        swagger_path="docs/swagger.json",
        api_path="api",
    )
    assert config.settings == Settings(monitoring_interval=5.0, refresh_rate=1.0, theme="light")
    assert config.warnings == ()


def test_every_key_is_read(tmp_path: Path) -> None:
    config = load_config(GOOD / "all_keys.yaml")
    spec = config.forward("everything")
    assert spec.target == "statefulset/db"
    assert spec.target_port == "postgres"
    assert spec.local_port == 15432
    assert spec.namespace == "data"
    assert (spec.swagger_path, spec.api_path) == ("openapi.yaml", "v1")
    assert (spec.context, spec.group, spec.address) == ("staging", "storage", "::1")
    # A relative kubeconfig is relative to the config file that names it.
    assert spec.kubeconfig == str(GOOD / "kube" / "staging.yaml")
    assert config.settings.monitoring_interval == 90.0
    assert config.settings.refresh_rate == 0.5
    assert config.settings.theme == "nord"


def test_defaults_of_optional_keys(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.yaml", "portForwards:\n  a: {target: pod/a, targetPort: 1, localPort: 2}\n"
    )
    spec = load_config(cfg).forward("a")
    assert spec.namespace is None
    assert spec.type == "other"
    assert spec.address == "127.0.0.1"
    assert (spec.context, spec.kubeconfig, spec.group) == (None, None, None)
    assert (spec.swagger_path, spec.api_path) == (None, None)


def test_anchors_and_merge_keys() -> None:
    config = load_config(GOOD / "anchors_and_merge.yaml")
    cart, orders, payments = config.forwards
    assert (cart.namespace, cart.type, cart.target_port) == ("shop", "rest", "http")
    assert orders.namespace == "orders"
    assert (payments.type, payments.group, payments.namespace) == ("rpc", "backend", "shop")
    assert config.warnings == ()  # x-* keys are not "unknown"


def test_every_target_kind_alias_is_accepted() -> None:
    config = load_config(GOOD / "every_kind.yaml")
    assert len(config.forwards) == 13
    kinds = {target_kind(s.target) for s in config.forwards}
    assert kinds == {"service", "deployment", "statefulset", "replicaset", "pod"}


@pytest.mark.parametrize("name", ["empty.yaml", "comments_only.yaml", "nulls.yaml"])
def test_empty_and_null_sections_are_fine(name: str) -> None:
    config = load_config(GOOD / name)
    assert config.forwards == ()


def test_utf8_bom_is_accepted() -> None:
    assert load_config(GOOD / "utf8_bom.yaml").forward("api").local_port == 8080


def test_warnings_name_file_line_and_key_with_a_suggestion() -> None:
    warnings = load_config(GOOD / "warnings.yaml").warnings
    texts = [str(w) for w in warnings]
    assert any(
        "warnings.yaml:7: portForwards.api.namespce" in t and "did you mean 'namespace'" in t
        for t in texts
    )
    shared = [w for w in warnings if "also used by 'api'" in w.message]
    assert shared and shared[0].key == "portForwards.web.localPort" and shared[0].line == 11
    assert any("exposes" in w.message and w.key == "portForwards.web.address" for w in warnings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("monitoringInterval: 500ms", 0.5),
        ("monitoringInterval: 2s", 2.0),
        ("monitoringInterval: 1m", 60.0),
        ("monitoringInterval: 1m30s", 90.0),
        ("monitoringInterval: 3", 3.0),
        ("monitoringInterval: 0.5", 0.5),
        ("monitoringInterval: '250ms'", 0.25),
    ],
)
def test_durations(text: str, expected: float) -> None:
    assert parse_config_text(text).settings[0][1].value == expected


def test_type_is_case_insensitive_and_target_port_digits_become_numbers(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.yaml",
        "portForwards:\n  a: {target: Service/a, targetPort: '8080', localPort: 2, type: REST}\n",
    )
    spec = load_config(cfg).forward("a")
    assert (spec.type, spec.target_port, target_kind(spec.target)) == ("rest", 8080, "service")


# --- merging and precedence ------------------------------------------------------------------


def test_user_file_then_config_flag_later_wins(hermetic_env: Path, tmp_path: Path) -> None:
    user_file(
        hermetic_env,
        "portForwards:\n"
        "  api: {target: service/api, targetPort: 80, localPort: 8080, namespace: dev}\n"
        "  db: {target: sts/db, targetPort: 5432, localPort: 5432}\n"
        "monitoringInterval: 2s\n",
    )
    flag = write(
        tmp_path / "override.yaml",
        "portForwards:\n  api:\n    localPort: 9090\n  db:\n    disabled: true\n"
        "uiOptions: {theme: light}\n",
    )
    base = load_config()
    assert [s.name for s in base.forwards] == ["api", "db"]
    merged = load_config(flag)
    api = merged.forward("api")
    # Field by field: only localPort changed, namespace kept from the user file.
    assert (api.local_port, api.namespace, api.target) == (9090, "dev", "service/api")
    with pytest.raises(KeyError):
        merged.forward("db")
    assert merged.settings.monitoring_interval == 2.0
    assert merged.settings.theme == "light"
    assert merged.settings.refresh_rate == 0.25  # from the embedded defaults
    assert merged.sources == (EMBEDDED, str(user_config_path()), str(flag))


def test_a_later_source_can_re_enable_and_null_clears_an_optional_key(tmp_path: Path) -> None:
    first = write(
        tmp_path / "a.yaml",
        "portForwards:\n  x: {target: pod/x, targetPort: 1, localPort: 2, disabled: true, "
        "namespace: ns, group: g}\n",
    )
    os.environ["KPORTFORWARD_CONFIG"] = str(first)
    try:
        assert load_config().forwards == ()
        second = write(tmp_path / "b.yaml", "portForwards:\n  x: {disabled: false, group: null}\n")
        spec = load_config(second).forward("x")
        assert (spec.namespace, spec.group) == ("ns", None)
    finally:
        del os.environ["KPORTFORWARD_CONFIG"]


def test_an_incomplete_override_of_an_unknown_name_fails_that_forward_only(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.yaml",
        "portForwards:\n  nothere:\n    localPort: 9090\n"
        "  ok: {target: pod/ok, targetPort: 1, localPort: 2}\n",
    )
    config = load_config(cfg)
    assert [s.name for s in config.forwards] == ["ok"]
    (problem,) = config.rejected
    assert problem.name == "nothere"
    assert f"{cfg}:2: portForwards.nothere: missing required keys target, targetPort" in (
        problem.message
    )


def test_a_disabled_stub_needs_no_other_keys(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "portForwards:\n  old: {disabled: true}\n")
    assert load_config(cfg).forwards == ()


# --- where the files are ---------------------------------------------------------------------


def test_user_path_env_var_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    named = write(
        tmp_path / "named.yaml",
        "portForwards:\n  a: {target: pod/a, targetPort: 1, localPort: 2}\n",
    )
    monkeypatch.setenv("KPORTFORWARD_CONFIG", str(named))
    assert user_config_path() == named
    assert load_config().forward("a").local_port == 2
    assert config_sources() == [named]


def test_user_path_xdg_then_home(monkeypatch: pytest.MonkeyPatch, hermetic_env: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "/somewhere/xdg")
    assert user_config_path() == Path("/somewhere/xdg/kportforward/config.yaml")
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    assert user_config_path() == hermetic_env / ".config" / "kportforward" / "config.yaml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert user_config_path() == hermetic_env / ".config" / "kportforward" / "config.yaml"


def test_windows_uses_appdata(monkeypatch: pytest.MonkeyPatch) -> None:
    from kportforward.core import config_paths

    monkeypatch.setattr(config_paths, "WINDOWS", True)
    path, required, _ = config_paths.user_paths({"APPDATA": "C:/Users/me/AppData/Roaming"})
    assert Path(path or "") == Path("C:/Users/me/AppData/Roaming/kportforward/config.yaml")
    assert required is False


def test_missing_default_user_file_is_fine_but_named_files_must_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert load_config().forwards == ()
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    monkeypatch.setenv("KPORTFORWARD_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"missing\.yaml: file not found"):
        load_config()


def test_config_sources_lists_files_to_watch_even_if_missing(
    hermetic_env: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "f.yaml"
    assert config_sources(flag) == [user_config_path(), flag]
    assert config_sources() == [hermetic_env / ".config" / "kportforward" / "config.yaml"]


# --- immutability and the embedded defaults --------------------------------------------------


def test_results_are_immutable(tmp_path: Path) -> None:
    config = load_config(GOOD / "go_tool_config.yaml")
    assert isinstance(config, Config) and isinstance(config.forwards, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.forwards[0].local_port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.settings = Settings()  # type: ignore[misc]
    assert load_config(GOOD / "go_tool_config.yaml").forward("api").local_port == 8080


def test_checkout_fallback_for_the_embedded_defaults() -> None:
    path, text = config_mod._defaults_file()
    # In an editable install the file is not inside the package; the checkout's copy is used.
    assert Path(path) in (
        REPO / "default_config.yaml",
        REPO / "kportforward" / "default_config.yaml",
    )
    assert "monitoringInterval" in text


def test_packaged_defaults_are_preferred(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The wheel force-includes default_config.yaml inside the package; simulate that layout.
    (tmp_path / "default_config.yaml").write_text("monitoringInterval: 7s\n")

    class FakeResources:
        @staticmethod
        def files(package: str) -> Path:
            assert package == "kportforward"
            return tmp_path

    monkeypatch.setattr(config_mod, "resources", FakeResources)
    assert config_mod._defaults_file()[0] == str(tmp_path / "default_config.yaml")
    assert load_config().settings.monitoring_interval == 7.0


def test_default_config_yaml_examples_are_valid_when_uncommented() -> None:
    text = (REPO / "default_config.yaml").read_text()
    lines = text.splitlines()
    start = lines.index("# Examples (copy into your own config file):")
    examples = []
    for line in lines[start + 2 :]:
        if not line.startswith("#  "):
            break
        examples.append("  " + line[3:])
    parsed = parse_config_text("portForwards:\n" + "\n".join(examples) + "\n")
    assert [f.name for f in parsed.forwards] == ["api", "grpc-users", "legacy"]
    assert parsed.warnings == ()


def test_relative_kubeconfig_is_resolved_against_a_relative_config_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "conf" / "c.yaml",
        "portForwards:\n  a: {target: pod/a, targetPort: 1, localPort: 2, kubeconfig: k.yaml}\n",
    )
    monkeypatch.chdir(tmp_path)
    spec = load_config("conf/c.yaml").forward("a")
    assert spec.kubeconfig == str(tmp_path / "conf" / "k.yaml")


def test_deep_but_legitimate_flow_style_is_accepted(tmp_path: Path) -> None:
    # Many flow mappings trigger the depth scan; a flat file passes it.
    body = "".join(
        f"  f{i}: {{target: pod/a, targetPort: 1, localPort: {1000 + i}}}\n" for i in range(1500)
    )
    assert len(load_config(write(tmp_path / "c.yaml", "portForwards:\n" + body)).forwards) == 1500
