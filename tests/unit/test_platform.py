"""Each platform's argv, spawn options, stop plan, paths, kubectl lookup and open/copy commands.

The platform is injected (``for_name("win32")`` …), never by patching ``sys.platform``: every
implementation is exercised on this Linux machine. The OS calls go through recording ``ops``.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from kportforward.platform import (
    NO_PDEATHSIG_ENV,
    Platform,
    StopStep,
    current,
    ensure_private_dir,
    for_name,
)
from kportforward.platform.desktop import copy_text, open_url
from kportforward.platform.posix import setpriv_path

ARGV = ["kubectl", "port-forward", "--address", "127.0.0.1", "service/api", "8080:80"]


class Recorder:
    """Records every OS call a platform makes instead of making it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int | None]] = []

    def killpg(self, pgid: int, sig: int) -> None:
        self.calls.append(("killpg", pgid, sig))

    def kill(self, pid: int, sig: int) -> None:
        self.calls.append(("kill", pid, sig))

    def ctrl_break(self, pid: int) -> None:
        self.calls.append(("ctrl_break", pid, None))

    def terminate_tree(self, pid: int) -> None:
        self.calls.append(("terminate_tree", pid, None))


def test_current_is_chosen_once_and_matches_this_machine():
    assert current() is current()
    if sys.platform.startswith("linux"):
        assert current().name == "linux"
    assert [for_name(n).name for n in ("linux", "darwin", "win32", "freebsd14")] == [
        "linux",
        "darwin",
        "win32",
        "darwin",  # other POSIX systems: BSD sockets, no parent-death signal
    ]


# -- spawn options ----------------------------------------------------------------------------


@pytest.mark.skipif(setpriv_path() is None, reason="util-linux setpriv is not installed")
def test_linux_wraps_kubectl_in_setpriv_for_the_parent_death_signal():
    opts = for_name("linux").spawn_options(ARGV, {})
    assert opts.argv == [setpriv_path(), "--pdeathsig", "KILL", "--", *ARGV]
    assert opts.kwargs == {"start_new_session": True, "preexec_fn": None}
    assert opts.pdeathsig


def test_linux_without_pdeathsig_when_the_test_switch_is_set():
    opts = for_name("linux").spawn_options(ARGV, {NO_PDEATHSIG_ENV: "1"})
    assert opts.argv == ARGV
    assert opts.kwargs == {"start_new_session": True, "preexec_fn": None}
    assert not opts.pdeathsig
    # "0" means the switch is off: Linux keeps its parent-death signal (setpriv or prctl)
    kept = for_name("linux").spawn_options(ARGV, {NO_PDEATHSIG_ENV: "0"})
    assert kept.pdeathsig == sys.platform.startswith("linux")


def test_darwin_has_a_new_session_and_no_parent_death_signal():
    opts = for_name("darwin").spawn_options(ARGV, {})
    assert opts.argv == ARGV
    assert opts.kwargs == {"start_new_session": True, "preexec_fn": None}
    assert not opts.pdeathsig


def test_windows_uses_a_new_process_group_and_no_posix_keywords():
    opts = for_name("win32").spawn_options(ARGV, {})
    assert opts.argv == ARGV
    # CREATE_NEW_PROCESS_GROUP only: CREATE_NO_WINDOW would cut kubectl off the console that
    # delivers CTRL_BREAK_EVENT. preexec_fn/start_new_session do not exist there.
    assert opts.kwargs == {"creationflags": 0x00000200}


def test_helpers_get_a_group_of_their_own_without_the_parent_death_signal():
    assert for_name("linux").group_kwargs() == {"start_new_session": True}
    assert for_name("darwin").group_kwargs() == {"start_new_session": True}
    assert for_name("win32").group_kwargs() == {"creationflags": 0x00000200}


# -- stop plans -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["linux", "darwin"])
def test_posix_stop_plan_is_sigint_sigterm_sigkill_to_the_group(name):
    plan = for_name(name).stop_plan(1.5, 0.25)
    assert [s.label for s in plan] == [
        "SIGINT to the group",
        "SIGTERM to the group",
        "SIGKILL to the group",
    ]
    assert [s.signal for s in plan] == [2, 15, 9]
    assert [s.wait for s in plan] == [1.5, 0.25, None]
    assert [s.action for s in plan] == ["interrupt", "terminate", "kill"]


def test_windows_stop_plan_is_ctrl_break_then_terminate():
    plan = for_name("win32").stop_plan(1.5, 0.25)
    assert [s.label for s in plan] == [
        "CTRL_BREAK_EVENT to the group",
        "TerminateProcess to the group",
    ]
    assert [(s.action, s.signal, s.wait) for s in plan] == [
        ("interrupt", 1, 1.5),
        ("kill", None, None),
    ]


def test_posix_signal_goes_to_the_group_and_a_gone_process_is_fine():
    rec = Recorder()
    plat = for_name("darwin", rec)
    for step in plat.stop_plan():
        plat.signal(4242, step)
    plat.signal(4242, StopStep("terminate", 15, "SIGTERM", None, group=False))
    assert rec.calls == [
        ("killpg", 4242, 2),
        ("killpg", 4242, 15),
        ("killpg", 4242, 9),
        ("kill", 4242, 15),
    ]

    class Gone(Recorder):
        def killpg(self, pgid: int, sig: int) -> None:
            raise ProcessLookupError

    for_name("linux", Gone()).signal(4242, for_name("linux").stop_plan()[0])  # no exception


def test_windows_signal_sends_the_break_event_then_terminates_the_tree():
    rec = Recorder()
    plat = for_name("win32", rec)
    for step in plat.stop_plan():
        plat.signal(77, step)
    assert rec.calls == [("ctrl_break", 77, None), ("terminate_tree", 77, None)]


# -- kubectl lookup ---------------------------------------------------------------------------


def _which(found: dict[str, str]):
    asked: list[tuple[str, str | None]] = []

    def which(name: str, path: str | None) -> str | None:
        asked.append((name, path))
        return found.get(name)

    return which, asked


def test_windows_looks_for_kubectl_exe_on_path():
    which, asked = _which({"kubectl.exe": r"C:\tools\kubectl.exe"})
    env = {"PATH": r"C:\tools;C:\Windows"}
    assert for_name("win32").find_kubectl(env, which) == r"C:\tools\kubectl.exe"
    assert asked == [("kubectl.exe", r"C:\tools;C:\Windows")]


def test_posix_looks_for_kubectl_and_says_none_when_missing():
    which, asked = _which({})
    assert for_name("darwin").find_kubectl({"PATH": "/opt/bin"}, which) is None
    assert asked == [("kubectl", "/opt/bin")]
    assert for_name("linux").find_kubectl() == __import__("shutil").which("kubectl")


# -- paths ------------------------------------------------------------------------------------


def test_linux_paths_follow_xdg_and_ignore_relative_values():
    env = {
        "XDG_CONFIG_HOME": "/x/conf",
        "XDG_CACHE_HOME": "relative/cache",  # invalid by the XDG spec: ignored
        "XDG_STATE_HOME": "/x/state",
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "TMPDIR": "/x/tmp",
    }
    p = for_name("linux").paths(env, home="/home/ann")
    assert p.config_dir == Path("/x/conf/kportforward")
    assert p.config_file == Path("/x/conf/kportforward/config.yaml")
    assert p.cache_dir == Path("/home/ann/.cache/kportforward")
    assert p.log_dir == Path("/x/state/kportforward")
    assert p.runtime_dir == Path("/run/user/1000/kportforward")
    assert p.screenshots_dir == Path("/home/ann/Pictures/kportforward")
    assert p.temp_dir == Path("/x/tmp")


def test_linux_runtime_dir_without_xdg_runtime_is_per_user_under_tmp():
    p = for_name("linux").paths({"HOME": "/home/ann", "TMPDIR": "/x/tmp"})
    assert p.config_dir == Path("/home/ann/.config/kportforward")  # the Go tool's location
    assert p.runtime_dir == Path(f"/x/tmp/kportforward-{os.getuid()}")
    assert p.log_dir == Path("/home/ann/.local/state/kportforward")


def test_darwin_keeps_the_config_where_go_users_have_it_and_uses_library_for_the_rest():
    p = for_name("darwin").paths({"TMPDIR": "/var/folders/ab/T/"}, home="/Users/ann")
    assert p.config_file == Path("/Users/ann/.config/kportforward/config.yaml")
    assert p.cache_dir == Path("/Users/ann/Library/Caches/kportforward")
    assert p.log_dir == Path("/Users/ann/Library/Logs/kportforward")
    assert p.runtime_dir == Path(f"/var/folders/ab/T/kportforward-{os.getuid()}")
    assert p.screenshots_dir == Path("/Users/ann/Pictures/kportforward")


def test_windows_paths_use_appdata_and_localappdata():
    env = {
        "APPDATA": r"C:\Users\ann\AppData\Roaming",
        "LOCALAPPDATA": r"C:\Users\ann\AppData\Local",
        "USERPROFILE": r"C:\Users\ann",
        "TEMP": r"C:\Users\ann\AppData\Local\Temp",
    }
    p = for_name("win32").paths(env)
    assert str(p.config_dir) == r"C:\Users\ann\AppData\Roaming\kportforward"
    assert str(p.config_file) == r"C:\Users\ann\AppData\Roaming\kportforward\config.yaml"
    assert str(p.cache_dir) == r"C:\Users\ann\AppData\Local\kportforward\Cache"
    assert str(p.log_dir) == r"C:\Users\ann\AppData\Local\kportforward\Logs"
    assert str(p.runtime_dir) == r"C:\Users\ann\AppData\Local\kportforward\run"
    assert str(p.screenshots_dir) == r"C:\Users\ann\Pictures\kportforward"
    assert str(p.temp_dir) == r"C:\Users\ann\AppData\Local\Temp"


def test_windows_paths_without_appdata_fall_back_to_the_profile():
    p = for_name("win32").paths({}, home=r"C:\Users\bob")
    assert str(p.config_dir) == r"C:\Users\bob\AppData\Roaming\kportforward"
    assert str(p.log_dir) == r"C:\Users\bob\AppData\Local\kportforward\Logs"
    assert str(p.temp_dir) == r"C:\Users\bob\AppData\Local\Temp"


def test_a_planted_symlink_is_refused_as_the_runtime_dir(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "run").symlink_to(elsewhere)
    with pytest.raises(PermissionError, match="symbolic link"):
        ensure_private_dir(tmp_path / "run")


def test_private_dir_is_created_0700_and_tightened(tmp_path):
    made = ensure_private_dir(tmp_path / "a" / "run")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    assert stat.S_IMODE(ensure_private_dir(loose).stat().st_mode) == 0o700


# -- open and copy ----------------------------------------------------------------------------


class FakePopen:
    """A ``subprocess.Popen`` stand-in: records argv and what was written to stdin."""

    made: ClassVar[list[FakePopen]] = []

    def __init__(self, argv, *, code: int = 0, stderr_text: bytes = b"", **kwargs) -> None:
        self.argv, self.kwargs, self.code, self.written = argv, kwargs, code, b""
        if stderr_text:
            kwargs["stderr"].write(stderr_text)
        self.stdin = self
        FakePopen.made.append(self)

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> int:
        return self.code

    @classmethod
    def runs(cls) -> list[tuple[list[str], bytes]]:
        return [(p.argv, p.written) for p in cls.made]


@pytest.fixture
def popen():
    FakePopen.made = []
    return FakePopen


def _all(name: str, path: str | None) -> str:
    return name if name.startswith("/") else f"/usr/bin/{name}"


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("linux", ["/usr/bin/xdg-open", "http://localhost:8080/docs"]),
        ("darwin", ["/usr/bin/open", "http://localhost:8080/docs"]),
        (
            "win32",
            ["/usr/bin/rundll32.exe", "url.dll,FileProtocolHandler", "http://localhost:8080/docs"],
        ),
    ],
)
def test_open_url_runs_the_platform_opener(name, argv, popen):
    env = {"DISPLAY": ":0"}
    res = open_url("localhost:8080/docs", platform=for_name(name), env=env, which=_all, run=popen)
    assert res.ok, res.reason
    assert list(res.command) == argv
    assert popen.runs() == [(argv, b"")]
    assert "opened http://localhost:8080/docs with" in res.reason


def test_open_url_declines_without_a_display_on_linux_and_refuses_other_schemes(popen):
    linux = for_name("linux")
    res = open_url("http://x", platform=linux, env={}, which=_all, run=popen)
    assert not res.ok and "no display" in res.reason
    res = open_url(
        "file:///etc/passwd", platform=linux, env={"DISPLAY": ":0"}, which=_all, run=popen
    )
    assert not res.ok and "only http and https" in res.reason
    assert popen.runs() == []


def test_open_url_names_what_to_install_and_reports_a_failing_tool(popen):
    linux = for_name("linux")
    env = {"DISPLAY": ":0"}
    res = open_url("http://x", platform=linux, env=env, which=lambda n, p: None, run=popen)
    assert (res.ok, res.reason) == (False, "no xdg-open: install xdg-utils")

    def failing(argv, **kw):
        return FakePopen(argv, code=4, stderr_text=b"xdg-open: no method available\n", **kw)

    res = open_url("http://x", platform=linux, env=env, which=_all, run=failing)
    assert (res.ok, res.reason) == (False, "xdg-open failed: xdg-open: no method available")


@pytest.mark.parametrize(
    ("name", "env", "argv", "data"),
    [
        ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, ["/usr/bin/wl-copy"], b"http://x"),
        ("linux", {"DISPLAY": ":0"}, ["/usr/bin/xclip", "-selection", "clipboard"], b"http://x"),
        ("darwin", {}, ["/usr/bin/pbcopy"], b"http://x"),
        ("win32", {}, ["/usr/bin/clip.exe"], b"\xff\xfeh\x00t\x00t\x00p\x00:\x00/\x00/\x00x\x00"),
    ],
)
def test_copy_text_feeds_the_platform_tool(name, env, argv, data, popen):
    res = copy_text("http://x", platform=for_name(name), env=env, which=_all, run=popen)
    assert res.ok, res.reason
    assert popen.runs() == [(argv, data)]


def test_copy_text_without_a_tool_or_display_says_why(popen):
    linux = for_name("linux")
    res = copy_text("x", platform=linux, env={"DISPLAY": ":0"}, which=lambda n, p: None, run=popen)
    assert (res.ok, res.reason) == (
        False,
        "no clipboard tool: install wl-clipboard (Wayland) or xclip (X11)",
    )
    assert copy_text("x", platform=linux, env={}, which=_all, run=popen).reason == (
        "no display: no system clipboard to copy to"
    )


def test_a_real_copy_tool_runs_without_a_shell(tmp_path):
    """The real Popen path: a stand-in ``xclip`` script on PATH receives the text on stdin."""
    out = tmp_path / "clipboard"
    tool = tmp_path / "xclip"
    tool.write_text(f"#!/bin/sh\ncat > {out}\n")
    tool.chmod(0o755)
    env = {"DISPLAY": ":0", "PATH": str(tmp_path)}
    res = copy_text("http://127.0.0.1:8080/a&b", platform=for_name("linux"), env=env)
    assert res.ok, res.reason
    assert out.read_bytes() == b"http://127.0.0.1:8080/a&b"
    assert res.command[0] == str(tool)


def test_every_platform_implements_the_whole_interface():
    public = [n for n, v in vars(Platform).items() if callable(v) and not n.startswith("_")]
    for name in ("linux", "darwin", "win32"):
        plat = for_name(name)
        for method in public:
            impl = getattr(type(plat), method)
            if getattr(Platform, method) is impl and method in {
                "spawn_options",
                "group_kwargs",
                "stop_plan",
                "signal",
                "paths",
                "open_url_commands",
                "copy_commands",
                "missing_tool_hint",
                "bind_plan",
            }:
                pytest.fail(f"{name} does not implement {method}")
