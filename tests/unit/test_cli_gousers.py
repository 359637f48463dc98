"""A Go kportforward user's command lines, the Go debug flags, and unknown options."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from kportforward import cli, debugstats
from kportforward.core.config import load_config
from kportforward.debugstats import DebugOptions, DebugStats
from tests.conftest import run_cli

# The Go project's README and --help examples (catio-tech/kportforward), as a user types them.
GO_LINES_OURS = [
    ["version"],
    ["--log-file", "./kportforward.log"],
    ["--log-file", "/var/log/kportforward.log"],
    ["profile", "--cpuprofile=cpu.prof", "--duration=30s"],
    ["profile", "--memprofile=mem.prof", "--duration=30s"],
    ["profile", "--duration=60s", "--cpuprofile=cpu.prof", "--memprofile=mem.prof"],
    ["--mem-stats-interval", "5m"],
    ["--heap-snapshot-dir", "./pprof", "--heap-snapshot-interval", "30m"],
    ["--config-url", ""],
    ["--config-url", "https://raw.githubusercontent.com/o/r/refs/heads/main/default.yaml"],
]
# Lines whose flags other branches add (Swagger UI, gRPC UI): they must never read as a command.
GO_LINES_UI = [
    ["--grpcui"],
    ["--swaggerui"],
    ["--grpcui", "--swaggerui"],
    ["--grpcui", "--swaggerui", "--log-file", "/var/log/kportforward.log"],
]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    load_config.cache_clear()


@pytest.mark.parametrize("argv", GO_LINES_OURS, ids=" ".join)
def test_go_command_lines_parse(argv: list[str]) -> None:
    args = cli.build_parser().parse_args(argv)
    assert args.command in (None, "version", "profile")


@pytest.mark.parametrize("argv", GO_LINES_UI, ids=" ".join)
def test_go_ui_flags_are_never_an_invalid_command(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stop before the dashboard would open: the point is how the flags are read.
    monkeypatch.setattr(cli, "_run_command", lambda args: 0)
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert "invalid choice" not in err and "invalid command" not in err
    assert code in (0, 2)


def test_pprof_is_one_line_pointing_to_profile() -> None:
    result = run_cli("--pprof", "localhost:6060", "--mem-stats-interval", "5m", "check")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "--pprof" in line and "kportforward profile" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--frobnicate", "value"], "unknown option --frobnicate"),
        (["--frobnicate=value", "check"], "unrecognized arguments: --frobnicate=value"),
        (["check", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["-x", "check"], "unrecognized arguments: -x"),
    ],
)
def test_unknown_options_are_named_as_options(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "invalid choice" not in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--mem-stats-interval", "abc", "check"], "--mem-stats-interval"),
        (["--mem-stats-interval", "10ms", "check"], "out of range"),
        (["--heap-snapshot-interval", "1s", "--heap-snapshot-dir", "d", "check"], "out of range"),
        (["--heap-snapshot-interval", "1m", "check"], "needs --heap-snapshot-dir"),
        (["--heap-snapshot-dir", "d", "check"], "needs --heap-snapshot-interval"),
        (["--config-url", "http://example.com/x.yaml", "check"], "only for 127.0.0.1"),
        (["--config-url", "ftp://example.com/x.yaml", "check"], "https"),
    ],
)
def test_bad_debug_and_url_flags(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.splitlines()) == 1


def test_a_snapshot_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    argv = ["--heap-snapshot-dir", str(target), "--heap-snapshot-interval", "1m", "check"]
    assert cli.main(argv) == 2
    assert "not a directory" in capsys.readouterr().err


def test_check_json_prints_json_even_for_argument_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["check", "--json", "--no-such-flag"]) == 2
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["ok"] is False and "--no-such-flag" in doc["errors"][0]["message"]
    assert len(err.splitlines()) == 1


def test_check_json_on_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("portForwards: [a]\n")
    assert cli.main(["check", "--json", "--config", str(cfg)]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert doc["errors"][0]["line"] == 1 and doc["errors"][0]["key"] == "portForwards"


def _wait_for(condition, what: str, limit: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_debug_stats_log_memory_and_write_heap_snapshots(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kportforward.debugstats")
    # Below the CLI's ranges on purpose: the reporter itself takes any positive interval.
    stats = DebugStats(DebugOptions(0.05, str(tmp_path), 0.1)).start()
    try:
        _wait_for(lambda: len(stats.snapshots) >= 2, "two heap snapshots")
        _wait_for(lambda: "memory stats: rss=" in caplog.text, "a memory stats line")
    finally:
        stats.stop()
    import tracemalloc

    assert not tracemalloc.is_tracing()  # stopped with the reporter that started it
    snap = tracemalloc.Snapshot.load(stats.snapshots[0])
    assert snap.traces  # a real snapshot, loadable with the standard library
    assert Path(stats.snapshots[0]).with_suffix(".txt").read_text().startswith("traced: ")


def test_nothing_asked_nothing_started() -> None:
    assert debugstats.start(DebugOptions()) is None
    assert debugstats.start(DebugOptions(mem_stats_interval=0.0)) is None


def test_run_lists_every_problem_when_no_forward_can_start(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "portForwards:\n"
        "  a: {target: svc/a, targetPort: 80, localPort: 0}\n"
        "  b: {target: svc/b, targetPort: '²', localPort: 2}\n"
    )
    result = run_cli("run", "--config", str(cfg), timeout=30)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert "c.yaml:2: portForwards.a.localPort" in lines[0]
    assert "c.yaml:3: portForwards.b.targetPort" in lines[1]
