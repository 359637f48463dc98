"""Presenters and the coalescer: what a person sees, computed without Textual."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC

import pytest

from kportforward.core.models import ClusterStatus, ForwardStatus, Transition
from kportforward.core.states import ForwardState
from kportforward.ui import presenters as p
from kportforward.ui.actions import group_plan
from kportforward.ui.screens.log import new_lines
from kportforward.ui.updates import StatusCoalescer
from tests.ui.fakes import FROZEN_NOW, every_state_world, spec

NOW = FROZEN_NOW
S = ForwardState


def status(name: str = "api", state: ForwardState = S.RUNNING, **kw) -> ForwardStatus:
    sp = kw.pop("spec", None) or spec(name, kw.pop("port", 8080))
    return ForwardStatus(spec=sp, state=state, **kw)


def test_every_state_has_a_glyph_a_tone_and_a_severity() -> None:
    for state in ForwardState:
        assert p.GLYPHS[state] and p.TONES[state] and state in p.SEVERITY
    assert p.status_text(status(state=S.RUNNING), NOW) == "● Running"
    assert p.status_text(status(state=S.FAILED), NOW) == "✗ Failed"
    assert p.status_text(status(state=S.SUSPENDED), NOW) == "⏸ Suspended"
    assert p.status_text(status(state=S.STOPPED), NOW) == "■ Stopped"
    assert p.status_text(status(state=S.RECONNECTING), NOW) == "◐ Reconnecting"


def test_cooldown_shows_its_countdown_and_it_never_goes_negative() -> None:
    cooling = status(state=S.COOLDOWN, retry_at=NOW + 72)
    assert p.status_text(cooling, NOW) == "◦ Cooldown 1m12s"
    assert p.status_text(cooling, NOW + 100) == "◦ Cooldown 0s"


def test_url_by_type_and_on_the_moved_port() -> None:
    assert status(spec=spec("a", 8080, type="web"), local_port=8080).url == "http://localhost:8080"
    assert status(spec=spec("a", 8080, type="rest")).url == "http://localhost:8080"
    assert status(spec=spec("a", 9090, type="rpc")).url == "localhost:9090"
    assert status(spec=spec("a", 9090, type="other")).url == "localhost:9090"
    moved = status(spec=spec("a", 8080, type="web"), local_port=8081)
    cells = p.row_cells(moved, NOW)
    assert moved.url == "http://localhost:8081"
    assert cells.local == ":8081*" and cells.port_moved
    exposed = status(spec=spec("a", 8080, address="0.0.0.0"))
    assert p.row_cells(exposed, NOW).local == "0.0.0.0:8080"


def test_open_and_copy_targets_by_type() -> None:
    assert p.is_browsable(status(spec=spec("a", 1, type="web")))
    assert p.is_browsable(status(spec=spec("a", 1, type="rest")))
    assert not p.is_browsable(status(spec=spec("a", 9090, type="rpc")))
    assert p.address_text(status(spec=spec("a", 9090, type="rpc"))) == "localhost:9090"
    moved = status(spec=spec("a", 9090, type="other"), local_port=9091)
    assert p.address_text(moved) == "localhost:9091"


def test_running_rows_show_the_pod_and_traffic_others_the_reason() -> None:
    running = status(pod="api-7d9f-x", connections=3, reason="ready")
    assert p.row_cells(running, NOW).reason == "pod api-7d9f-x · 3 connections"
    assert (
        p.row_cells(replace(running, connections=1), NOW).reason == "pod api-7d9f-x · 1 connection"
    )
    assert p.row_cells(replace(running, pod=None), NOW).reason == "ready"
    failed = status(state=S.FAILED, reason='services "x" not found', pod="old")
    assert p.row_cells(failed, NOW).reason == 'services "x" not found'
    head, tone, rest = p.selection_line(failed, NOW)
    assert tone == "bad" and rest == 'services "x" not found' and "Failed" in head


def test_exposed_forward_is_marked() -> None:
    exposed = status(spec=spec("admin", 8081, address="0.0.0.0"))
    cells = p.row_cells(exposed, NOW)
    assert cells.exposed and cells.name == f"admin {p.EXPOSED_MARK}"
    assert not p.row_cells(status(), NOW).exposed
    fields = dict(p.detail_fields(exposed, NOW))
    assert "exposed" in fields["Address"]


def test_uptime_and_reason_cells() -> None:
    running = status(running_since=NOW - 3725, reason="ready")
    assert p.uptime_text(running, NOW) == "1h02m"
    assert p.uptime_text(status(state=S.FAILED), NOW) == p.NO_VALUE
    failed = status(state=S.FAILED, reason="", last_error="error:\n  services  not found")
    assert p.reason_text(failed) == "error: services not found"


def test_counts_line_lists_only_states_that_occur_worst_first() -> None:
    _, statuses, _ = every_state_world()
    line = p.counts_line(statuses)
    assert line.startswith("● 3/11 running · ✗ 1 failed · ⚠ 1 degraded · ◦ 1 cooldown")
    assert line.endswith("■ 1 stopped")
    assert p.counts_line([status(), status("b")]) == "● 2/2 running"
    assert p.counts_line([]) == "● 0/0 running"
    parts = dict(p.counts_parts(statuses))
    assert parts["✗ 1 failed"] == "bad" and parts["⚠ 1 degraded"] == "warn"


def test_cluster_line_reachability_and_in_use() -> None:
    up = ClusterStatus("kind-dev", reachable=True)
    down = ClusterStatus("staging", reachable=False, reason="connection refused")
    unknown = ClusterStatus("kind-dev")
    assert p.cluster_text(up) == ("kind-dev ● reachable", "good")
    assert p.cluster_text(down) == ("staging ✗ unreachable: connection refused", "bad")
    assert p.cluster_text(unknown)[1] == "busy"
    assert p.cluster_text(unknown, in_use=True) == ("kind-dev ● connected", "good")
    running_current = status()
    running_staging = status("s", spec=spec("s", 1, context="staging"))
    assert p.cluster_in_use(unknown, [running_current])
    assert not p.cluster_in_use(unknown, [replace(running_current, state=S.FAILED)])
    assert p.cluster_in_use(ClusterStatus("staging"), [running_staging])
    assert not p.cluster_in_use(unknown, [running_staging])


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("name", ["admin", "api", "billing", "cache", "ghost", "grpc"]),
        ("status", ["ghost", "cache", "billing", "staging-db", "search", "grpc"]),
        ("type", ["cache", "queue", "staging-db", "api", "billing", "ghost"]),
        ("port", ["web", "staging-db", "queue", "cache", "api", "admin"]),
        ("uptime", ["web", "cache", "api", "admin", "billing", "ghost"]),
    ],
)
def test_sort_keys(key: str, expected: list[str]) -> None:
    """Ascending means smallest first (the shortest uptime too)."""
    _, statuses, _ = every_state_world()
    names = [s.name for s in p.sort_statuses(statuses, key)]
    assert names[: len(expected)] == expected
    reverse = [s.name for s in p.sort_statuses(statuses, key, reverse=True)]
    if key == "uptime":  # forwards without an uptime stay last either way
        assert reverse[:4] == ["admin", "api", "cache", "web"] and reverse[4:] == names[4:]
    else:
        assert reverse == names[::-1]


def test_filter_matches_name_namespace_type_state_group_all_words() -> None:
    _, statuses, _ = every_state_world()

    def hits(q: str) -> set[str]:
        return {s.name for s in statuses if p.matches(s, q)}

    assert hits("") == {s.name for s in statuses}
    assert hits("pay") == {"billing", "metrics"}  # namespace payments / group payments
    assert hits("data") == {"cache", "search"}
    assert hits("rpc") == {"grpc"}
    assert hits("FAILED") == {"ghost"}
    assert hits("core web") == {"web"}
    assert hits("nothing-like-this") == set()


def test_details_fields_and_history() -> None:
    _, statuses, _ = every_state_world()
    web = next(s for s in statuses if s.name == "web")
    fields = dict(p.detail_fields(web, NOW, tz=UTC))
    assert fields["Ports"] == "3001 → 80  (configured 3000)"
    assert fields["Port moved"] == "8080 held by pid 999 (python3)"
    assert fields["PID"] == "4102"
    assert fields["Restarts"] == "2 unplanned · 0 asked for (R, config)"
    assert fields["Uptime"] == "1m35s  (since 14:11:45)"
    api = next(s for s in statuses if s.name == "api")
    fields = dict(p.detail_fields(api, NOW))
    assert fields["kubectl RSS"] == "30.0 MiB" and fields["kubectl CPU"] == "0.4%"
    assert fields["Last probe"] == "6.0 ms" and fields["Connections"] == "2 open · 42 relayed"
    rows = p.history_rows(web, UTC, NOW)
    assert rows[0][1] == "● Running" and rows[1] == (
        "14:11:40",
        "◐ Reconnecting",
        "pod web-1 deleted",
        "busy",
    )
    old = replace(web, history=(Transition(NOW - 90000, S.RUNNING, "ready"),))
    assert p.history_rows(old, UTC, NOW)[0][0] == "2026-09-20 13:13:20"


def test_format_bytes() -> None:
    assert p.format_bytes(None) == p.NO_VALUE
    assert p.format_bytes(512) == "512 B"
    assert p.format_bytes(1536) == "1.5 KiB"
    assert p.format_bytes(5 * 1024**3) == "5.0 GiB"


def test_group_plan_stops_while_any_member_runs_then_starts_all() -> None:
    _, statuses, _ = every_state_world()
    api = next(s for s in statuses if s.name == "api")
    assert group_plan(api, statuses) == ("stop", ["api", "web"])
    stopped = [replace(s, state=S.STOPPED) if s.spec.group == "core" else s for s in statuses]
    assert group_plan(api, stopped) == ("start_forward", ["api", "web"])
    ghost = next(s for s in statuses if s.name == "ghost")
    assert group_plan(ghost, statuses) is None


def test_coalescer_keeps_the_newest_per_forward_never_dropping_another() -> None:
    c = StatusCoalescer()
    x1, x2 = status("x", reason="1"), status("x", reason="2")
    y1 = status("y", reason="1")
    assert c.put(x1) is True  # first of a batch: ring the doorbell
    assert c.put(y1) is False
    assert c.put(x2) is False
    batch = c.drain()
    assert batch == {"x": x2, "y": y1}
    assert c.received == 3 and c.delivered == 2 and len(c) == 0
    assert c.put(x1) is True


def test_log_new_lines_follows_a_ring_buffer() -> None:
    assert new_lines((), ("a", "b")) == (("a", "b"), False)
    assert new_lines(("a", "b"), ("a", "b", "c")) == (("c",), False)
    assert new_lines(("a", "b", "c"), ("b", "c", "d", "e")) == (("d", "e"), False)
    assert new_lines(("a", "b"), ("a", "b")) == ((), False)
    assert new_lines(("a", "b"), ("x", "y")) == (("x", "y"), True)


def test_presenters_and_updates_import_no_textual() -> None:
    code = (
        "import sys, kportforward.ui.presenters, kportforward.ui.updates\n"
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_details_show_api_paths_web_rows_and_a_latency_scale() -> None:
    api = status(spec=spec("api", 8080, type="rest", api_path="api", swagger_path="openapi.json"))
    fields = p.detail_fields(api, NOW, [("Swagger UI", "http://127.0.0.1:9100/api/")])
    labels = [label for label, _ in fields]
    assert labels.index("Swagger UI") == labels.index("URL") + 1
    assert dict(fields)["apiPath"] == "api" and dict(fields)["swaggerPath"] == "openapi.json"
    assert "apiPath" not in dict(p.detail_fields(status(), NOW))
    assert p.latency_scale(()) == "(no probes yet)"
    assert p.latency_scale((0.001, 0.004, 0.002)) == (
        "last 2.0 ms · min 1.0 ms · max 4.0 ms (3 probes)"
    )


def test_traffic_cell_rates_and_scale() -> None:
    from kportforward.core.models import Traffic

    assert p.traffic_cell(status()) == ""  # no door: nothing to show
    assert p.traffic_cell(status(traffic=Traffic())) == "0/s"
    assert p.traffic_cell(status(traffic=Traffic(rate_in=300.0, rate_out=550.0))) == "850/s"
    assert p.traffic_cell(status(traffic=Traffic(rate_out=12.3 * 1024))) == "12.3K/s"
    assert p.traffic_cell(status(traffic=Traffic(rate_out=1.5 * 1024**2))) == "1.5M/s"
    assert len(p.rate_text(999.9 * 1024)) <= 8  # the column's width
    running = status(pod="api-1", connections=3, traffic=Traffic(opened=3, active=1))
    assert p.row_note(running) == "pod api-1 · 3 connections (1 open)"
    assert p.traffic_scale([]) == "(no bytes in the last 60 s)"
    assert p.traffic_scale([(0, 0)] * 10) == "(no bytes in the last 10 s)"
    assert p.traffic_scale([(0, 0), (1024, 1024), (10, 0)]) == (
        "now 10 B/s · peak 2.0 KiB/s · 2.0 KiB in 3 s"
    )


def test_request_log_rows_summary_and_why_there_is_none() -> None:
    from kportforward.core.models import Traffic
    from kportforward.supervisor.httplog import HttpRequest

    long = HttpRequest(NOW - 5, "GET", "/" + "a" * 300, 200, 0.0042, 90, 2048)
    cells = p.request_cells(long, UTC, NOW)
    assert cells[0] == "14:13:15" and cells[1] == "GET" and cells[3] == "200"
    assert len(cells[2]) == p.PATH_MAX and cells[2].endswith("…")
    assert cells[4:7] == ("4.2", "90 B", "2.0 KiB")
    odd = HttpRequest(NOW, "", "", None, 0.0, 7, 0, "not HTTP")
    assert p.request_cells(odd, UTC, NOW)[1:4] == ("—", "—", "—")
    assert p.requests_summary([]) == "no requests yet"
    assert p.requests_summary([long, odd, replace(long, status=503, duration=0.1)]) == (
        "3 requests · 1 2xx · 1 5xx · 1 not HTTP · median 100.0 ms"
    )
    web = spec("web", 8080, type="web")
    assert p.requests_unavailable(status(spec=web, traffic=Traffic())) is None
    assert "frontDoor is off" in (p.requests_unavailable(status(spec=web)) or "")
    rpc = spec("grpc", 9090, type="rpc")
    assert "grpc is type rpc" in (p.requests_unavailable(status(spec=rpc, traffic=Traffic())) or "")
