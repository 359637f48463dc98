"""safeio, owned temporary directories and the kubeconfig watcher on hostile files (issue #18)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kportforward.errors import BadInputError, KubeconfigError
from kportforward.kube.kubeconfig import KubeconfigWatcher, kubeconfig_paths
from kportforward.kube.kubeconfig_yaml import parse_document
from kportforward.logs import SafeFileHandler, redact, redact_strict
from kportforward.owned import OWNER_FILE, make_owned_dir, me, sweep_stale_dirs
from kportforward.safeio import open_output_file, read_user_file

KC = """\
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: one
  context: {cluster: c}
- name: two
  context: {cluster: c}
current-context: one
"""


def _read(path: str | Path, **kw) -> bytes | None:  # type: ignore[no-untyped-def]
    return read_user_file(path, what="thing", **kw)


def test_a_regular_file_is_read_and_a_missing_one_may_be_none(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"hello")
    assert _read(f) == b"hello"
    assert _read(tmp_path / "nope", missing_ok=True) is None
    with pytest.raises(BadInputError, match="does not exist"):
        _read(tmp_path / "nope")


def test_a_named_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BadInputError, match="named pipe"):
        _read(fifo)  # would block forever on open() before #18; the test timeout catches that


def test_an_inherited_pipe_is_read_once_and_remembered() -> None:
    read, write = os.pipe()
    try:
        os.write(write, b"kind: Config\n")
        os.close(write)
        path = f"/dev/fd/{read}"
        assert _read(path) == b"kind: Config\n"
        assert _read(path) == b"kind: Config\n"  # the pipe is empty now: the bytes are remembered
    finally:
        os.close(read)


def test_a_pipe_that_never_ends_times_out() -> None:
    read, write = os.pipe()
    try:
        os.write(write, b"partial")
        with pytest.raises(BadInputError, match=r"did not finish within 0\.3s"):
            _read(f"/dev/fd/{read}", timeout=0.3)
    finally:
        os.close(read)
        os.close(write)


def test_a_pipe_larger_than_the_cap_is_refused() -> None:
    read, write = os.pipe()
    try:
        writer = threading.Thread(target=lambda: os.write(write, b"x" * 20000), daemon=True)
        writer.start()
        with pytest.raises(BadInputError, match="larger than"):
            _read(f"/dev/fd/{read}", max_bytes=10000, timeout=5)
    finally:
        os.close(read)
        writer.join(5)
        os.close(write)


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused(target: str, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(target)
    for path in (target, link):
        with pytest.raises(BadInputError, match="character device"):
            _read(path)


def test_a_file_that_grows_past_the_cap_while_read_is_cut_off(tmp_path: Path) -> None:
    # /proc files say size 0 and then produce more: the read itself is bounded, not just stat.
    with pytest.raises(BadInputError, match="larger than"):
        _read("/proc/self/maps" if Path("/proc/self/maps").exists() else __file__, max_bytes=16)


def test_an_output_file_is_created_0600_and_an_existing_one_tightened(tmp_path: Path) -> None:
    new = tmp_path / "new"
    os.close(open_output_file(new, what="log"))
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    old = tmp_path / "old"
    old.write_text("x")
    old.chmod(0o644)
    os.close(open_output_file(old, what="log"))
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


@pytest.mark.parametrize("kind", ["fifo", "dir", "device", "proc"])
def test_an_output_that_is_not_a_file_is_refused_without_blocking(tmp_path: Path, kind: str):
    path = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "device":
        path = Path("/dev/zero")
    else:
        path = Path("/proc/version")
    before = path.lstat()
    with pytest.raises(BadInputError):
        open_output_file(path, what="log")
    after = path.lstat()
    assert (before.st_mode, before.st_mtime_ns) == (after.st_mode, after.st_mtime_ns)


def test_a_device_output_is_allowed_only_when_asked(tmp_path: Path) -> None:
    os.close(open_output_file("/dev/null", what="log", allow_device=True))
    assert stat.S_IMODE(os.stat("/dev/null").st_mode) == 0o666  # never chmod-ed


# ------------------------------------------------------------------------------------ logging


def test_a_failing_log_handler_reports_once_and_disables_itself(capfd) -> None:
    import logging

    fd = os.open("/dev/full", os.O_WRONLY)
    handler = SafeFileHandler(fd, "/dev/full")
    logger = logging.getLogger("kpf-test-full")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for i in range(100):
            logger.error("record %d", i)
    finally:
        logger.removeHandler(handler)
        handler.close()
    err = capfd.readouterr().err
    assert err.count("cannot write the log file /dev/full (No space left on device)") == 1
    assert "Traceback" not in err and "Logging error" not in err
    assert handler.failed == "No space left on device"


def test_redaction_covers_tokens_in_any_shape_and_leaves_names_alone() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    assert jwt not in redact(f"got {jwt} back")
    assert "ya29" not in redact("Bearer ya29.a0AfH6SMBx-long-TOKEN_value")
    cloud = "AKIAxY7Qz9Lm3Np5Rt8Vw2Bc4Df6Gh1Jk0"
    assert cloud not in redact(f"key {cloud} rejected")
    benign = (
        "pod metrics-exporter-replicaset-5d8f7c9b6-abcde ready",
        "image sha256:" + "ab" * 32,
        "/home/User1/Projects/kportforward2024/x.py",
    )
    for text in benign:
        assert redact(text) == text
    assert "0123456789abcdef0123" not in redact_strict("token 0123456789abcdef0123 expired")


# ------------------------------------------------------------------------ owned directories

_OWNED_CHILD = (
    "import sys, time; from kportforward.owned import make_owned_dir; "
    "print(make_owned_dir('demo'), flush=True); time.sleep(300)"
)


def test_a_directory_whose_owner_was_sigkilled_is_swept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", _OWNED_CHILD], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "TMPDIR": str(tmp_path)})  # fmt: skip
    assert child.stdout is not None
    left = Path(child.stdout.readline().strip())
    try:
        assert sweep_stale_dirs(tmp_path) == []  # its owner lives
        assert left.is_dir()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    assert json.loads((left / OWNER_FILE).read_text())["pid"] == child.pid
    assert sweep_stale_dirs(tmp_path) == [left]
    assert not left.exists()


def test_sweeping_leaves_everything_it_cannot_prove_stale(tmp_path: Path) -> None:
    mine = make_owned_dir("sim")  # in the real TMPDIR: ours, alive
    try:
        legacy = tmp_path / "kportforward-demo-old"  # no owner file (an older version)
        legacy.mkdir()
        other_ns = tmp_path / "kportforward-demo-ns"
        other_ns.mkdir()
        ident = me().as_dict()
        (other_ns / OWNER_FILE).write_text(json.dumps({**ident, "pid": 999999, "pidns": "x"}))
        linked = tmp_path / "kportforward-demo-link"
        linked.symlink_to(legacy)
        garbage = tmp_path / "kportforward-demo-garbage"
        garbage.mkdir()
        (garbage / OWNER_FILE).write_text("{not json")
        unrelated = tmp_path / "something-else"
        unrelated.mkdir()
        (unrelated / OWNER_FILE).write_text(json.dumps({**ident, "pid": 999999}))
        assert sweep_stale_dirs(tmp_path) == []
        for p in (legacy, other_ns, linked, garbage, unrelated):
            assert p.exists()
        assert mine.is_dir() and mine not in sweep_stale_dirs()
    finally:
        import shutil

        shutil.rmtree(mine)


# ------------------------------------------------------------------ the kubeconfig watcher


def _replace(path: Path, how: str) -> None:
    path.unlink()
    if how == "fifo":
        os.mkfifo(path)
    elif how == "dev-zero":
        path.symlink_to("/dev/zero")
    elif how == "huge":
        with open(path, "wb") as fh:
            fh.truncate(60 << 20)
    else:
        path.write_text("a: &a {<<: [*a]}\n")


@pytest.mark.parametrize("how", ["fifo", "dev-zero", "huge", "recursive-merge"])
def test_a_kubeconfig_replaced_by_a_non_file_reads_as_broken(tmp_path: Path, how: str) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(KC)
    watcher = KubeconfigWatcher(str(kc))
    assert watcher.current().current_context == "one"
    _replace(kc, how)
    started = time.monotonic()
    assert watcher.current().current_context == "one"  # the last good view
    assert time.monotonic() - started < 5
    assert isinstance(watcher.error, KubeconfigError)
    kc.unlink()
    kc.write_text(KC.replace("current-context: one", "current-context: two"))
    assert watcher.current().current_context == "two" and watcher.error is None


async def test_on_the_event_loop_a_changed_kubeconfig_is_read_off_the_loop(tmp_path: Path):
    kc = tmp_path / "kubeconfig"
    kc.write_text(KC)
    watcher = KubeconfigWatcher(str(kc))
    assert watcher.current().current_context == "one"  # the first read: nothing to serve yet
    seen: list[str] = []
    real_load = watcher._load

    def load():  # type: ignore[no-untyped-def]
        seen.append(__import__("threading").current_thread().name)
        return real_load()

    watcher._load = load  # type: ignore[method-assign]
    kc.write_text(KC.replace("current-context: one", "current-context: two") + "# longer\n")
    assert watcher.current().current_context == "one"  # served at once; the read is elsewhere
    for _ in range(200):
        if watcher.current().current_context == "two":
            break
        await asyncio.sleep(0.01)
    assert watcher.current().current_context == "two"
    assert seen and all(name == "kpf-kubeconfig" for name in seen)


def test_a_pipe_kubeconfig_is_materialised_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    read, write = os.pipe()
    try:
        os.write(write, KC.encode())
        os.close(write)
        first = kubeconfig_paths(f"/dev/fd/{read}")
        again = kubeconfig_paths(f"/dev/fd/{read}")
    finally:
        os.close(read)
    assert first == again and first[0].parent.name.startswith("kportforward-kubeconfig-")
    assert first[0].read_text() == KC and stat.S_IMODE(first[0].stat().st_mode) == 0o600


def test_parse_document_never_quotes_a_value_it_cannot_construct() -> None:
    with pytest.raises(KubeconfigError) as info:
        parse_document(Path("kc"), "token: !!int SECRET-abcdef\n")
    assert "SECRET" not in str(info.value) and "cannot construct" in str(info.value)
