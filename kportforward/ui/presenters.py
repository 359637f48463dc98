"""Pure presentation: immutable statuses in, text for the dashboard out.

Nothing here imports Textual, so every rule about what a person sees (glyphs, words, colours by
name, URLs, uptimes, counts, sort orders, filters) is unit-tested without running an app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, NamedTuple

from kportforward.core.durations import format_duration
from kportforward.core.models import ClusterStatus, ForwardStatus, Traffic
from kportforward.core.states import ForwardState

if TYPE_CHECKING:
    from kportforward.supervisor.httplog import HttpRequest

GLYPHS: dict[ForwardState, str] = {
    ForwardState.STARTING: "◌",
    ForwardState.CONNECTING: "◐",
    ForwardState.RUNNING: "●",
    ForwardState.DEGRADED: "⚠",
    ForwardState.RECONNECTING: "◐",
    ForwardState.COOLDOWN: "◦",
    ForwardState.FAILED: "✗",
    ForwardState.SUSPENDED: "⏸",
    ForwardState.STOPPED: "■",
}

TONES: dict[ForwardState, str] = {
    ForwardState.STARTING: "busy",
    ForwardState.CONNECTING: "busy",
    ForwardState.RUNNING: "good",
    ForwardState.DEGRADED: "warn",
    ForwardState.RECONNECTING: "busy",
    ForwardState.COOLDOWN: "warn",
    ForwardState.FAILED: "bad",
    ForwardState.SUSPENDED: "idle",
    ForwardState.STOPPED: "idle",
}
"""The colour family of each state; the stylesheet maps a tone to a theme colour."""

# Problems first when sorting by status: the rows that need a person float to the top.
SEVERITY: dict[ForwardState, int] = {
    ForwardState.FAILED: 0,
    ForwardState.DEGRADED: 1,
    ForwardState.COOLDOWN: 2,
    ForwardState.SUSPENDED: 3,
    ForwardState.RECONNECTING: 4,
    ForwardState.CONNECTING: 5,
    ForwardState.STARTING: 6,
    ForwardState.RUNNING: 7,
    ForwardState.STOPPED: 8,
}

SORT_KEYS = ("name", "status", "type", "port", "uptime")
PORT_MOVED_MARK = "*"
EXPOSED_MARK = "⚑"
NO_VALUE = "—"

EXAMPLE_ENTRY = """\
portForwards:
  api:
    target: service/api
    targetPort: 80
    localPort: 8080
    namespace: default
    type: rest"""


class RowCells(NamedTuple):
    """The text of one table row, column by column, and the tone of its status."""

    name: str
    status: str
    local: str
    uptime: str
    restarts: str
    traffic: str
    type: str
    namespace: str
    group: str
    reason: str
    tone: str
    port_moved: bool
    exposed: bool


_STATUS_WORDS = {state: f"{glyph} {state.value}" for state, glyph in GLYPHS.items()}


def status_text(status: ForwardStatus, now: float) -> str:
    """Glyph and word, plus the countdown for a forward in Cooldown: ``◦ Cooldown 12s``."""
    text = _STATUS_WORDS[status.state]
    if status.state is ForwardState.COOLDOWN and status.retry_at is not None:
        text += f" {format_duration(max(0.0, status.retry_at - now))}"
    return text


def uptime_text(status: ForwardStatus, now: float) -> str:
    """How long the current Running stretch has lasted, or a dash."""
    if status.running_since is None:
        return NO_VALUE
    return format_duration(max(0.0, now - status.running_since))


def port_text(status: ForwardStatus) -> str:
    """The local port in use, marked with ``*`` when the resolver moved it."""
    port = status.local_port or status.spec.local_port
    return f"{port}{PORT_MOVED_MARK}" if status.port_moved else str(port)


def local_text(status: ForwardStatus) -> str:
    """The LOCAL column: ``:18081`` on loopback (``*`` when moved), ``0.0.0.0:18081`` beyond."""
    host = status.spec.address if status.spec.exposed else ""
    return f"{host}:{port_text(status)}"


def reason_text(status: ForwardStatus) -> str:
    """The reason for the current state, or the last error when there is no reason."""
    text = status.reason or status.last_error or ""
    return " ".join(text.split())


def row_note(status: ForwardStatus) -> str:
    """The REASON / POD cell: for a Running row the pod (and its connections), the one fact
    that changes; for any other row the reason for its state.

    The connections are the user's (the door's count, else kubectl's; probes not counted)."""
    if status.state is ForwardState.RUNNING and status.pod:
        conns = status.connections
        note = f" · {conns} connection{'s' if conns != 1 else ''}" if conns else ""
        if status.traffic is not None and status.traffic.active:
            note += f" ({status.traffic.active} open)"
        return f"pod {status.pod}{note}"
    return reason_text(status)


def rate_text(per_second: float) -> str:
    """A compact rate for the TRAFFIC column: ``0/s``, ``850/s``, ``12.3K/s``, ``1.2M/s``."""
    size = float(per_second)
    for unit in ("", "K", "M", "G"):
        if size < 1000 or unit == "G":
            return f"{size:.0f}/s" if not unit else f"{size:.1f}{unit}/s"
        size /= 1024
    return f"{size:.1f}G/s"  # pragma: no cover - the loop always returns


def traffic_cell(status: ForwardStatus) -> str:
    """The TRAFFIC column: bytes/s through the front door over the last second, both ways;
    empty when kubectl listens on the port itself (``frontDoor: false``)."""
    t = status.traffic
    return "" if t is None else rate_text(t.rate_in + t.rate_out)


def traffic_fields(traffic: Traffic | None, connections: int) -> list[tuple[str, str]]:
    """The Details rows about traffic: the door's connections and bytes, or that there is no
    door (and kubectl's own connection count)."""
    if traffic is None:
        return [
            ("Front door", "off: kubectl listens on the port itself (frontDoor: false)"),
            ("Connections", f"{connections} (kubectl's count, over all its restarts)"),
        ]
    t = traffic
    conns = f"{t.active} open · {t.opened} relayed"
    if t.waiting:
        conns += f" · {t.waiting} waiting for the tunnel"
    if t.failed:
        conns += f" · {t.failed} failed (hold timeout or stopped)"
    if t.ended_with_tunnel:
        conns += f" · {t.ended_with_tunnel} cut by a restart"
    return [
        ("Connections", conns),
        ("Bytes", f"in {format_bytes(t.bytes_in)} · out {format_bytes(t.bytes_out)}"),
        (
            "Rate",
            f"in {format_bytes(round(t.rate_in))}/s · out {format_bytes(round(t.rate_out))}/s",
        ),
    ]


def traffic_scale(history: Sequence[tuple[int, int]]) -> str:
    """The traffic sparkline's scale: ``now 1.2 KiB/s · peak 3.4 MiB/s · 5.1 MiB in 60 s``."""
    totals = [i + o for i, o in history]
    if not any(totals):
        return f"(no bytes in the last {len(totals) or 60} s)"
    return (
        f"now {format_bytes(totals[-1])}/s · peak {format_bytes(max(totals))}/s · "
        f"{format_bytes(sum(totals))} in {len(totals)} s"
    )


def selection_line(status: ForwardStatus, now: float) -> tuple[str, str, str]:
    """The status strip under the table for the selected forward: ``(state text, tone, rest)``
    where ``rest`` is the full reason, or for a Running row its address, pod and uptime."""
    head = status_text(status, now)
    tone = TONES[status.state]
    if status.state is ForwardState.RUNNING:
        parts = [f"pod {status.pod}"] if status.pod else []
        parts += [f"up {uptime_text(status, now)}", status.url]
        if status.restarts:
            parts.append(
                f"{status.restarts} unplanned restart{'s' if status.restarts != 1 else ''}"
            )
        return head, tone, " · ".join(parts)
    return head, tone, reason_text(status) or NO_VALUE


def is_browsable(status: ForwardStatus) -> bool:
    """True for forwards a browser can open (``type: web`` or ``rest``, served over HTTP)."""
    return status.spec.type in ("web", "rest")


def address_text(status: ForwardStatus) -> str:
    """``localhost:PORT`` (or ``ADDRESS:PORT`` when exposed): what ``c`` copies for non-HTTP."""
    spec = status.spec
    host = spec.address if spec.exposed else "localhost"
    return f"{host}:{status.local_port or spec.local_port}"


def row_cells(status: ForwardStatus, now: float) -> RowCells:
    """Every cell of a table row for ``status`` at wall-clock time ``now``."""
    spec = status.spec
    name = f"{spec.name} {EXPOSED_MARK}" if spec.exposed else spec.name
    return RowCells(
        name=name,
        status=status_text(status, now),
        local=local_text(status),
        uptime=uptime_text(status, now),
        restarts=str(status.restarts),
        traffic=traffic_cell(status),
        type=spec.type,
        namespace=spec.namespace or "",
        group=spec.group or "",
        reason=row_note(status),
        tone=TONES[status.state],
        port_moved=status.port_moved,
        exposed=spec.exposed,
    )


def counts_parts(statuses: Iterable[ForwardStatus]) -> list[tuple[str, str]]:
    """``[("● 18/20 running", "good"), ("✗ 1 failed", "bad"), …]``: the counts line as
    (text, tone) parts; only the states that occur, worst first after running."""
    counts: dict[ForwardState, int] = {}
    total = 0
    for status in statuses:
        counts[status.state] = counts.get(status.state, 0) + 1
        total += 1
    running = counts.get(ForwardState.RUNNING, 0)
    tone = "good" if running == total and total else TONES[ForwardState.RUNNING]
    parts = [(f"{GLYPHS[ForwardState.RUNNING]} {running}/{total} running", tone)]
    for state in sorted(counts, key=SEVERITY.__getitem__):
        if state is not ForwardState.RUNNING:
            text = f"{GLYPHS[state]} {counts[state]} {state.value.lower()}"
            parts.append((text, TONES[state]))
    return parts


def counts_line(statuses: Iterable[ForwardStatus]) -> str:
    """``● 18/20 running · ✗ 1 failed · ◦ 1 cooldown`` (plain text of ``counts_parts``)."""
    return " · ".join(text for text, _ in counts_parts(statuses))


def cluster_text(cluster: ClusterStatus, in_use: bool = False) -> tuple[str, str]:
    """One cluster as ``(text, tone)``: ``kind-dev ● reachable`` or with the reason it is not.

    The supervisor probes a cluster only when kubectl reports trouble, so "no probe yet" with a
    forward running through it (``in_use``) means the cluster is answering.
    """
    if cluster.reachable is None:
        if in_use:
            return f"{cluster.context} ● connected", "good"
        return f"{cluster.context} ◌ not contacted yet", "busy"
    if cluster.reachable:
        return f"{cluster.context} ● reachable", "good"
    reason = f": {cluster.reason}" if cluster.reason else ""
    return f"{cluster.context} ✗ unreachable{reason}", "bad"


def cluster_in_use(cluster: ClusterStatus, statuses: Iterable[ForwardStatus]) -> bool:
    """True when some Running forward goes through ``cluster``.

    Forwards naming a context match it by name; forwards without one use the current context,
    which is any cluster no forward names explicitly.
    """
    statuses = list(statuses)
    named = {s.spec.context for s in statuses if s.spec.context}
    for s in statuses:
        if s.state is not ForwardState.RUNNING:
            continue
        if s.spec.context == cluster.context or (
            s.spec.context is None and cluster.context not in named
        ):
            return True
    return False


def contexts_of(statuses: Iterable[ForwardStatus]) -> tuple[str, ...]:
    """The contexts the forwards name; ``current`` stands for the kubeconfig's current context."""
    return tuple(sorted({s.spec.context or "current" for s in statuses}))


def _status_key(s: ForwardStatus) -> tuple[int, str]:
    return (SEVERITY[s.state], s.name)


def _type_key(s: ForwardStatus) -> tuple[str, str]:
    return (s.spec.type, s.name)


def _port_key(s: ForwardStatus) -> tuple[int, str]:
    return (s.local_port or s.spec.local_port, s.name)


def _uptime_key(s: ForwardStatus) -> tuple[float, str]:
    # Ascending = shortest uptime first = the latest start first.
    return (-(s.running_since or 0.0), s.name)


def _name_key(s: ForwardStatus) -> str:
    return s.name


SORTERS: dict[str, Callable[[ForwardStatus], object]] = {
    "name": _name_key,
    "status": _status_key,
    "type": _type_key,
    "port": _port_key,
    "uptime": _uptime_key,
}


def sort_statuses(
    statuses: Iterable[ForwardStatus], key: str, reverse: bool = False
) -> list[ForwardStatus]:
    """Statuses ordered by one of ``SORT_KEYS``, ascending (smallest first) unless ``reverse``;
    ties broken by name so the order is stable. By uptime, forwards that are not Running (no
    uptime) come last either way."""
    if key == "uptime":
        statuses = list(statuses)
        up = [s for s in statuses if s.running_since is not None]
        down = sorted((s for s in statuses if s.running_since is None), key=_name_key)
        return sorted(up, key=_uptime_key, reverse=reverse) + down
    return sorted(statuses, key=SORTERS[key], reverse=reverse)  # type: ignore[arg-type]


def matches(status: ForwardStatus, query: str) -> bool:
    """True when every word of ``query`` occurs in the name, namespace, type, state or group."""
    words = query.lower().split()
    if not words:
        return True
    spec = status.spec
    haystack = " ".join(
        (spec.name, spec.namespace or "", spec.type, status.state.value, spec.group or "")
    ).lower()
    return all(word in haystack for word in words)


def format_clock(ts: float, tz: tzinfo | None, now: float | None = None) -> str:
    """``14:03:07`` for today, ``2026-11-21 14:03:07`` for another day."""
    when = datetime.fromtimestamp(ts, tz)
    if now is not None and datetime.fromtimestamp(now, tz).date() == when.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M:%S")


def format_bytes(n: int | None) -> str:
    """``42.1 MiB``; a dash when unknown."""
    if n is None:
        return NO_VALUE
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


def restarts_text(status: ForwardStatus) -> str:
    """``2 unplanned · 1 asked for`` (a user's R, a stop/start, a config edit)."""
    return f"{status.restarts} unplanned · {status.planned_restarts} asked for (R, config)"


def latency_scale(latencies: Sequence[float]) -> str:
    """The sparkline's scale: ``last 3.1 ms · min 1.2 ms · max 8.4 ms (24 probes)``."""
    if not latencies:
        return "(no probes yet)"
    ms = [v * 1000 for v in latencies]
    return (
        f"last {ms[-1]:.1f} ms · min {min(ms):.1f} ms · max {max(ms):.1f} ms "
        f"({len(ms)} probe{'s' if len(ms) != 1 else ''})"
    )


def detail_fields(
    status: ForwardStatus,
    now: float,
    web: Sequence[tuple[str, str]] = (),
    tz: tzinfo | None = None,
) -> list[tuple[str, str]]:
    """The details screen's label/value pairs, in reading order.

    ``web`` holds extra rows for the forward's Swagger UI / gRPC UI (label, value).
    """
    spec = status.spec
    ports = f"{status.local_port or spec.local_port} → {spec.target_port}"
    if status.port_moved:
        ports += f"  (configured {spec.local_port})"
    latency = NO_VALUE
    if status.probe_latencies:
        latency = f"{status.probe_latencies[-1] * 1000:.1f} ms"
    retry = NO_VALUE
    if status.retry_at is not None:
        retry = f"in {format_duration(max(0.0, status.retry_at - now))}"
    uptime = uptime_text(status, now)
    if status.running_since is not None:
        uptime += f"  (since {format_clock(status.running_since, tz, now)})"
    fields = [
        ("State", status_text(status, now)),
        ("Reason", reason_text(status) or NO_VALUE),
        ("Target", spec.target),
        ("Pod", status.pod or NO_VALUE),
        ("Namespace", spec.namespace or "(context default)"),
        ("Context", spec.context or "(current context)"),
        ("Ports", ports),
        ("Address", f"{spec.address}  {EXPOSED_MARK} exposed" if spec.exposed else spec.address),
        ("URL", status.url),
        *web,
        ("Type", spec.type),
    ]
    if spec.api_path is not None:
        fields.append(("apiPath", spec.api_path))
    if spec.swagger_path:
        fields.append(("swaggerPath", spec.swagger_path))
    fields += [
        ("Group", spec.group or NO_VALUE),
        ("PID", str(status.pid) if status.pid else NO_VALUE),
        ("kubectl RSS", format_bytes(status.rss)),
        (
            "kubectl CPU",
            NO_VALUE if status.cpu_percent is None else f"{status.cpu_percent:.1f}%",
        ),
        ("Restarts", restarts_text(status)),
        *traffic_fields(status.traffic, status.connections),
        ("Uptime", uptime),
        ("Next retry", retry),
        ("Last probe", latency),
        ("Last error", status.last_error or NO_VALUE),
        ("Port moved", status.port_moved_reason or NO_VALUE),
    ]
    if spec.kubeconfig:
        fields.insert(6, ("Kubeconfig", spec.kubeconfig))
    return fields


REQUEST_COLUMNS = ("TIME", "METHOD", "PATH", "STATUS", "TIME MS", "IN", "OUT", "NOTE")
PATH_MAX = 80
"""Longest path shown in the request log (the door keeps up to 2 KiB; longer ones end in …)."""


def request_cells(request: HttpRequest, tz: tzinfo | None, now: float) -> tuple[str, ...]:
    """One row of the HTTP request log, in ``REQUEST_COLUMNS`` order."""
    path = request.path if len(request.path) <= PATH_MAX else request.path[: PATH_MAX - 1] + "…"
    return (
        format_clock(request.started, tz, now),
        request.method or NO_VALUE,
        path or NO_VALUE,
        NO_VALUE if request.status is None else str(request.status),
        f"{request.duration * 1000:.1f}",
        format_bytes(request.bytes_in),
        format_bytes(request.bytes_out),
        request.note,
    )


def requests_summary(requests: Sequence[HttpRequest]) -> str:
    """``42 requests · 38 2xx · 3 4xx · 1 not HTTP · median 3.1 ms`` (what the ring holds)."""
    if not requests:
        return "no requests yet"
    classes: dict[str, int] = {}
    for r in requests:
        key = r.note if r.status is None and r.note else f"{r.status // 100}xx" if r.status else "?"
        classes[key] = classes.get(key, 0) + 1
    times = sorted(r.duration for r in requests if r.status is not None)
    parts = [f"{len(requests)} request{'s' if len(requests) != 1 else ''}"]
    parts += [f"{n} {key}" for key, n in sorted(classes.items())]
    if times:
        parts.append(f"median {times[len(times) // 2] * 1000:.1f} ms")
    return " · ".join(parts)


def requests_unavailable(status: ForwardStatus) -> str | None:
    """Why this forward has no HTTP request log, or None when it has one."""
    if status.traffic is None:
        return (
            "No request log: frontDoor is off for this forward, so its traffic does not pass "
            "through kportforward (kubectl listens on the port itself)."
        )
    if not is_browsable(status):
        return (
            f"No request log: kportforward reads HTTP only on type web and rest forwards; "
            f"{status.name} is type {status.spec.type or '(empty)'}. Its bytes are counted in "
            "Details (Enter)."
        )
    return None


def history_rows(
    status: ForwardStatus, tz: tzinfo | None, now: float, limit: int = 50
) -> list[tuple[str, str, str, str]]:
    """Newest-first ``(time, glyph+state, reason, tone)`` rows of the forward's state history."""
    rows = []
    for t in reversed(status.history[-limit:]):
        rows.append(
            (
                format_clock(t.ts, tz, now),
                f"{GLYPHS[t.state]} {t.state.value}",
                " ".join(t.reason.split()),
                TONES[t.state],
            )
        )
    return rows


class KeyHelp(NamedTuple):
    """One line of the help screen."""

    keys: str
    what: str


KEYS: Sequence[KeyHelp] = (
    KeyHelp("↑/↓  j/k", "move the cursor"),
    KeyHelp("PgUp/PgDn  Home/End", "move by a page / to the ends"),
    KeyHelp("Enter", "details of the selected forward"),
    KeyHelp("n s t p u", "sort: name / status / type / port / uptime"),
    KeyHelp("r", "reverse the current sort (▲ smallest first)"),
    KeyHelp("/", "filter by name, namespace, type, state or group"),
    KeyHelp("Esc", "clear the filter; close a screen"),
    KeyHelp("R", "restart the selected forward (new kubectl)"),
    KeyHelp("space", "stop / start the selected forward"),
    KeyHelp("l", "live kubectl log of the selected forward"),
    KeyHelp("h", "HTTP requests through a web/rest forward's front door"),
    KeyHelp("o", "open a web/rest forward or its web UI"),
    KeyHelp("c", "copy its URL, or localhost:PORT"),
    KeyHelp("w", "Swagger UI (rest) / gRPC screen (rpc)"),
    KeyHelp("a", "add forwards from a namespace's services"),
    KeyHelp("g", "stop / start the selected forward's whole group"),
    KeyHelp("ctrl+p", "palette: every action, themes, reload"),
    KeyHelp("?", "this help"),
    KeyHelp("q", "quit (stops every kubectl)"),
)

LEGEND = (
    "RESTARTS: unplanned only (crashes, dead tunnels, new pods)",
    f"{PORT_MOVED_MARK} after a port: moved off the configured one (see details)",
    f"{EXPOSED_MARK} after a name: listening beyond loopback (exposed)",
)
