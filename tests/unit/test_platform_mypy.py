"""The whole package type-checks for Linux, macOS and Windows.

typeshed knows which ``os``/``signal``/``socket`` names exist on which platform (``os.killpg``,
``signal.SIGKILL``, ``termios`` are not on Windows; ``socket.SO_EXCLUSIVEADDRUSE`` and
``signal.CTRL_BREAK_EVENT`` only are), so ``mypy --platform win32`` finds every platform-specific
call that is not behind a ``sys.platform`` check mypy understands. No Windows or macOS machine runs
these tests; this is how their code paths are kept honest.

The three runs go in parallel, each with its own cache (the platform is part of mypy's cache key).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = ("linux", "darwin", "win32")


@pytest.mark.timeout(300)
def test_mypy_is_clean_for_every_platform(tmp_path_factory: pytest.TempPathFactory) -> None:
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.fail("mypy is not installed: it belongs in the `test` extra of pyproject.toml")
    cache = tmp_path_factory.mktemp("mypy-cache")
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "mypy", "--platform", name, "--cache-dir", str(cache / name)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in PLATFORMS
    }
    failures = []
    try:
        for name, proc in runs.items():
            out, _ = proc.communicate(timeout=280)
            if proc.returncode != 0:
                failures.append(f"--platform {name}:\n{out}")
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert not failures, "\n".join(failures)
