"""The cached loader: hits, misses, and edits seen on the very next call."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kportforward.core.config import load_config
from kportforward.errors import ConfigError


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    load_config.cache_clear()


def forward(port: int, name: str = "api") -> str:
    return f"portForwards:\n  {name}: {{target: service/api, targetPort: 80, localPort: {port}}}\n"


def test_a_hit_returns_the_same_object_and_counts(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(forward(8080))
    first = load_config(cfg)
    assert load_config.cache_info()[:2] == (0, 1)
    for _ in range(3):
        assert load_config(cfg) is first
    info = load_config.cache_info()
    assert (info.hits, info.misses, info.entries) == (3, 1, 1)
    load_config.cache_clear()
    assert load_config.cache_info() == (0, 0, 0)
    assert load_config(cfg) is not first
    assert load_config(cfg) == first


def test_an_edit_with_the_same_size_and_explicit_new_mtime_is_seen(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(forward(8080))
    assert load_config(cfg).forward("api").local_port == 8080
    before = os.stat(cfg)
    # Same size, written in place (same inode); then a different mtime in ns, set explicitly so
    # coarse file-system clocks cannot make the test flaky.
    with open(cfg, "r+") as fh:
        fh.write(forward(9090))
    os.utime(cfg, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000))
    after = os.stat(cfg)
    assert (after.st_size, after.st_ino) == (before.st_size, before.st_ino)
    assert load_config(cfg).forward("api").local_port == 9090


def test_a_real_edit_is_seen_on_the_next_call(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(forward(8080))
    assert load_config(cfg).forward("api").local_port == 8080
    cfg.write_text(forward(8080) + "monitoringInterval: 3s\n")  # in place, new size
    assert load_config(cfg).settings.monitoring_interval == 3.0
    # An editor's atomic save: a new file renamed over the old one, same size as before.
    tmp = tmp_path / "c.yaml.swp"
    tmp.write_text(forward(8080) + "monitoringInterval: 4s\n")
    os.replace(tmp, cfg)
    assert load_config(cfg).settings.monitoring_interval == 4.0
    # An edit that keeps size, inode and even restores the mtime still changes ctime.
    before = os.stat(cfg)
    with open(cfg, "r+") as fh:
        fh.write(forward(8181))
    # ctime comes from a coarse clock: re-touch until it has moved on (a condition, not a sleep).
    deadline = time.monotonic() + 5
    os.utime(cfg, ns=(before.st_atime_ns, before.st_mtime_ns))
    while os.stat(cfg).st_ctime_ns == before.st_ctime_ns and time.monotonic() < deadline:
        os.utime(cfg, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load_config(cfg).forward("api").local_port == 8181


def test_the_user_file_appearing_later_is_picked_up(hermetic_env: Path) -> None:
    assert load_config().forwards == ()
    user = hermetic_env / ".config" / "kportforward" / "config.yaml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text(forward(7070))
    assert load_config().forward("api").local_port == 7070
    user.unlink()
    assert load_config().forwards == ()


def test_environment_changes_select_another_user_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(forward(1111))
    b.write_text(forward(2222))
    monkeypatch.setenv("KPORTFORWARD_CONFIG", str(a))
    assert load_config().forward("api").local_port == 1111
    monkeypatch.setenv("KPORTFORWARD_CONFIG", str(b))
    assert load_config().forward("api").local_port == 2222
    monkeypatch.delenv("KPORTFORWARD_CONFIG")
    assert load_config().forwards == ()


def test_errors_are_cached_too_and_a_fix_is_seen(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("portForwards: [api]\n")
    for _ in range(2):
        with pytest.raises(ConfigError, match="expected a mapping of forward names") as info:
            load_config(cfg)
        assert info.value.line == 1
    assert load_config.cache_info()[:2] == (1, 1)
    cfg.write_text(forward(8080))
    assert load_config(cfg).forward("api").local_port == 8080


def test_an_unchanged_user_file_is_not_reparsed_when_the_flag_file_changes(
    hermetic_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kportforward.core import config as config_mod

    user = hermetic_env / ".config" / "kportforward" / "config.yaml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text(forward(1000, "u"))
    flag = tmp_path / "f.yaml"
    flag.write_text(forward(2000, "f"))
    load_config(flag)
    parsed: list[str] = []
    real = config_mod._parse_file
    monkeypatch.setattr(config_mod, "_parse_file", lambda p: parsed.append(p) or real(p))
    flag.write_text(forward(30000, "f"))  # a new size: seen whatever the clock granularity
    config = load_config(flag)
    assert [s.local_port for s in config.forwards] == [30000, 1000]
    assert parsed == [str(flag)]
