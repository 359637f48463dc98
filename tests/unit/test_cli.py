"""The CLI's cheapest promises: version, help, argument errors, and the import rule."""

from __future__ import annotations

import subprocess
import sys

from kportforward import __version__
from tests.conftest import run_cli


def test_version_flag_and_command_print_the_version() -> None:
    for args in (["--version"], ["version"]):
        result = run_cli(*args)
        assert result.returncode == 0
        assert result.stdout.strip() == f"kportforward {__version__}"


def test_unknown_flag_is_one_line_exit_2() -> None:
    result = run_cli("--no-such-flag")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--no-such-flag" in result.stderr


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for name in ("demo", "run", "check", "sim", "profile", "version"):
        assert f"\n    {name} " in result.stdout


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_version_and_help_import_neither_textual_nor_kubernetes() -> None:
    for argv in (["--version"], ["version"], ["--help"]):
        code = (
            "import contextlib, io, sys\n"
            "from kportforward.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try: main({argv!r})\n"
            "    except SystemExit: pass\n"
        )
        loaded = _modules_after(code)
        assert "textual" not in loaded, argv
        assert "kubernetes" not in loaded, argv


def test_non_ui_layers_never_import_textual() -> None:
    code = (
        "import importlib, pkgutil, kportforward\n"
        "for pkg in ('core', 'kube', 'supervisor', 'sim'):\n"
        "    try:\n"
        "        mod = importlib.import_module('kportforward.' + pkg)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    for info in pkgutil.walk_packages(mod.__path__, mod.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "import kportforward.errors, kportforward.cli\n"
        "try:\n"
        "    import kportforward.profiling\n"
        "except ModuleNotFoundError:\n"
        "    pass\n"
    )
    loaded = _modules_after(code)
    assert "textual" not in loaded
    assert any(m.startswith("kportforward.core") for m in loaded)
