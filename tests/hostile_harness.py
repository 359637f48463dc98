"""Running the real CLI on hostile input, the way an attacker or an unlucky user would.

Each case runs ``python -m kportforward …`` in a subprocess with a hard wall-time limit (a hang is
killed, with its whole process group, and reported as a failure, never a stuck run) and an address-
space limit (RLIMIT_AS, so "reads until memory runs out" fails fast instead of taking the machine
down). ``assert_refused`` then checks what must hold: exit 2, exactly one line on stderr starting
``kportforward: error:``, no traceback anywhere, and no file created, changed or removed in the
watched directories.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

WALL_SECONDS = 30.0
"""A case that runs longer than this is a hang: killed and failed."""
ADDRESS_SPACE = 1 << 30
"""RLIMIT_AS of every case: 1 GiB (an idle kportforward uses well under 200 MB of it)."""

Snapshot = dict[str, tuple[int, int, int, int]]


def snapshot(*roots: Path) -> Snapshot:
    """Every entry under ``roots`` (not following links) as path -> (mode, size, mtime_ns, ino)."""
    out: Snapshot = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for name in [*dirnames, *filenames]:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                out[path] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def _limits() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@dataclass
class Outcome:
    """What one hostile run did."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    changes: list[str] = field(default_factory=list)
    """Paths created, changed or removed under the watched directories."""


def run_hostile(
    args: list[str],
    *,
    watch: list[Path],
    env: dict[str, str] | None = None,
    wall: float = WALL_SECONDS,
    pass_fds: tuple[int, ...] = (),
) -> Outcome:
    """Run the CLI on ``args`` under the limits; fail the test if it hangs."""
    before = snapshot(*watch)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kportforward", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        preexec_fn=_limits,
        start_new_session=True,
        pass_fds=pass_fds,
    )
    try:
        out, err = proc.communicate(timeout=wall)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group: this run and anything it started
        proc.communicate()
        pytest.fail(f"hung for {wall:g}s: kportforward {' '.join(args)}")
    after = snapshot(*watch)
    changes = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    return Outcome(args, proc.returncode, out.decode("utf-8", "replace"),
                   err.decode("utf-8", "replace"), changes)  # fmt: skip


def assert_refused(outcome: Outcome, *must_contain: str, secrets: tuple[str, ...] = ()) -> str:
    """Exit 2, one line on stderr naming what it must, no traceback, nothing on disk touched."""
    text = outcome.stdout + outcome.stderr
    assert "Traceback" not in text, text
    assert outcome.returncode == 2, (outcome.returncode, outcome.stderr)
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr
    line = lines[0]
    assert line.startswith("kportforward: error: "), line
    assert " — " in line, f"no hint: {line}"
    for part in must_contain:
        assert part in line, f"{part!r} not in {line!r}"
    for secret in secrets:
        assert secret not in text, f"leaked {secret!r}"
    assert not outcome.changes, f"files changed: {outcome.changes}"
    return line
