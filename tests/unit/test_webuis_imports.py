"""Import hygiene of the web UI pieces: the one-way rule, and heavy optional packages loaded only
when used (so `kportforward --help` and the dashboard pay nothing for them)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kportforward

PACKAGE = Path(kportforward.__file__).parent


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(out.split())


def test_non_ui_pieces_load_neither_textual_nor_their_optional_packages() -> None:
    loaded = _modules_after(
        "import kportforward.webui, kportforward.grpcclient, kportforward.supervisor.grpcui\n"
        "import kportforward.sim.backends, kportforward.sim.openapi"
    )
    assert "kportforward.webui.server" in loaded and "kportforward.grpcclient" in loaded
    for heavy in ("textual", "grpc", "grpc_reflection", "google.protobuf", "swagger_ui_bundle"):
        assert heavy not in loaded, heavy


def test_sim_modules_import_nothing_of_ours_outside_sim() -> None:
    names = ("openapi.py", "grpcsim.py", "backends.py")
    assert all((PACKAGE / "sim" / n).is_file() for n in names)
    for name in names:
        tree = ast.parse((PACKAGE / "sim" / name).read_text())
        imported = [
            node.module or ""
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0
        ] + [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        ]
        ours = [m for m in imported if m.startswith("kportforward")]
        assert all(m.startswith("kportforward.sim") for m in ours), (name, ours)


def test_grpc_screen_is_the_only_textual_user() -> None:
    for path in (PACKAGE / "webui").glob("*.py"):
        assert "textual" not in path.read_text(), path
    assert "textual" not in (PACKAGE / "grpcclient.py").read_text()
    assert "textual" not in (PACKAGE / "supervisor" / "grpcui.py").read_text()
