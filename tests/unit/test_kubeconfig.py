"""Kubeconfig parsing, kubectl-style merging, change detection, and the bad-kubeconfig corpus."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from kportforward.errors import BadInputError, KubeconfigError, KubeContextError
from kportforward.kube.access import probe_access
from kportforward.kube.kubeconfig import (
    KubeconfigWatcher,
    kubeconfig_paths,
    load_kubeconfig,
    load_kubeconfig_for,
    validate_kubeconfig_for_startup,
)

CORPUS = Path(__file__).resolve().parent.parent / "data" / "kubeconfig"
SECRET_MARKERS = ("SECRET", "U0VDUkVU")  # every credential in the corpus contains one of these


def kubeconfig_text(current: str | None, *contexts: str, server: str = "http://127.0.0.1:1") -> str:
    """A small valid kubeconfig with one cluster/user per context."""
    lines = ["apiVersion: v1", "kind: Config"]
    if current is not None:
        lines.append(f"current-context: {current}")
    lines.append("clusters:")
    for c in contexts:
        lines += [f"- name: {c}", "  cluster:", f"    server: {server}/{c}"]
    lines.append("contexts:")
    for c in contexts:
        lines += [f"- name: {c}", "  context:", f"    cluster: {c}", f"    user: {c}"]
        lines += [f"    namespace: ns-{c}"]
    lines.append("users:")
    for c in contexts:
        lines += [f"- name: {c}", "  user:", f"    token: SECRET-TOKEN-{c}"]
    return "\n".join(lines) + "\n"


def assert_one_line(error: BaseException, *must_contain: str) -> str:
    """The error is one line, names what it must, carries a hint, and leaks no credential."""
    text = str(error)
    assert "\n" not in text
    for part in must_contain:
        assert part in text, f"{part!r} not in {text!r}"
    assert " — " in text, f"no hint on what to do: {text!r}"
    for marker in SECRET_MARKERS:
        assert marker not in text, f"credential leaked: {text!r}"
    assert isinstance(error, BadInputError) and error.exit_code == 2
    return text


# ---------------------------------------------------------------- parsing and merging


def test_parses_contexts_with_server_user_and_namespace(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text("b", "a", "b"))
    kc = load_kubeconfig([path])
    assert kc.current_context == "b"
    assert set(kc.contexts) == {"a", "b"}
    ctx = kc.context()
    assert (ctx.name, ctx.cluster, ctx.user, ctx.namespace) == ("b", "b", "b", "ns-b")
    assert ctx.server == "http://127.0.0.1:1/b"
    assert kc.context("a").server.endswith("/a")
    assert kc.users["a"].auth == "token"
    assert "SECRET" not in repr(kc)


def test_paths_explicit_then_env_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(a), "", str(b), str(a)]))
    assert kubeconfig_paths() == [a, b]
    assert kubeconfig_paths(str(b)) == [b]
    monkeypatch.setenv("KUBECONFIG", "")
    assert kubeconfig_paths() == [hermetic_env / ".kube" / "config"]
    monkeypatch.delenv("KUBECONFIG")
    assert kubeconfig_paths("~/x") == [hermetic_env / "x"]


def test_merge_first_file_that_sets_a_key_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, missing = tmp_path / "first", tmp_path / "second", tmp_path / "missing"
    first.write_text(kubeconfig_text("one", "one", "shared", server="http://first"))
    second.write_text(kubeconfig_text("two", "two", "shared", server="http://second"))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(map(str, [missing, first, second])))
    kc = load_kubeconfig_for(None)
    assert kc.current_context == "one"  # kubectl: the first file that sets current-context wins
    assert set(kc.contexts) == {"one", "two", "shared"}
    assert kc.context("shared").server == "http://first/shared"
    assert kc.context("two").server == "http://second/two"
    assert kc.files == (first, second)  # a missing file in $KUBECONFIG is skipped, like kubectl


def test_first_file_without_current_context_defers_to_the_next(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text(kubeconfig_text(None, "one"))
    second.write_text(kubeconfig_text("two", "two"))
    assert load_kubeconfig([first, second]).current_context == "two"


def test_empty_file_is_an_empty_config(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    kc = load_kubeconfig([empty], must_exist=True)
    assert kc.files == (empty,) and kc.sources == ()
    with pytest.raises(KubeContextError) as info:
        kc.context()
    assert_one_line(info.value, str(empty), "no current context")


def test_anonymous_context_without_user_is_usable(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        "current-context: anon\nclusters:\n- name: c\n  cluster:\n    server: http://x\n"
        "contexts:\n- name: anon\n  context:\n    cluster: c\n"
    )
    ctx = load_kubeconfig([path]).context()
    assert ctx.user == "" and ctx.namespace is None


# ---------------------------------------------------------------- the bad-kubeconfig corpus


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("corrupt.yaml", ["corrupt.yaml:", "not valid YAML"]),
        ("not_a_mapping.yaml", ["not_a_mapping.yaml", "must be a mapping", "found a list"]),
        ("scalar.yaml", ["scalar.yaml", "must be a mapping", "found a string"]),
        ("contexts_not_a_list.yaml", ["contexts_not_a_list.yaml:8", "contexts", "must be a list"]),
        ("server_not_a_string.yaml", ["server_not_a_string.yaml:7", "clusters[0].cluster.server"]),
        ("entry_without_name.yaml", ["entry_without_name.yaml:5", "clusters[0].name", "missing"]),
        ("garbage.bin", ["garbage.bin", "not text"]),
    ],
)
def test_corrupt_or_misshapen_kubeconfig_is_one_line_naming_the_file(
    name: str, expected: list[str]
) -> None:
    path = CORPUS / name
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig([path])
    assert_one_line(info.value, *expected)
    with pytest.raises(KubeconfigError) as again:
        validate_kubeconfig_for_startup(str(path), {None})
    assert str(again.value) == str(info.value)


@pytest.mark.parametrize(
    ("name", "context", "expected"),
    [
        ("no_current_context.yaml", None, ["no current context", "available: dev", "use-context"]),
        ("context_not_found.yaml", None, ["current context 'staging' not found", "dev, prod"]),
        ("context_not_found.yaml", "qa", ["context 'qa' not found", "available: dev, prod"]),
        ("missing_cluster.yaml", None, ["cluster 'ghost'", "not defined", "clusters: real"]),
        ("missing_user.yaml", None, ["user 'ghost'", "not defined", "users: dev"]),
        ("no_server.yaml", None, ["cluster 'dev'", "has no server"]),
    ],
)
def test_unusable_context_is_one_line_naming_the_file(
    name: str, context: str | None, expected: list[str]
) -> None:
    path = CORPUS / name
    kc = load_kubeconfig([path], must_exist=True)
    with pytest.raises(KubeContextError) as info:
        kc.context(context)
    assert_one_line(info.value, str(path), *expected)
    with pytest.raises(KubeContextError):
        validate_kubeconfig_for_startup(str(path), {context, "dev"} if context else {None})


def test_explicit_missing_kubeconfig(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config"
    with pytest.raises(KubeconfigError) as info:
        validate_kubeconfig_for_startup(str(missing), {None})
    assert_one_line(info.value, str(missing), "does not exist", "--kubeconfig")


def test_no_kubeconfig_anywhere(hermetic_env: Path) -> None:
    with pytest.raises(KubeContextError) as info:
        validate_kubeconfig_for_startup(None, {None})
    assert_one_line(info.value, str(hermetic_env / ".kube" / "config"), "no kubeconfig found")


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig_for(str(tmp_path))
    assert_one_line(info.value, str(tmp_path), "is a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_kubeconfig(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text("a", "a"))
    path.chmod(0)
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig_for(str(path))
    assert_one_line(info.value, str(path), "cannot read", "permission")


def test_path_through_a_file_cannot_be_read(tmp_path: Path) -> None:
    # Works as root too (unlike chmod 000): the OS refuses "file/config" with ENOTDIR.
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "config"
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig_for(str(path))
    assert_one_line(info.value, str(path), "cannot read", "Not a directory")


def test_startup_validation_checks_every_context_needed(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text("a", "a", "b"))
    kc = validate_kubeconfig_for_startup(str(path), {None, "a", "b"})
    assert kc.current_context == "a"
    with pytest.raises(KubeContextError) as info:
        validate_kubeconfig_for_startup(str(path), {None, "c"})
    assert_one_line(info.value, "context 'c' not found", str(path))


def test_yaml_error_message_never_quotes_the_offending_line(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("users:\n- name: u\n  user:\n    token: SECRET-abc: def: [\n")
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig([path])
    assert_one_line(info.value, f"{path}:4")


# ---------------------------------------------------------------- exec credential plugins


async def test_exec_plugin_that_fails_is_config_naming_plugin_and_file() -> None:
    path = CORPUS / "exec_fails.yaml"
    result = await probe_access(kubeconfig=str(path), timeout=5.0)
    assert result.kind == "config", result
    assert result.server_answered is None  # the server was never asked
    text = result.message
    assert "\n" not in text
    for part in ("fail-login.sh", "user 'dev'", str(path), "exit code 1", "platform login", " — "):
        assert part in text, text
    assert "SECRET" not in text


async def test_exec_plugin_that_is_missing_is_config_with_install_hint() -> None:
    result = await probe_access(kubeconfig=str(CORPUS / "exec_missing.yaml"), timeout=5.0)
    assert result.kind == "config", result
    assert "kpf-no-such-credential-plugin" in result.message
    assert "install kpf-no-such-credential-plugin from your platform team" in result.message
    assert "SECRET" not in result.message


async def test_exec_plugin_that_hangs_is_bounded_and_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "plugin.pid"
    monkeypatch.setenv("KPF_TEST_PIDFILE", str(pidfile))
    path = CORPUS / "exec_hangs.yaml"
    result = await probe_access(kubeconfig=str(path), timeout=1.5)
    try:
        assert result.kind in ("config", "network"), result
        # Bounded by the probe's timeout (with slack for a loaded machine), not the 300 s sleep.
        assert result.seconds < 1.5 + 3.0
        assert "hang.sh" in result.message and str(path) in result.message
        assert "SECRET" not in result.message
        pid = int(pidfile.read_text())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        assert not _alive(pid), "the hung plugin was left running"
    finally:
        if pidfile.exists():
            _kill(int(pidfile.read_text()))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


async def test_bad_kubeconfig_probe_is_config_without_credentials() -> None:
    for name in ("corrupt.yaml", "missing_user.yaml", "no_current_context.yaml"):
        result = await probe_access(kubeconfig=str(CORPUS / name), timeout=2.0)
        assert result.kind == "config", result
        assert name in result.message and "\n" not in result.message
        assert not any(m in result.message for m in SECRET_MARKERS)


async def test_probe_of_a_closed_port_is_network(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text("a", "a"))  # server http://127.0.0.1:1/a: nothing listens
    result = await probe_access(kubeconfig=str(path), timeout=3.0)
    assert result.kind == "network", result
    assert "127.0.0.1:1" in result.message and "SECRET" not in result.message


# ---------------------------------------------------------------- change detection


def _bump(path: Path, text: str) -> None:
    """Rewrite ``path`` in place and make sure its mtime moves (coarse file-system clocks)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_unchanged_file_is_not_parsed_again(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text("a", "a", "b"))
    watcher = KubeconfigWatcher(str(path))
    first = watcher.current()
    for _ in range(50):
        assert watcher.current() is first
    assert watcher.poll() is None
    assert watcher.loads == 1


def test_edit_in_place_changes_current_context(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text("a", "a", "b"))
    watcher = KubeconfigWatcher(str(path))
    assert watcher.poll() is None  # the first poll records
    _bump(path, kubeconfig_text("b", "a", "b"))
    assert watcher.poll() == ("a", "b")
    assert watcher.poll() is None
    assert watcher.loads == 2
    assert watcher.current().context().name == "b"


def test_atomic_rename_is_seen_even_with_same_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text("a", "a", "b"))
    watcher = KubeconfigWatcher(str(path))
    watcher.poll()
    st = path.stat()
    tmp = tmp_path / "config.tmp"
    tmp.write_text(kubeconfig_text("b", "a", "b"))  # same length: only the inode tells
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)
    assert path.stat().st_size == st.st_size
    assert watcher.poll() == ("a", "b")


def test_env_list_file_appearing_later_is_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, later = tmp_path / "first", tmp_path / "later"
    first.write_text(kubeconfig_text(None, "one"))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(later), str(first)]))
    watcher = KubeconfigWatcher()
    assert watcher.poll() is None
    assert watcher.current().current_context is None
    later.write_text(kubeconfig_text("two", "two"))
    assert watcher.poll() == (None, "two")
    assert set(watcher.current().contexts) == {"one", "two"}


def test_corrupt_edit_keeps_last_good_view_until_fixed(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text("a", "a", "b"))
    watcher = KubeconfigWatcher(str(path))
    good = watcher.current()
    _bump(path, "contexts: [\n")
    assert watcher.current() is good
    assert watcher.error is not None and str(path) in str(watcher.error)
    assert watcher.current() is good and watcher.loads == 2  # not re-parsed until it changes
    _bump(path, kubeconfig_text("b", "a", "b"))
    assert watcher.current().current_context == "b" and watcher.error is None


def test_first_read_failure_raises(tmp_path: Path) -> None:
    watcher = KubeconfigWatcher(str(tmp_path / "missing"))
    with pytest.raises(KubeconfigError):
        watcher.current()
    assert watcher.poll() is None  # an unreadable kubeconfig counts as "no current context"


def test_deleted_file_keeps_last_good_view(tmp_path: Path) -> None:
    path = tmp_path / "config"
    shutil.copy(CORPUS / "context_not_found.yaml", path)
    watcher = KubeconfigWatcher(str(path))
    assert watcher.current().current_context == "staging"
    path.unlink()
    assert watcher.current().current_context == "staging"
    assert watcher.error is not None and "does not exist" in str(watcher.error)


def test_min_interval_skips_stats_with_a_fake_clock(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig_text("a", "a", "b"))
    now = [100.0]
    watcher = KubeconfigWatcher(str(path), timer=lambda: now[0], min_interval=1.0)
    assert watcher.current().current_context == "a"
    _bump(path, kubeconfig_text("b", "a", "b"))
    assert watcher.current().current_context == "a"  # within min_interval: not even a stat
    now[0] += 1.5
    assert watcher.current().current_context == "b"


# ---------------------------------------------------------------- the CLI on the corpus (issue 8)

CLI_CASES = [
    ("corrupt.yaml", None, "not valid YAML"),
    ("not_a_mapping.yaml", None, "must be a mapping"),
    ("garbage.bin", None, "not text"),
    ("contexts_not_a_list.yaml", None, "must be a list"),
    ("no_current_context.yaml", None, "no current context"),
    ("context_not_found.yaml", None, "current context 'staging' not found"),
    ("context_not_found.yaml", "qa", "context 'qa' not found"),
    ("missing_cluster.yaml", None, "cluster 'ghost'"),
    ("missing_user.yaml", None, "user 'ghost'"),
    ("no_server.yaml", None, "has no server"),
    ("does-not-exist.yaml", None, "does not exist"),
]


@pytest.mark.parametrize(("name", "context", "expected"), CLI_CASES)
def test_run_refuses_a_bad_kubeconfig_with_one_line_and_exit_2(
    name: str, context: str | None, expected: str, tmp_path: Path, hermetic_env: Path
) -> None:
    from tests.conftest import run_cli

    config = tmp_path / "config.yaml"
    extra = f"    context: {context}\n" if context else ""
    config.write_text(
        "portForwards:\n  api:\n    target: service/api\n    targetPort: 80\n"
        f"    localPort: 18080\n{extra}"
    )
    kubeconfig = CORPUS / name
    before = {p: p.read_bytes() for p in CORPUS.glob("*.*")}
    home_before = sorted(p for p in hermetic_env.rglob("*"))
    result = run_cli("run", "--config", str(config), "--kubeconfig", str(kubeconfig), timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in lines[0] and str(kubeconfig) in lines[0]
    assert not any(m in result.stderr + result.stdout for m in SECRET_MARKERS)
    assert {p: p.read_bytes() for p in CORPUS.glob("*.*")} == before  # nothing written
    assert sorted(p for p in hermetic_env.rglob("*")) == home_before  # no user file created
