"""The hostile-input suite (issue #18): kubeconfigs, CLI arguments and files that are not files.

Every case is the real CLI in a subprocess under a wall-time limit and RLIMIT_AS
(``tests/hostile_harness.py``): exit 2, one line naming the input, no traceback, nothing written.
Before #18, FIFOs hung forever, /dev/zero ran out of memory, a merge-key bomb pinned a core, and
``--churn nan``/``--forwards 1000000`` were accepted.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hostile_harness import assert_refused, run_hostile

pytestmark = pytest.mark.integration

GOOD_CONFIG = (
    "portForwards:\n  api:\n    target: service/api\n    targetPort: 80\n    localPort: 18080\n"
)
GOOD_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: SECRET-TOKEN-abc123}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
"""


def _merge_bomb(levels: int = 12, fan: int = 4) -> str:
    lines = ["l0: &l0 {a: 1, b: 2, c: 3, d: 4}"]
    for i in range(1, levels):
        refs = ", ".join(f"*l{i - 1}" for _ in range(fan))
        lines.append(f"l{i}: &l{i} {{<<: [{refs}], k{i}: 1}}")
    return "\n".join(lines) + "\ncurrent-context: ctx\n"


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)  # sparse: no disk used, but stat says ``size``
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _loop(path: Path) -> Path:
    other = path.with_name(path.name + "-other")
    os.symlink(other, path)
    os.symlink(path, other)
    return path


def _socket(path: Path) -> Path:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # the socket file stays
    return path


def _text(content: str | bytes) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return make


def _link_to(target: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        os.symlink(target, path)
        return path

    return make


def _existing(target: str) -> Callable[[Path], Path]:
    return lambda path: Path(target)


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


@dataclass(frozen=True)
class Bad:
    """A hostile file: how to make it and what the one-line error must say."""

    make: Callable[[Path], Path]
    says: tuple[str, ...]


BAD_FILES: dict[str, Bad] = {
    "fifo": Bad(_fifo, ("named pipe",)),
    "dev-zero": Bad(_existing("/dev/zero"), ("/dev/zero", "character device")),
    "link-to-dev-zero": Bad(_link_to("/dev/zero"), ("character device",)),
    "dev-urandom": Bad(_existing("/dev/urandom"), ("character device",)),
    "dev-null": Bad(_existing("/dev/null"), ("character device",)),
    "directory": Bad(_dir, ("directory",)),
    "symlink-loop": Bad(_loop, ("symbolic link loop",)),
    "dangling-link": Bad(_link_to("/nonexistent/kportforward"), ("does not exist",)),
    "socket": Bad(_socket, ("socket",)),
    "sparse-60MB": Bad(lambda p: _sparse(p, 60 << 20), ("60.0 MiB", "more than")),
    "sparse-5MB": Bad(lambda p: _sparse(p, 5 << 20), ("5.0 MiB",)),
    "proc-self-mem": Bad(_existing("/proc/self/mem"), ("cannot read",)),
}

BAD_KUBECONFIGS: dict[str, Bad] = {
    **BAD_FILES,
    "binary": Bad(_text(b"\xff\xfe\x00garbage\x80"), ("not text",)),
    "nul-bytes": Bad(_text("apiVersion: v1\n\x00\x00\n"), ("not valid YAML",)),
    "merge-bomb": Bad(_text(_merge_bomb()), ("merge keys", "expand")),
    "recursive-merge": Bad(_text("a: &a {<<: *a}\n"), ("merge key",)),
    "deep-nesting": Bad(_text("a: " + "[" * 5000 + "]" * 5000 + "\n"), ("not valid YAML",)),
    "bad-int-tag": Bad(_text("current-context: !!int abc\n"), ("cannot construct",)),
    "bad-float-tag": Bad(_text("current-context: !!float x\n"), ("cannot construct",)),
    "python-tag": Bad(_text("x: !!python/object/apply:os.system [true]\n"), ("not valid YAML",)),
    "bad-binary-tag": Bad(_text("x: !!binary a\n"), ("not valid YAML",)),
    "bad-timestamp-tag": Bad(_text("x: !!timestamp 2001-13-40\n"), ("cannot construct",)),
    "two-documents": Bad(_text("a: 1\n---\nb: 2\n"), ("not valid YAML",)),
    "list-document": Bad(_text("- a\n- b\n"), ("must be a mapping",)),
    "scalar-document": Bad(_text("just text\n"), ("must be a mapping",)),
    "clusters-mapping": Bad(_text("clusters: {a: 1}\n"), ("clusters", "must be a list")),
    "entry-without-name": Bad(_text("contexts:\n- context: {}\n"), ("contexts[0].name",)),
    "name-a-list": Bad(_text("users:\n- name: [a]\n"), ("users[0].name", "a list")),
    "current-context-list": Bad(_text("current-context: [a]\n"), ("current-context",)),
    "exec-not-mapping": Bad(_text("users:\n- name: u\n  user: {exec: run-me}\n"), ("exec",)),
    "missing-cluster": Bad(
        _text("contexts:\n- name: x\n  context: {cluster: nope}\ncurrent-context: x\n"),
        ("cluster 'nope'",),
    ),
    "no-current-context": Bad(
        _text(GOOD_KUBECONFIG.replace("current-context: ctx\n", "")), ("no current context",)
    ),
    "big-but-allowed": Bad(
        _text("".join(f"key{i}: value{i}\n" for i in range(150_000))), ("no current context",)
    ),
    "token-on-bad-line": Bad(
        _text('users:\n- name: u\n  user:\n    token: "SUPERSECRET-abc123\n'), ("not valid YAML",)
    ),
}


def _watch(tmp_path: Path) -> list[Path]:
    return [tmp_path, Path(os.environ["HOME"])]


def _prepare(tmp_path: Path, bad: Bad, name: str = "target") -> Path:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return bad.make(tmp_path / name)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private TMPDIR: owned temporary directories would show up in the snapshot."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {"TMPDIR": str(tmp_path / "tmp")}


@pytest.mark.parametrize("case", sorted(BAD_KUBECONFIGS))
def test_kubeconfig_flag(case: str, tmp_path: Path, env: dict[str, str]) -> None:
    bad = BAD_KUBECONFIGS[case]
    config = tmp_path / "config.yaml"
    config.write_text(GOOD_CONFIG)
    path = _prepare(tmp_path, bad)
    outcome = run_hostile(
        ["run", "--config", str(config), "--kubeconfig", str(path)], watch=_watch(tmp_path), env=env
    )
    assert_refused(outcome, *bad.says, secrets=("SUPERSECRET", "SECRET-TOKEN"))


ROUTED = ("fifo", "dev-zero", "link-to-dev-zero", "directory", "symlink-loop", "sparse-60MB",
          "merge-bomb")  # fmt: skip


@pytest.mark.parametrize("case", ROUTED)
def test_kubeconfig_from_the_environment(case: str, tmp_path: Path, env: dict[str, str]) -> None:
    bad = BAD_KUBECONFIGS[case]
    config = tmp_path / "config.yaml"
    config.write_text(GOOD_CONFIG)
    path = _prepare(tmp_path, bad)
    outcome = run_hostile(
        ["run", "--config", str(config)],
        watch=_watch(tmp_path),
        env={**env, "KUBECONFIG": str(path)},
    )
    assert_refused(outcome, *bad.says)


@pytest.mark.parametrize("case", ROUTED)
def test_kubeconfig_of_a_forward(case: str, tmp_path: Path, env: dict[str, str]) -> None:
    bad = BAD_KUBECONFIGS[case]
    path = _prepare(tmp_path, bad)
    config = tmp_path / "config.yaml"
    config.write_text(GOOD_CONFIG + f"    kubeconfig: {path}\n")
    outcome = run_hostile(["run", "--config", str(config)], watch=_watch(tmp_path), env=env)
    assert_refused(outcome, *bad.says)


REFERENCED = {
    "ca-dev-zero": ("cluster", "certificate-authority", "/dev/zero", "character device"),
    "ca-fifo": ("cluster", "certificate-authority", "FIFO", "named pipe"),
    "token-file-fifo": ("user", "tokenFile", "FIFO", "named pipe"),
    "client-cert-directory": ("user", "client-certificate", "DIR", "directory"),
    "client-key-huge": ("user", "client-key", "HUGE", "more than"),
}


@pytest.mark.parametrize("case", sorted(REFERENCED))
def test_files_a_kubeconfig_names_are_checked_too(case: str, tmp_path: Path, env) -> None:
    """Certificates, keys and token files are read whole by the kubernetes package: a FIFO hung
    the startup probe, /dev/zero ran it out of memory. Now a ``config`` failure: exit 2."""
    section, key, target, says = REFERENCED[case]
    path = tmp_path / "referenced"
    if target == "FIFO":
        os.mkfifo(path)
    elif target == "DIR":
        path.mkdir()
    elif target == "HUGE":
        _sparse(path, 50 << 20)
    else:
        path = Path(target)
    if section == "cluster":
        old, new = (
            '{server: "https://127.0.0.1:1"}',
            f'{{server: "https://127.0.0.1:1", {key}: "{path}"}}',
        )
    else:
        old, new = "{token: SECRET-TOKEN-abc123}", f'{{{key}: "{path}"}}'
    kc = GOOD_KUBECONFIG.replace(old, new)
    (tmp_path / "kubeconfig").write_text(kc)
    config = tmp_path / "config.yaml"
    config.write_text(GOOD_CONFIG)
    outcome = run_hostile(
        ["run", "--config", str(config), "--kubeconfig", str(tmp_path / "kubeconfig")],
        watch=_watch(tmp_path),
        env=env,
    )
    assert_refused(outcome, key, says)


def test_many_large_kubeconfigs_in_the_environment_are_bounded_together(tmp_path: Path, env):
    config = tmp_path / "config.yaml"
    config.write_text(GOOD_CONFIG)
    chunk = ("# " + "x" * 97 + "\n") * 39_000  # 3.9 MB of comments: each file alone is fine
    paths = []
    for i in range(5):
        path = tmp_path / f"kc{i}"
        path.write_text(chunk)
        paths.append(str(path))
    outcome = run_hostile(
        ["run", "--config", str(config)],
        watch=_watch(tmp_path),
        env={**env, "KUBECONFIG": os.pathsep.join(paths)},
    )
    assert_refused(outcome, "together are larger than 16 MiB", "KUBECONFIG")


def test_a_kubeconfig_path_with_a_newline_stays_one_line(tmp_path: Path, env) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(GOOD_CONFIG)
    outcome = run_hostile(
        ["run", "--config", str(config), "--kubeconfig", str(tmp_path / "a\nb")],
        watch=_watch(tmp_path),
        env=env,
    )
    assert_refused(outcome, "does not exist")


# ------------------------------------------------------------------------------ CLI arguments

ARGUMENTS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "forwards-zero": (["profile", "--forwards", "0"], ("--forwards", "at least 1")),
    "forwards-1001": (["profile", "--forwards", "1001"], ("--forwards", "at most 1000")),
    "forwards-million": (["profile", "--forwards", "1000000"], ("--forwards", "1000000")),
    "forwards-huge": (["profile", "--forwards", "9" * 40], ("--forwards",)),
    "forwards-float": (["profile", "--forwards", "1e3"], ("--forwards", "1e3")),
    "churn-nan": (["profile", "--churn", "nan"], ("--churn", "nan")),
    "churn-inf": (["profile", "--churn", "inf"], ("--churn", "inf")),
    "churn-minus-inf": (["profile", "--churn=-inf"], ("--churn", "-inf")),
    "churn-negative": (["profile", "--churn=-1"], ("--churn", "-1")),
    "churn-101": (["profile", "--churn", "101"], ("--churn", "from 0 to 100")),
    "churn-overflow": (["profile", "--churn", "1e400"], ("--churn",)),
    "churn-word": (["profile", "--churn", "lots"], ("--churn", "lots")),
    "profile-duration-zero": (["profile", "--duration", "0"], ("--duration",)),
    "profile-duration-25h": (["profile", "--duration", "25h"], ("--duration", "24h")),
    "profile-duration-1e300": (["profile", "--duration", "1e300"], ("--duration",)),
    "profile-duration-nan": (["profile", "--duration", "nan"], ("--duration",)),
    "profile-duration-inf": (["profile", "--duration", "inf"], ("--duration",)),
    "profile-duration-negative": (["profile", "--duration=-1s"], ("--duration",)),
    "profile-duration-empty": (["profile", "--duration", ""], ("--duration",)),
    "demo-duration-zero": (["demo", "--headless", "--duration", "0"], ("--duration",)),
    "demo-duration-8d": (["demo", "--headless", "--duration", "192h"], ("--duration", "7 days")),
    "demo-duration-1e300": (["demo", "--headless", "--duration", "1e300"], ("--duration",)),
    "demo-duration-nan": (["demo", "--headless", "--duration", "nan"], ("--duration",)),
    "sim-port-negative": (["sim", "--port=-1"], ("--port", "0-65535")),
    "sim-port-65536": (["sim", "--port", "65536"], ("--port", "0-65535")),
    "sim-port-huge": (["sim", "--port", "9" * 40], ("--port",)),
    "sim-port-word": (["sim", "--port", "http"], ("--port",)),
    "sim-port-float": (["sim", "--port", "80.5"], ("--port",)),
}


@pytest.mark.parametrize("case", sorted(ARGUMENTS))
def test_numeric_arguments_have_a_range(case: str, tmp_path: Path, env) -> None:
    args, says = ARGUMENTS[case]
    outcome = run_hostile(args, watch=_watch(tmp_path), env=env)
    assert_refused(outcome, *says)


# --------------------------------------------------------------------- files that are not files

WORLD_CASES: dict[str, Bad] = {
    **{k: v for k, v in BAD_FILES.items() if k not in ("proc-self-mem", "sparse-5MB")},
    "merge-bomb": Bad(_text(_merge_bomb()), ("merge keys",)),
    "bad-int-tag": Bad(_text("seed: !!int abc\n"), ("cannot construct",)),
    "seed-word": Bad(_text("seed: abc\n"), ("seed", "whole number")),
    "port-5000-digits": Bad(
        _text("namespaces:\n  d:\n    pods:\n    - name: p\n      ports: [" + "9" * 5000 + "]\n"),
        ("cannot construct",),
    ),
    "binary": Bad(_text(b"\xff\xfe\x00\x80"), ("not UTF-8",)),
}


@pytest.mark.parametrize("case", sorted(WORLD_CASES))
def test_sim_world(case: str, tmp_path: Path, env) -> None:
    bad = WORLD_CASES[case]
    path = _prepare(tmp_path, bad, "world.yaml")
    outcome = run_hostile(["sim", "--world", str(path)], watch=_watch(tmp_path), env=env)
    assert_refused(outcome, *bad.says)


OUTPUT_CASES = {
    "fifo": Bad(_fifo, ("named pipe",)),
    "directory": Bad(_dir, ("directory",)),
    "symlink-loop": Bad(_loop, ("symbolic link loop",)),
    "socket": Bad(_socket, ("socket",)),
    "proc-version": Bad(_existing("/proc/version"), ("/proc",)),
    "read-only": Bad(lambda p: (_text("x\n")(p), p.chmod(0o444), p)[2], ("read-only",)),
}


@pytest.mark.parametrize("case", sorted(set(OUTPUT_CASES) | {"dev-zero"}))
def test_log_file(case: str, tmp_path: Path, env) -> None:
    bad = OUTPUT_CASES.get(case) or Bad(_existing("/dev/zero"), ("character device",))
    path = _prepare(tmp_path, bad, "log")
    config = tmp_path / "config.yaml"
    config.write_text(GOOD_CONFIG)
    outcome = run_hostile(
        ["check", "--config", str(config), "--log-file", str(path)], watch=_watch(tmp_path), env=env
    )
    assert_refused(outcome, "cannot write the log file", *bad.says)


@pytest.mark.parametrize("case", sorted(set(OUTPUT_CASES) | {"dev-zero"}))
def test_sim_kubeconfig_out(case: str, tmp_path: Path, env) -> None:
    bad = OUTPUT_CASES.get(case) or Bad(_existing("/dev/zero"), ("character device",))
    path = _prepare(tmp_path, bad, "kubeconfig-out")
    outcome = run_hostile(["sim", "--kubeconfig-out", str(path)], watch=_watch(tmp_path), env=env)
    assert_refused(outcome, "--kubeconfig-out", *bad.says)


@pytest.mark.parametrize("flag", ["--cpuprofile", "--memprofile"])
@pytest.mark.parametrize("case", ["fifo", "directory", "dev-zero"])
def test_profile_report_files(flag: str, case: str, tmp_path: Path, env) -> None:
    bad = {**OUTPUT_CASES, "dev-zero": Bad(_existing("/dev/zero"), ())}[case]
    path = _prepare(tmp_path, bad, "report")
    outcome = run_hostile(
        ["profile", "--output", str(tmp_path / "out"), flag, str(path)],
        watch=_watch(tmp_path),
        env=env,
    )
    assert_refused(outcome, flag)


# ------------------------------------------------------------------------ a pipe, read once


def test_a_kubeconfig_pipe_is_read_once_and_its_copy_removed(tmp_path: Path, env) -> None:
    """``--kubeconfig <(cat kc)``: the startup check and every later reader see the same bytes
    (before, the second read found the pipe empty); the private copy is gone afterwards."""
    config = tmp_path / "config.yaml"
    config.write_text(GOOD_CONFIG + "    context: nope\n")
    read, write = os.pipe()
    os.write(write, GOOD_KUBECONFIG.encode())
    os.close(write)
    try:
        outcome = run_hostile(
            ["run", "--config", str(config), "--kubeconfig", f"/dev/fd/{read}"],
            watch=_watch(tmp_path),
            env=env,
            pass_fds=(read,),
        )
    finally:
        os.close(read)
    # The private copy lived in TMPDIR and is gone again (only TMPDIR's own mtime moved).
    assert not list((tmp_path / "tmp").iterdir())
    outcome.changes.remove(str(tmp_path / "tmp"))
    # It parsed the pipe's content: the context the config asks for is missing, and the one that
    # exists is named.
    assert_refused(outcome, "context 'nope' not found", "available: ctx", secrets=("SECRET-TOKEN",))
