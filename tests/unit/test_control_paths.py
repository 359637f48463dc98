"""The instance lock and runtime directory: one holder, stale locks taken over, private paths."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kportforward.control import paths
from kportforward.control.instance import AlreadyRunningError, claim
from tests.control_helpers import runtime_dir  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX locks and sockets")


def test_runtime_dir_is_private_and_keys_differ_by_config(tmp_path: Path) -> None:
    a = paths.paths_for(str(tmp_path / "a.yaml"))
    b = paths.paths_for(str(tmp_path / "b.yaml"))
    assert a.key != b.key and a.lock.parent == b.lock.parent
    assert stat.S_IMODE(os.stat(a.lock.parent).st_mode) == 0o700
    # The same file named another way is the same instance.
    os.chdir(tmp_path)
    assert paths.paths_for("a.yaml").key == a.key
    assert paths.paths_for(None).key != a.key


def test_runtime_dir_open_to_others_is_made_private_again() -> None:
    mine = Path(os.environ["XDG_RUNTIME_DIR"]) / "kportforward"
    mine.mkdir(mode=0o777)
    os.chmod(mine, 0o777)
    assert stat.S_IMODE(os.stat(paths.runtime_dir()).st_mode) == 0o700


def test_without_xdg_runtime_dir_a_per_user_temp_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kpftmp"))
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    assert paths.runtime_dir() == tmp / f"kportforward-{os.getuid()}"


def test_one_holder_then_release(tmp_path: Path) -> None:
    p = paths.paths_for(str(tmp_path / "c.yaml"))
    first, second = paths.InstanceLock(p), paths.InstanceLock(p)
    assert first.acquire() and not second.acquire()
    assert paths.lock_is_held(p.lock)
    first.release()
    assert not paths.lock_is_held(p.lock)
    assert second.acquire()
    second.release()


def test_claim_refuses_a_live_owner_with_its_pid(tmp_path: Path) -> None:
    config = str(tmp_path / "c.yaml")
    lock = claim(config)
    try:
        info = paths.find_instance(config)
        assert info is not None and info.pid == os.getpid()
        with pytest.raises(AlreadyRunningError) as exc:
            claim(config)
        assert f"already running (pid {os.getpid()} since" in str(exc.value)
        assert exc.value.exit_code == 2
    finally:
        lock.release()
    assert paths.find_instance(config) is None


HOLDER = """
import sys, time
from kportforward.control.instance import claim
claim(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


def test_a_sigkilled_owner_leaves_a_stale_lock_that_is_taken_over(tmp_path: Path) -> None:
    config = str(tmp_path / "c.yaml")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, config], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        info = paths.find_instance(config)
        assert info is not None and info.pid == proc.pid
        with pytest.raises(AlreadyRunningError):
            claim(config)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert paths.lock_is_held(paths.paths_for(config).lock) is False
        lock = claim(config)  # the file is still there, with the dead owner's pid in it
        assert paths.find_instance(config).pid == os.getpid()  # type: ignore[union-attr]
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_bare_lookup_finds_the_only_instance(tmp_path: Path) -> None:
    lock = claim(str(tmp_path / "only.yaml"))
    try:
        found = paths.find_instance(None)
        assert found is not None and found.pid == os.getpid()
        other = claim(str(tmp_path / "second.yaml"))
        assert paths.find_instance(None) is None  # two run: a bare lookup cannot choose
        other.release()
    finally:
        lock.release()
