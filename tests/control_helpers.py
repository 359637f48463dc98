"""Shared by the control tests: a short private runtime dir for each test's lock and socket.

Import ``runtime_dir`` into a test module to use it (it is autouse there). Short on purpose: a
Unix socket path must fit in ~104 bytes, and pytest's tmp_path can be long.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``XDG_RUNTIME_DIR`` → a fresh ``/tmp/kpfrt…`` directory, removed after the test."""
    base = Path(tempfile.mkdtemp(prefix="kpfrt"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    yield base
    shutil.rmtree(base, ignore_errors=True)
