"""The bad-input corpus: every file gives exit 2 and one line naming the file and the key or line.

Every file runs in-process through ``cli.main`` (fast); a representative sample also runs through
the real entry point in a subprocess, where a traceback or a second line would really show.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kportforward import cli
from kportforward.core import config_yaml
from kportforward.core.config import load_config
from tests.conftest import DATA, run_cli

BAD = DATA / "config" / "bad"

# file -> (line, key path) the message must name; None where a file has no line or key.
EXPECTED: dict[str, tuple[int | None, str | None]] = {
    "address_hostname.yaml": (6, "portForwards.api.address"),
    "binary_garbage.yaml": (1, None),
    "context_empty.yaml": (6, "portForwards.api.context"),
    "deep_nesting.yaml": (1, None),
    "control_character.yaml": (3, None),
    "disabled_string.yaml": (6, "portForwards.api.disabled"),
    "duplicate_forward_name.yaml": (6, "portForwards.api"),
    "duplicate_key.yaml": (6, "portForwards.api.localPort"),
    "duplicate_top_level_key.yaml": (7, "monitoringInterval"),
    "empty_forward_name.yaml": (2, "portForwards"),
    "entry_list.yaml": (3, "portForwards.api"),
    "entry_scalar.yaml": (2, "portForwards.api"),
    "forward_name_with_newline.yaml": (2, "portForwards.'api\\nserver'"),
    "group_boolean.yaml": (6, "portForwards.api.group"),
    "invalid_utf8.yaml": (3, None),
    "is_a_directory.yaml": (None, None),
    "kubeconfig_list.yaml": (6, "portForwards.api.kubeconfig"),
    "local_port_bool.yaml": (5, "portForwards.api.localPort"),
    "local_port_float.yaml": (5, "portForwards.api.localPort"),
    "local_port_list.yaml": (5, "portForwards.api.localPort"),
    "local_port_negative.yaml": (5, "portForwards.api.localPort"),
    "local_port_quoted.yaml": (5, "portForwards.api.localPort"),
    "local_port_too_big.yaml": (5, "portForwards.api.localPort"),
    "local_port_word.yaml": (5, "portForwards.api.localPort"),
    "local_port_zero.yaml": (5, "portForwards.api.localPort"),
    "merge_key_scalar.yaml": (4, "portForwards.api.<<"),
    "merge_missing_local_port.yaml": (5, "portForwards.api"),
    "missing_local_port.yaml": (2, "portForwards.api"),
    "missing_target.yaml": (2, "portForwards.api"),
    "missing_target_port.yaml": (2, "portForwards.api"),
    "monitoring_interval_negative.yaml": (6, "monitoringInterval"),
    "monitoring_interval_word.yaml": (6, "monitoringInterval"),
    "monitoring_interval_zero.yaml": (6, "monitoringInterval"),
    "namespace_invalid.yaml": (6, "portForwards.api.namespace"),
    "namespace_too_long.yaml": (6, "portForwards.api.namespace"),
    "portforwards_list.yaml": (2, "portForwards"),
    "portforwards_scalar.yaml": (1, "portForwards"),
    "refresh_rate_words.yaml": (7, "uiOptions.refreshRate"),
    "swagger_path_multiline.yaml": (6, "portForwards.api.swaggerPath"),
    "syntax_bad_indent.yaml": (4, None),
    "syntax_multiple_documents.yaml": (6, None),
    "syntax_tab_indent.yaml": (3, None),
    "syntax_unclosed_flow.yaml": (1, None),
    "syntax_unclosed_quote.yaml": (3, None),
    "target_bad_name.yaml": (5, "portForwards.api.target"),
    "target_empty.yaml": (5, "portForwards.api.target"),
    "target_mapping.yaml": (5, "portForwards.api.target"),
    "target_no_name.yaml": (5, "portForwards.api.target"),
    "target_null.yaml": (5, "portForwards.api.target"),
    "target_port_bad_name.yaml": (5, "portForwards.api.targetPort"),
    "target_port_name_too_long.yaml": (5, "portForwards.api.targetPort"),
    "target_port_too_big.yaml": (5, "portForwards.api.targetPort"),
    "target_unknown_kind.yaml": (5, "portForwards.api.target"),
    "theme_empty.yaml": (7, "uiOptions.theme"),
    "top_level_list.yaml": (1, "(top level)"),
    "top_level_scalar.yaml": (1, "(top level)"),
    "ui_options_list.yaml": (7, "uiOptions"),
    "undefined_alias.yaml": (3, None),
    "utf16_without_bom.yaml": (1, None),
}

# Through the real entry point: one per family (syntax, encoding, type, range, structure, merge).
SUBPROCESS_SAMPLE = [
    "syntax_unclosed_quote.yaml",
    "binary_garbage.yaml",
    "is_a_directory.yaml",
    "top_level_list.yaml",
    "local_port_too_big.yaml",
    "target_unknown_kind.yaml",
    "duplicate_key.yaml",
    "merge_missing_local_port.yaml",
]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in [*files, *_dirs]:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_mtime_ns, st.st_size)
    return out


def _assert_one_line(stderr: str, name: str, expected: tuple[int | None, str | None]) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip("\n").splitlines()
    assert len(lines) == 1, stderr
    line, key = expected
    assert name in lines[0]
    assert line is not None or key is not None or "directory" in lines[0]
    if line is not None:
        assert f"{name}:{line}:" in lines[0]
    if key is not None:
        assert f": {key}:" in lines[0]
    assert " — " in lines[0]  # a hint follows the problem


def test_the_corpus_is_complete() -> None:
    on_disk = sorted(p.name for p in BAD.iterdir())
    assert on_disk == sorted(EXPECTED)
    assert len(on_disk) >= 35


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_in_process(
    name: str, capsys: pytest.CaptureFixture[str], hermetic_env: Path
) -> None:
    before = _tree(hermetic_env)
    load_config.cache_clear()
    code = cli.main(["check", "--config", str(BAD / name)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    _assert_one_line(err, name, EXPECTED[name])
    assert _tree(hermetic_env) == before


@pytest.mark.parametrize("name", SUBPROCESS_SAMPLE)
def test_bad_file_through_the_real_entry_point(name: str, hermetic_env: Path) -> None:
    before = _tree(hermetic_env)
    result = run_cli("check", "--config", str(BAD / name))
    assert result.returncode == 2
    assert result.stdout == ""
    _assert_one_line(result.stderr, name, EXPECTED[name])
    assert _tree(hermetic_env) == before


def test_bad_user_file_via_env_var_through_the_real_entry_point(tmp_path: Path) -> None:
    result = run_cli(
        "check", "--json", env={"KPORTFORWARD_CONFIG": str(BAD / "missing_target.yaml")}
    )
    assert result.returncode == 2
    _assert_one_line(result.stderr, "missing_target.yaml", EXPECTED["missing_target.yaml"])


def test_missing_named_files_are_errors(tmp_path: Path) -> None:
    result = run_cli("check", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml: file not found" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_huge_file_is_refused_without_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as fh:  # sparse: costs no disk
        fh.truncate(config_yaml.MAX_CONFIG_BYTES + 1)
    assert cli.main(["check", "--config", str(huge)]) == 2
    err = capsys.readouterr().err
    assert "huge.yaml: file is too large" in err and len(err.splitlines()) == 1


def test_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "secret.yaml"
    cfg.write_text("portForwards: {}\n")
    if os.geteuid() != 0:
        cfg.chmod(0)
    else:  # root reads anything: make the open fail the way it would for a user

        def denied(*_args: object, **_kw: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(config_yaml, "open", denied, raising=False)
    assert cli.main(["check", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "secret.yaml: cannot read: permission denied" in err
    assert len(err.splitlines()) == 1


def test_a_path_through_a_file_and_a_fifo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert cli.main(["check", "--config", str(plain / "config.yaml")]) == 2
    assert "not a directory" in capsys.readouterr().err
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert cli.main(["check", "--config", str(fifo)]) == 2  # refused, never blocks on open
    assert "fifo.yaml: is not a regular file" in capsys.readouterr().err
