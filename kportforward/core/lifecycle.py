"""One forward's lifecycle as a pure function: ``step(record, input, now) -> (record, effects)``.

Every decision about a forward lives here and nowhere else: which state it goes to (through the one
table in :mod:`kportforward.core.states`), when it retries (backoff, its reset after a stability
window), which kubectl belongs to it, what counts as a restart. The runner
(``supervisor/runner.py``) only carries the effects out — spawn, stop, probe, resolve a port, wake
at a time, emit an event — and feeds what happened back in as typed inputs. No asyncio, no clock:
``now`` is passed in, so a scripted history (inputs with times, expected states and effects) tests
any interleaving without a process.

Stale inputs are harmless by construction: every attempt has a number and every kubectl a pid, and
an input about another attempt or another pid is ignored (a kubectl that turns up for an attempt
that is no longer wanted is stopped).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any

from kportforward.core.models import ForwardSpec, ForwardStatus, Traffic, Transition
from kportforward.core.states import Event, ForwardState, has_process, next_state

S = ForwardState

# -- policy -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """The timings the lifecycle decides with; tests shrink them."""

    backoff_base: float = 0.5
    """The first delay after a failure that follows no healthy stretch."""
    backoff_cap: float = 30.0
    """No delay is longer; Failed forwards are retried at this pace."""
    backoff_factor: float = 2.0
    jitter: float = 0.2
    """Each delay is spread over ±jitter of itself (deterministically per forward and attempt)."""
    stable_after: float = 5.0
    """Running (verified) this long forgets earlier failures; one passing probe does not."""
    verified_cap: float = 2.0
    """The longest delay after losing a tunnel that had carried bytes (a pod replaced, streams
    dropped, kubectl killed): it worked, so it comes back quickly, while a crash loop that
    never carries bytes goes on to ``backoff_cap``."""
    connect_timeout: float = 75.0
    """A kubectl that has not printed ``Forwarding from`` this long is restarted."""
    history: int = 50
    latencies: int = 30


# -- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserStart:
    """Start or restart now: the user (``start``/``restart``) or a config change (``config``)."""

    reason: str
    why: str = "user"
    """``user`` or ``config``: restarts of either kind are planned, not counted as failures."""


@dataclass(frozen=True, slots=True)
class Begin:
    """The supervisor starts a new forward (no transition: it is Starting already)."""


@dataclass(frozen=True, slots=True)
class UserStop:
    """Stop (the user, a removal from the config, shutdown)."""

    reason: str


@dataclass(frozen=True, slots=True)
class PortAssigned:
    """The allocator gave ``attempt`` a local port; ``moved`` says why it is not the configured
    one."""

    attempt: int
    port: int
    moved: str | None = None


@dataclass(frozen=True, slots=True)
class PortUnavailable:
    """No local port could be had for ``attempt``."""

    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class Spawned:
    """A kubectl was started for ``attempt``."""

    attempt: int
    pid: int


@dataclass(frozen=True, slots=True)
class SpawnFailed:
    """kubectl could not be started; ``transient`` (EMFILE, ENOMEM, EAGAIN) backs off, else
    Failed."""

    attempt: int
    reason: str
    transient: bool


@dataclass(frozen=True, slots=True)
class Ready:
    """kubectl ``pid`` printed ``Forwarding from``; it forwards to ``pod`` when known."""

    pid: int
    pod: str | None = None


@dataclass(frozen=True, slots=True)
class PodKnown:
    """kubectl ``pid`` named (or changed) the pod it forwards to."""

    pid: int
    pod: str


@dataclass(frozen=True, slots=True)
class Exited:
    """kubectl ``pid`` exited; ``kind`` is the classification of what it printed."""

    pid: int
    kind: str
    """``retry`` (a known, transient cause: lost connection, pod not running, killed) |
    ``unknown`` | ``fatal`` | ``network`` | ``auth`` | ``port`` | ``refused``."""
    reason: str
    """A human reason (``not found``, ``nothing listens on 9000 in pod web-1`` …)."""
    message: str = ""
    """kubectl's own words."""


@dataclass(frozen=True, slots=True)
class ProbeDone:
    """A probe through kubectl ``pid``'s tunnel finished."""

    pid: int
    ok: bool
    latency: float = 0.0
    reason: str = ""
    timed_out: bool = False
    """Accepted, but no answer in time (a hung API server looks like this)."""


@dataclass(frozen=True, slots=True)
class ClusterDown:
    """The forward's cluster is unreachable, rejects the credentials, or its kubeconfig is gone."""

    reason: str


@dataclass(frozen=True, slots=True)
class ClusterUp:
    """The forward's cluster answers again."""

    reason: str = "cluster reachable again"


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Restart without the user: the pod was deleted or is not ready, or the context changed."""

    reason: str


@dataclass(frozen=True, slots=True)
class RetryNow:
    """Something a waiting forward waited for may have changed (its object appeared, the
    kubeconfig changed): a Failed or Cooldown forward retries at once."""

    reason: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """The spec cannot run as written (unknown context, broken value); Failed until changed."""

    reason: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A ``WakeAt`` moment has come."""


@dataclass(frozen=True, slots=True)
class WokeUp:
    """The machine slept or the network changed, and the cluster answers: re-verify the tunnel
    (a probe) instead of restarting it — a tunnel that still works keeps its kubectl."""

    reason: str


Input = (
    Begin | UserStart | UserStop | PortAssigned | PortUnavailable | Spawned | SpawnFailed | Ready
    | PodKnown | Exited | ProbeDone | ClusterDown | ClusterUp | Reconnect | RetryNow | Invalid
    | TimerFired | WokeUp
)  # fmt: skip

# -- effects ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvePort:
    """Ask the allocator for a local port for ``attempt`` (the configured one first)."""

    attempt: int


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start kubectl for ``attempt`` on ``port`` (after any pending stop has finished)."""

    attempt: int
    port: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop kubectl ``pid`` (SIGINT → SIGTERM → SIGKILL); its exit is expected, not a failure."""

    pid: int


@dataclass(frozen=True, slots=True)
class Probe:
    """Probe the tunnel of kubectl ``pid`` now."""

    pid: int


@dataclass(frozen=True, slots=True)
class WakeAt:
    """Feed ``TimerFired`` at ``when`` (replaces any earlier wake-up); None cancels it."""

    when: float | None


@dataclass(frozen=True, slots=True)
class ReportClusterDown:
    """kubectl said the cluster is unreachable or rejects us: suspend the whole cluster."""

    reason: str
    auth: bool = False
    """The credentials failed (not the network): the registry adds the command that fixes them."""


@dataclass(frozen=True, slots=True)
class Emit:
    """One transition happened: publish the forward's status with this reason."""

    previous: ForwardState
    reason: str


Effect = ResolvePort | Spawn | Stop | Probe | WakeAt | ReportClusterDown | Emit

# -- the record ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """Everything the lifecycle knows about one forward. Immutable; ``step`` returns a new one."""

    spec: ForwardSpec
    state: ForwardState = S.STARTING
    reason: str = "starting"
    attempt: int = 0
    """Numbers each try at starting kubectl; results for another attempt are stale."""
    pid: int | None = None
    """The kubectl that belongs to the forward now (None: none, or being stopped)."""
    ready: bool = False
    """The current kubectl printed ``Forwarding from``."""
    pod: str | None = None
    local_port: int = 0
    port_moved_reason: str | None = None
    spawns: int = 0
    restarts: int = 0
    """Unplanned restarts: a crash, a dead tunnel, a replaced pod, a context change."""
    planned_restarts: int = 0
    """Restarts the user or a config change asked for."""
    next_spawn_planned: bool = False
    failures: int = 0
    """Consecutive failures since the last stable stretch (drives the backoff)."""
    verified_since: float | None = None
    """When the current Running stretch began (a probe crossed the tunnel)."""
    ever_verified: bool = False
    """A probe has crossed this forward's tunnel at least once: its backend answers probes, so
    a later silence is the tunnel's (the cluster's) fault, not the backend's way."""
    retry_at: float | None = None
    connect_deadline: float | None = None
    probes_failed: int = 0
    last_error: str | None = None
    invalid: str | None = None
    """Why the spec cannot run (set by ``Invalid``; cleared by a config change)."""
    history: tuple[Transition, ...] = ()
    latencies: tuple[float, ...] = ()
    policy: Policy = field(default_factory=Policy, compare=False)

    def status(
        self,
        *,
        connections: int = 0,
        rss: int | None = None,
        cpu: float | None = None,
        traffic: Traffic | None = None,
    ) -> ForwardStatus:
        """The immutable snapshot the UI and ``run`` see."""
        return ForwardStatus(
            spec=self.spec,
            state=self.state,
            reason=self.reason,
            local_port=self.local_port,
            port_moved_reason=self.port_moved_reason,
            pid=self.pid,
            restarts=self.restarts,
            planned_restarts=self.planned_restarts,
            running_since=self.verified_since,
            retry_at=self.retry_at,
            connections=connections,
            last_error=self.last_error,
            rss=rss,
            cpu_percent=cpu,
            history=self.history,
            probe_latencies=self.latencies,
            pod=self.pod,
            traffic=traffic,
        )


def new_record(spec: ForwardSpec, policy: Policy | None = None, *, stopped: bool = False) -> Record:
    """A forward about to start (or Stopped); feed ``UserStart`` to begin."""
    state, reason = (S.STOPPED, "stopped") if stopped else (S.STARTING, "starting")
    return Record(spec=spec, state=state, reason=reason, policy=policy or Policy())


# -- step ---------------------------------------------------------------------------------------

Result = tuple[Record, list[Effect]]


def step(rec: Record, event: Input, now: float) -> Result:
    """Apply one input at time ``now`` (seconds, the runner's clock); the new record and effects."""
    handler = _HANDLERS.get(type(event))
    if handler is None:  # pragma: no cover - every Input type has a handler
        raise TypeError(f"unknown input {event!r}")
    return handler(rec, event, now)


def _go(
    rec: Record, ev: Event, reason: str, now: float, effects: list[Effect], **changes: object
) -> Record:
    """Move through the table (or just update fields when ``ev`` does not apply); emit once."""
    new = next_state(rec.state, ev)
    if new is None:
        return replace(rec, **changes) if changes else rec  # type: ignore[arg-type]
    previous = rec.state
    if new is not S.RUNNING and new is not S.DEGRADED:
        changes.setdefault("verified_since", None)
    if new not in (S.COOLDOWN, S.FAILED, S.SUSPENDED):
        changes.setdefault("retry_at", None)
    history = (*rec.history, Transition(now, new, reason))[-rec.policy.history :]
    rec = replace(rec, state=new, reason=reason, history=history, **changes)  # type: ignore[arg-type]
    effects.append(Emit(previous, reason))
    return rec


def _stop_current(rec: Record, effects: list[Effect]) -> Record:
    """Stop the forward's kubectl, if any; its exit will be ignored (it is no longer ours)."""
    if rec.pid is not None:
        effects.append(Stop(rec.pid))
    return replace(rec, pid=None, ready=False, probes_failed=0, connect_deadline=None)


def _begin(rec: Record, effects: list[Effect]) -> Record:
    """Starting/Reconnecting: a new attempt asks for a port."""
    attempt = rec.attempt + 1
    effects.append(ResolvePort(attempt))
    effects.append(WakeAt(None))
    return replace(rec, attempt=attempt)


def backoff_delay(rec: Record, now: float, *, transient: bool = False) -> tuple[float, int]:
    """The delay before the next attempt after a failure now, and the new failure count.

    Failures count up until the forward stays verified (bytes crossed its tunnel) for
    ``stable_after``; one passing probe does not reset them, so every failure — a crash loop,
    nothing listening in the pod, an unclassified error, a tunnel cut again and again — doubles
    the delay, and nothing respawns faster than the backoff. A tunnel that carried bytes and was
    lost comes back within ``verified_cap`` (the cause is outside it: chaos in the cluster);
    only attempts that never carried bytes climb to ``backoff_cap``. The first loss of a tunnel
    that was stable restarts at once: a pod replaced in a rolling update is not a crash.
    """
    p = rec.policy
    failures = rec.failures
    verified = rec.verified_since is not None
    if verified and now - (rec.verified_since or now) >= p.stable_after:
        failures = 0
    if verified and failures == 0:
        return 0.0, 1
    exponent = failures - 1 if verified else failures
    # A tunnel that worked, or a cause known to pass (a lost connection, a pod not running yet,
    # a kill), comes back quickly; unknown failures and attempts that never work climb on.
    cap = min(p.verified_cap, p.backoff_cap) if verified or transient else p.backoff_cap
    raw = min(cap, p.backoff_base * p.backoff_factor**exponent)
    return _spread(rec, raw), failures + 1


def _spread(rec: Record, raw: float) -> float:
    # Deterministic jitter (pure): forwards failing together still retry at different moments.
    h = zlib.crc32(f"{rec.spec.name}/{rec.attempt}".encode()) / 0xFFFFFFFF
    spread = raw * (1.0 + rec.policy.jitter * (2.0 * h - 1.0))
    return max(0.0, min(rec.policy.backoff_cap, spread))


def _retry(
    rec: Record,
    reason: str,
    now: float,
    effects: list[Effect],
    *,
    detail: str,
    transient: bool = False,
) -> Record:
    """A failure a retry may fix: restart at once or after the backoff, with a countdown."""
    delay, failures = backoff_delay(rec, now, transient=transient)
    rec = _stop_current(rec, effects)
    if delay <= 0:
        rec = _go(rec, Event.RECONNECT, f"{reason}; restarting now", now, effects,
                  failures=failures, last_error=detail)  # fmt: skip
        return _begin(rec, effects) if rec.state is S.RECONNECTING else rec
    retry_at = now + delay
    rec = _go(rec, Event.EXITED, f"{reason}; retry in {delay:.1f}s", now, effects,
              failures=failures, retry_at=retry_at, last_error=detail)  # fmt: skip
    effects.append(WakeAt(retry_at))
    return rec


def _fatal(rec: Record, reason: str, now: float, effects: list[Effect]) -> Record:
    """A failure a retry cannot fix without the user: Failed, retried at the slow pace."""
    rec = _stop_current(rec, effects)
    retry_at = now + _spread(rec, rec.policy.backoff_cap)
    rec = _go(rec, Event.EXITED_FATAL, reason, now, effects, retry_at=retry_at, last_error=reason)
    effects.append(WakeAt(retry_at))
    return rec


# -- handlers -----------------------------------------------------------------------------------


def _on_user_start(rec: Record, ev: UserStart, now: float) -> Result:
    effects: list[Effect] = []
    if rec.invalid is not None:
        # Nothing to start until the spec changes; say why again.
        return _go(rec, Event.EXITED_FATAL, rec.invalid, now, effects), effects
    was_live = rec.pid is not None or rec.state in (S.STARTING, S.RECONNECTING)
    rec = _stop_current(rec, effects)
    rec = replace(rec, failures=0, next_spawn_planned=was_live or rec.spawns > 0)
    rec = _go(rec, Event.USER_START, ev.reason, now, effects)
    return _begin(rec, effects), effects


def _on_begin(rec: Record, ev: Begin, now: float) -> Result:
    effects: list[Effect] = []
    if rec.state is not S.STARTING or rec.attempt != 0 or rec.invalid is not None:
        return rec, effects
    return _begin(rec, effects), effects


def _on_user_stop(rec: Record, ev: UserStop, now: float) -> Result:
    effects: list[Effect] = []
    rec = _stop_current(rec, effects)
    effects.append(WakeAt(None))
    return _go(rec, Event.USER_STOP, ev.reason, now, effects, failures=0), effects


def _on_port_assigned(rec: Record, ev: PortAssigned, now: float) -> Result:
    effects: list[Effect] = []
    if ev.attempt != rec.attempt or rec.state not in (S.STARTING, S.RECONNECTING):
        return rec, effects
    rec = replace(rec, local_port=ev.port, port_moved_reason=ev.moved)
    effects.append(Spawn(rec.attempt, ev.port))
    return rec, effects


def _on_port_unavailable(rec: Record, ev: PortUnavailable, now: float) -> Result:
    effects: list[Effect] = []
    if ev.attempt != rec.attempt or rec.state not in (S.STARTING, S.RECONNECTING):
        return rec, effects
    delay, failures = backoff_delay(rec, now)
    delay = max(delay, rec.policy.backoff_base)
    retry_at = now + delay
    rec = _go(rec, Event.PORT_UNAVAILABLE, f"{ev.reason}; retry in {delay:.1f}s", now, effects,
              failures=failures, retry_at=retry_at, last_error=ev.reason)  # fmt: skip
    effects.append(WakeAt(retry_at))
    return rec, effects


def _on_spawned(rec: Record, ev: Spawned, now: float) -> Result:
    effects: list[Effect] = []
    if ev.attempt != rec.attempt or rec.state not in (S.STARTING, S.RECONNECTING):
        effects.append(Stop(ev.pid))  # an attempt nobody wants any more
        return rec, effects
    counts: dict[str, object] = {"spawns": rec.spawns + 1, "next_spawn_planned": False}
    if rec.spawns > 0:
        if rec.next_spawn_planned:
            counts["planned_restarts"] = rec.planned_restarts + 1
        else:
            counts["restarts"] = rec.restarts + 1
    deadline = now + rec.policy.connect_timeout
    rec = _go(rec, Event.SPAWNED, f"kubectl started (pid {ev.pid}) on port {rec.local_port}",
              now, effects, pid=ev.pid, ready=False, pod=None, connect_deadline=deadline,
              probes_failed=0, **counts)  # fmt: skip
    effects.append(WakeAt(deadline))
    return rec, effects


def _on_spawn_failed(rec: Record, ev: SpawnFailed, now: float) -> Result:
    effects: list[Effect] = []
    if ev.attempt != rec.attempt or rec.state not in (S.STARTING, S.RECONNECTING):
        return rec, effects
    if ev.transient:
        delay, failures = backoff_delay(rec, now)
        delay = max(delay, rec.policy.backoff_base)
        retry_at = now + delay
        rec = _go(rec, Event.EXITED, f"{ev.reason}; retry in {delay:.1f}s", now, effects,
                  failures=failures, retry_at=retry_at, last_error=ev.reason)  # fmt: skip
        effects.append(WakeAt(retry_at))
        return rec, effects
    return _fatal(rec, ev.reason, now, effects), effects


def _on_ready(rec: Record, ev: Ready, now: float) -> Result:
    effects: list[Effect] = []
    if ev.pid != rec.pid or rec.ready:
        return rec, effects
    # Readiness is kubectl's word only: Running waits for bytes to cross the tunnel.
    rec = replace(rec, ready=True, pod=ev.pod or rec.pod, reason=_verifying(rec, ev.pod))
    effects.append(Probe(ev.pid))
    return rec, effects


def _verifying(rec: Record, pod: str | None) -> str:
    where = f" (pod {pod})" if pod else ""
    return f"kubectl ready on port {rec.local_port}{where}; checking the tunnel"


def _forwarding(rec: Record) -> str:
    target = f"{rec.spec.target}:{rec.spec.target_port}"
    pod = f" (pod {rec.pod})" if rec.pod else ""
    return f"forwarding {rec.spec.address}:{rec.local_port} → {target}{pod}"


def _on_pod_known(rec: Record, ev: PodKnown, now: float) -> Result:
    if ev.pid != rec.pid or ev.pod == rec.pod:
        return rec, []
    rec = replace(rec, pod=ev.pod)
    if rec.state is S.RUNNING:
        rec = replace(rec, reason=_forwarding(rec))
    return rec, []


def _on_exited(rec: Record, ev: Exited, now: float) -> Result:
    effects: list[Effect] = []
    if ev.pid != rec.pid:
        return rec, effects  # one we stopped, or one from an earlier attempt
    detail = ev.message or ev.reason
    rec = replace(rec, pid=None, ready=False)
    if ev.kind in ("network", "auth"):
        effects.append(ReportClusterDown(f"{ev.reason}: {detail}", auth=ev.kind == "auth"))
        rec = _go(rec, Event.CLUSTER_DOWN, f"{ev.reason}: {detail}", now, effects,
                  last_error=detail)  # fmt: skip
        return rec, effects
    if ev.kind == "fatal":
        return _fatal(rec, detail, now, effects), effects
    reason = ev.reason if ev.reason == detail else f"{ev.reason}: {detail}"
    if ev.kind == "refused":
        reason = ev.reason
    transient = ev.kind == "retry"
    return _retry(rec, reason, now, effects, detail=detail, transient=transient), effects


def _on_probe(rec: Record, ev: ProbeDone, now: float) -> Result:
    effects: list[Effect] = []
    if ev.pid != rec.pid or not rec.ready:
        return rec, effects
    if ev.ok:
        latencies = (*rec.latencies, ev.latency)[-rec.policy.latencies :]
        if rec.state is S.CONNECTING:
            rec = _go(rec, Event.PROBE_OK, _forwarding(rec), now, effects,
                      verified_since=now, latencies=latencies, probes_failed=0,
                      connect_deadline=None, ever_verified=True)  # fmt: skip
            effects.append(WakeAt(None))
            return rec, effects
        if rec.state is S.DEGRADED:
            rec = _go(rec, Event.PROBE_OK, "probe through the tunnel passed again", now, effects,
                      latencies=latencies, probes_failed=0)  # fmt: skip
            return rec, effects
        return replace(rec, latencies=latencies, probes_failed=0), effects
    if rec.state is S.RUNNING:
        rec = _go(rec, Event.PROBE_FAILED, f"probe failed: {ev.reason}", now, effects,
                  probes_failed=1, last_error=ev.reason)  # fmt: skip
        effects.append(Probe(ev.pid))  # confirm at once: one more failure restarts
        return rec, effects
    # Connecting (the first probe) or Degraded (the confirming one): the tunnel is dead.
    what = "tunnel dead" if rec.state is S.DEGRADED else "tunnel does not work"
    # Silence from a backend that has answered before is the cluster's trouble (a hung API
    # server): it passes. Silence from one that never answered is not known to pass.
    transient = ev.timed_out and rec.ever_verified
    reason = f"{what}: {ev.reason}"
    return _retry(rec, reason, now, effects, detail=ev.reason, transient=transient), effects


def _on_cluster_down(rec: Record, ev: ClusterDown, now: float) -> Result:
    effects: list[Effect] = []
    if rec.state is S.SUSPENDED and ev.reason != rec.reason:
        # Still suspended, with a better reason (the command that fixes the credentials).
        effects.append(Emit(rec.state, ev.reason))
        return replace(rec, reason=ev.reason), effects
    if rec.state in (S.STOPPED, S.SUSPENDED) or rec.invalid is not None:
        return rec, effects
    if has_process(rec.state) and rec.state is not S.CONNECTING:
        # A working tunnel keeps working while the API is away; its probes decide.
        return rec, effects
    rec = _stop_current(rec, effects)
    effects.append(WakeAt(None))
    return _go(rec, Event.CLUSTER_DOWN, ev.reason, now, effects), effects


def _on_cluster_up(rec: Record, ev: ClusterUp, now: float) -> Result:
    effects: list[Effect] = []
    if rec.state is not S.SUSPENDED:
        return rec, effects
    rec = _go(rec, Event.CLUSTER_UP, ev.reason, now, effects, failures=0)
    return _begin(rec, effects), effects


def _on_reconnect(rec: Record, ev: Reconnect, now: float) -> Result:
    effects: list[Effect] = []
    if not has_process(rec.state):
        return rec, effects
    rec = _stop_current(rec, effects)
    rec = _go(rec, Event.RECONNECT, ev.reason, now, effects)
    return _begin(rec, effects), effects


def _on_retry_now(rec: Record, ev: RetryNow, now: float) -> Result:
    effects: list[Effect] = []
    if rec.state not in (S.FAILED, S.COOLDOWN) or rec.invalid is not None:
        return rec, effects
    rec = _go(rec, Event.BACKOFF_ELAPSED, ev.reason, now, effects)
    return _begin(rec, effects), effects


def _on_invalid(rec: Record, ev: Invalid, now: float) -> Result:
    effects: list[Effect] = []
    rec = _stop_current(replace(rec, invalid=ev.reason), effects)
    effects.append(WakeAt(None))
    if rec.state is S.FAILED:
        return replace(rec, reason=ev.reason, retry_at=None, last_error=ev.reason), effects
    rec = _go(rec, Event.EXITED_FATAL, ev.reason, now, effects, last_error=ev.reason)
    return replace(rec, retry_at=None), effects


def _on_timer(rec: Record, ev: TimerFired, now: float) -> Result:
    effects: list[Effect] = []
    if rec.state in (S.COOLDOWN, S.FAILED) and rec.invalid is None:
        if rec.retry_at is not None and now >= rec.retry_at:
            rec = _go(rec, Event.BACKOFF_ELAPSED, "retrying now", now, effects)
            return _begin(rec, effects), effects
        if rec.retry_at is not None:
            effects.append(WakeAt(rec.retry_at))
        return rec, effects
    if rec.state is S.CONNECTING and rec.connect_deadline is not None:
        if now >= rec.connect_deadline:
            what = "no 'Forwarding from'" if not rec.ready else "no probe answer"
            reason = f"{what} within {rec.policy.connect_timeout:g}s"
            return _retry(rec, reason, now, effects, detail=reason), effects
        effects.append(WakeAt(rec.connect_deadline))
    return rec, effects


def _on_woke_up(rec: Record, ev: WokeUp, now: float) -> Result:
    if rec.state in (S.RUNNING, S.DEGRADED) and rec.pid is not None:
        return rec, [Probe(rec.pid)]
    return rec, []


_HANDLERS: dict[type, Any] = {
    WokeUp: _on_woke_up,
    Begin: _on_begin,
    UserStart: _on_user_start,
    UserStop: _on_user_stop,
    PortAssigned: _on_port_assigned,
    PortUnavailable: _on_port_unavailable,
    Spawned: _on_spawned,
    SpawnFailed: _on_spawn_failed,
    Ready: _on_ready,
    PodKnown: _on_pod_known,
    Exited: _on_exited,
    ProbeDone: _on_probe,
    ClusterDown: _on_cluster_down,
    ClusterUp: _on_cluster_up,
    Reconnect: _on_reconnect,
    RetryNow: _on_retry_now,
    Invalid: _on_invalid,
    TimerFired: _on_timer,
}


def config_changed(rec: Record, spec: ForwardSpec, now: float) -> Result:
    """The forward's spec changed: a new kubectl only when what kubectl runs with changed."""
    needs_kubectl = spec.kubectl_fields() != rec.spec.kubectl_fields()
    rec = replace(rec, spec=spec)
    if not needs_kubectl:
        return rec, []
    rec = replace(rec, invalid=None, local_port=0, port_moved_reason=None)
    if rec.state is S.STOPPED:
        return rec, []
    return step(rec, UserStart("config changed", why="config"), now)
