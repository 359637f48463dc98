"""`init` writes a starter that loads and that `add` can append to; completion scripts in real
shells (bash always; zsh and fish when installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kportforward.commands.init import STARTER, write_starter
from kportforward.core.config import load_config
from kportforward.core.config_append import NewForward, append_forwards
from kportforward.errors import ConfigError


def test_init_never_overwrites_and_add_can_append(tmp_path: Path) -> None:
    path = tmp_path / "kportforward" / "config.yaml"
    write_starter(str(path))
    assert path.read_text() == STARTER
    assert load_config(str(path)).forwards == ()
    with pytest.raises(ConfigError, match="already there") as info:
        write_starter(str(path))
    assert info.value.exit_code == 2 and path.read_text() == STARTER
    append_forwards(str(path), [NewForward("web", "service/web", 80, 8080, "shop", "web")], "c")
    assert path.read_text().startswith(STARTER)
    assert [s.name for s in load_config(str(path)).forwards] == ["web"]


def script(shell: str) -> str:
    from kportforward.commands.completion import main

    class Args:
        pass

    args = Args()
    args.shell = shell  # type: ignore[attr-defined]
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_parse(shell: str, tmp_path: Path) -> None:
    exe = shutil.which(shell)
    if exe is None:
        if os.environ.get("KPORTFORWARD_REQUIRE_SHELLS") == "1":
            pytest.fail(f"{shell} not installed and KPORTFORWARD_REQUIRE_SHELLS=1")
        pytest.skip(f"{shell} not installed")
    path = tmp_path / f"kportforward.{shell}"
    path.write_text(script(shell))
    result = subprocess.run(
        [exe, "-n", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "kportforward" in path.read_text()
