"""Scripted histories through the real lifecycle and runner (fake clock, processes and probes).

Each history is a short script of what happens to one forward — kubectl becomes ready, a probe
answers, kubectl exits with a classification, the clock moves, the user acts — and asserts the
states the forward went through and what the runner did (spawns, stops, countdowns). Together they
cover every row of the state table and the interleavings that produced real bugs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from kportforward.core import lifecycle as lc
from kportforward.core.models import ForwardSpec
from kportforward.core.states import TRANSITIONS, ForwardState
from kportforward.supervisor.kubectl import Failure
from tests.unit.lifecycle_harness import World

S = ForwardState
F = Failure
HISTORIES: dict[str, Callable[[World], Awaitable[None]]] = {}


def history(fn: Callable[[World], Awaitable[None]]) -> Callable[[World], Awaitable[None]]:
    HISTORIES[fn.__name__] = fn
    return fn


# -- starting ------------------------------------------------------------------------------------


@history
async def happy_start(w: World) -> None:
    await w.begin()
    assert w.states() == [S.CONNECTING]
    await w.ready()
    assert w.state is S.CONNECTING  # kubectl's word alone is not Running
    assert "checking the tunnel" in w.runner.record.reason
    await w.probe(True)
    assert w.states() == [S.CONNECTING, S.RUNNING]
    assert "(pod web-1)" in w.transitions[-1][2]
    assert w.runner in w.prober.members


@history
async def running_only_after_bytes_cross(w: World) -> None:
    await w.begin()
    await w.ready()
    await w.probe(False, "no answer through the tunnel in 0.5s", timed_out=True)
    assert S.RUNNING not in w.states()
    assert w.state is S.COOLDOWN


@history
async def refused_in_pod_is_never_running_and_backs_off(w: World) -> None:
    await w.begin()
    delays = []
    for _ in range(5):
        await w.ready()
        await w.probe(False, "nothing listens on 9000 in pod web-1")
        assert w.state is S.COOLDOWN
        assert "nothing listens on 9000" in w.runner.record.reason
        delays.append(w.runner.record.retry_at - w.clock.now())
        await w.advance(delays[-1])
    assert S.RUNNING not in w.states()
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert w.runner.record.restarts == 5


@history
async def refused_found_by_kubectl_exit_backs_off(w: World) -> None:
    await w.begin()
    await w.ready()
    await w.exit(F.REFUSED, "nothing listens in the pod", "an error occurred forwarding")
    assert w.state is S.COOLDOWN
    assert w.runner.record.retry_at == w.clock.now() + 0.5


@history
async def no_port_then_retry(w: World) -> None:
    w.ports.append("no free local port between 18080 and 65535")
    await w.begin()
    assert w.states() == [S.COOLDOWN]
    assert "no free local port" in w.runner.record.reason
    await w.advance(0.5)
    assert w.states() == [S.COOLDOWN, S.STARTING, S.CONNECTING]


@history
async def moved_port_carries_its_reason_and_returns_home(w: World) -> None:
    w.ports.append(18081)
    await w.begin()
    await w.running()
    status = w.runner.status()
    assert status.local_port == 18081 and "18080 is taken" in (status.port_moved_reason or "")
    await w.feed(lc.UserStart("restarted by user"))
    await w.running()
    status = w.runner.status()
    assert status.local_port == 18080 and status.port_moved_reason is None


@history
async def connect_timeout_restarts_with_backoff(w: World) -> None:
    await w.begin()
    await w.advance(w.runner.record.policy.connect_timeout)
    assert w.state is S.COOLDOWN
    assert "no 'Forwarding from'" in w.runner.record.reason
    assert w.procs[0].stops == 1


@history
async def emfile_is_transient(w: World) -> None:
    w.emfile()
    await w.begin()
    assert w.state is S.COOLDOWN
    assert "Too many open files" in w.runner.record.reason
    await w.advance(0.5)
    assert w.state is S.CONNECTING


@history
async def kubectl_missing_is_failed(w: World) -> None:
    w.spawn_errors.append(FileNotFoundError(2, "No such file or directory"))
    await w.begin()
    assert w.state is S.FAILED
    assert "cannot run kubectl" in w.runner.record.reason


@history
async def suspended_cluster_blocks_the_spawn(w: World) -> None:
    w.blocker = "cluster unreachable"
    await w.begin()
    assert w.states() == [S.SUSPENDED]
    assert not w.procs
    w.blocker = None
    await w.feed(lc.ClusterUp())
    assert w.states() == [S.SUSPENDED, S.STARTING, S.CONNECTING]


# -- running -------------------------------------------------------------------------------------


@history
async def one_failed_probe_degrades_then_recovers(w: World) -> None:
    await w.begin()
    await w.running()
    await w.probe_now_and(False)
    assert w.state is S.DEGRADED
    await w.probe(True)
    assert w.states()[-2:] == [S.DEGRADED, S.RUNNING]
    assert w.procs[0].stops == 0


@history
async def two_failed_probes_restart_at_once_after_a_healthy_run(w: World) -> None:
    await w.begin()
    await w.running()
    await w.probe_now_and(False)
    await w.probe(False, "no answer")
    assert w.states()[-3:] == [S.DEGRADED, S.RECONNECTING, S.CONNECTING]
    assert w.state is S.CONNECTING and len(w.procs) == 2
    assert w.procs[0].stops == 1


@history
async def hang_right_after_running_is_found(w: World) -> None:
    await w.begin()
    await w.running()
    await w.probe_now_and(False, timed_out=True)
    await w.probe(False, "no answer through the tunnel in 0.5s", timed_out=True)
    assert w.state is S.CONNECTING and len(w.procs) == 2


@history
async def failed_probe_escalates_to_the_cluster(w: World) -> None:
    await w.begin()
    await w.running()
    await w.probe_now_and(False)
    assert w.prober.escalations == 1


@history
async def kubectl_crash_after_a_stable_run_restarts_at_once(w: World) -> None:
    await w.begin()
    await w.running()
    await w.advance(60)
    await w.exit()
    assert w.states()[-2:] == [S.RECONNECTING, S.CONNECTING]
    assert w.runner.record.restarts == 1


@history
async def repeated_losses_of_a_working_tunnel_back_off(w: World) -> None:
    await w.begin()
    waits = []
    for _ in range(4):
        await w.running()
        await w.advance(1)
        await w.exit()
        waits.append((w.runner.record.retry_at or w.clock.now()) - w.clock.now())
        await w.advance(waits[-1])
    assert waits == [0.0, 0.5, 1.0, 2.0]  # a tunnel cut again and again backs off too


@history
async def unclassified_failures_back_off_exponentially(w: World) -> None:
    await w.begin()
    waits = []
    for _ in range(5):
        await w.exit(F.UNKNOWN, "kubectl exited", "error: something new")
        waits.append(w.runner.record.retry_at - w.clock.now())
        await w.advance(waits[-1])
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]


@history
async def backoff_reaches_the_cap(w: World) -> None:
    await w.begin()
    for _ in range(10):
        await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
        await w.advance(w.runner.record.retry_at - w.clock.now())
    await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
    assert w.runner.record.retry_at - w.clock.now() == 30.0


@history
async def stability_window_resets_the_backoff(w: World) -> None:
    await w.begin()
    for _ in range(3):
        await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
        await w.advance(w.runner.record.retry_at - w.clock.now())
    await w.running()
    await w.advance(2)  # not yet stable: a loss backs off, counting on
    await w.exit()
    assert w.runner.record.retry_at - w.clock.now() == 2.0
    await w.advance(2.0)
    await w.running()
    await w.advance(5)  # stable: the next loss restarts at once
    await w.exit()
    assert w.state is S.CONNECTING and w.runner.record.retry_at is None


@history
async def a_single_pass_does_not_reset_the_backoff(w: World) -> None:
    await w.begin()
    for _ in range(3):
        await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
        await w.advance(w.runner.record.retry_at - w.clock.now())
    await w.running()
    await w.exit()
    await w.advance(w.runner.record.retry_at - w.clock.now())
    await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")  # before any probe: escalates on
    assert w.runner.record.retry_at - w.clock.now() == 8.0


@history
async def fatal_exit_is_failed_and_retried_slowly(w: World) -> None:
    await w.begin()
    await w.exit(F.FATAL, "not found", 'Error from server (NotFound): services "api" not found')
    assert w.state is S.FAILED
    assert w.runner.record.retry_at == w.clock.now() + 30.0
    await w.advance(30)
    assert w.states()[-2:] == [S.STARTING, S.CONNECTING]


@history
async def failed_retries_at_once_when_its_object_appears(w: World) -> None:
    await w.begin()
    await w.exit(F.FATAL, "not found", "(NotFound)")
    await w.feed(lc.RetryNow("service/api exists now"))
    assert w.states()[-2:] == [S.STARTING, S.CONNECTING]


@history
async def network_exit_suspends_and_reports_the_cluster(w: World) -> None:
    await w.begin()
    await w.exit(F.NETWORK, "cluster unreachable", "connection refused")
    assert w.state is S.SUSPENDED
    assert w.cluster_reports and "cluster unreachable" in w.cluster_reports[0]
    await w.feed(lc.ClusterUp())
    assert w.state is S.CONNECTING


@history
async def auth_exit_suspends(w: World) -> None:
    await w.begin()
    await w.exit(F.AUTH, "credentials rejected", "You must be logged in")
    assert w.state is S.SUSPENDED


@history
async def cluster_down_leaves_a_working_tunnel_alone(w: World) -> None:
    await w.begin()
    await w.running()
    await w.feed(lc.ClusterDown("cluster unreachable"))
    assert w.state is S.RUNNING and w.procs[0].stops == 0


@history
async def cluster_down_stops_a_connecting_kubectl(w: World) -> None:
    await w.begin()
    await w.feed(lc.ClusterDown("cluster unreachable"))
    assert w.state is S.SUSPENDED and w.procs[0].stops == 1


@history
async def cluster_down_during_a_probe(w: World) -> None:
    await w.begin()
    await w.ready()
    await w.feed(lc.ClusterDown("cluster unreachable"))  # the probe is still out
    assert w.state is S.SUSPENDED
    assert not w.probes  # the pending probe was cancelled with its kubectl
    await w.feed(lc.ClusterUp())
    await w.running()
    assert w.state is S.RUNNING


@history
async def pod_replaced_reconnects_without_backoff(w: World) -> None:
    await w.begin()
    await w.running()
    await w.feed(lc.Reconnect("pod web-1 deleted; reconnecting"))
    assert w.states()[-2:] == [S.RECONNECTING, S.CONNECTING]
    assert w.runner.record.restarts == 1 and w.runner.record.planned_restarts == 0


@history
async def pod_name_update_while_running(w: World) -> None:
    await w.begin()
    await w.running(pod=None)
    await w.feed(lc.PodKnown(w.proc.pid, "web-2"))
    assert w.runner.status().pod == "web-2" and "(pod web-2)" in w.runner.record.reason


# -- the user ------------------------------------------------------------------------------------


@history
async def user_stop_and_start(w: World) -> None:
    await w.begin()
    await w.running()
    await w.feed(lc.UserStop("stopped by user"))
    assert w.state is S.STOPPED and w.procs[0].stops == 1
    await w.feed(lc.UserStart("started by user"))
    await w.running()
    assert w.state is S.RUNNING
    assert w.runner.record.restarts == 0 and w.runner.record.planned_restarts == 1


@history
async def user_restart_counts_as_planned(w: World) -> None:
    await w.begin()
    await w.running()
    await w.feed(lc.UserStart("restarted by user"))
    assert w.states()[-2:] == [S.RECONNECTING, S.CONNECTING]
    assert w.runner.record.restarts == 0 and w.runner.record.planned_restarts == 1


@history
async def stop_during_spawn_leaves_no_kubectl(w: World) -> None:
    await w._slot.acquire()  # every spawn slot busy: the spawn waits
    for _ in range(3):
        await w._slot.acquire()
    await w.begin()
    assert not w.procs
    await w.feed(lc.UserStop("stopped by user"))
    for _ in range(4):
        w._slot.release()
    await w.settle()
    assert w.state is S.STOPPED and not [p for p in w.procs if not p.exited]


@history
async def stop_while_connecting_ignores_the_late_readiness(w: World) -> None:
    await w.begin()
    proc = w.proc
    await w.feed(lc.UserStop("stopped by user"))
    proc.become_ready()
    await w.settle()
    assert w.state is S.STOPPED


@history
async def exit_during_stop_is_not_a_failure(w: World) -> None:
    await w.begin()
    await w.running()
    proc = w.proc
    await w.feed(lc.UserStop("stopped by user"))
    proc.exit(F.NETWORK, "cluster unreachable", "refused")
    await w.settle()
    assert w.state is S.STOPPED and not w.cluster_reports


@history
async def restart_while_suspended(w: World) -> None:
    w.blocker = "cluster unreachable"
    await w.begin()
    w.blocker = None
    await w.feed(lc.UserStart("restarted by user"))
    assert w.state is S.CONNECTING


@history
async def restart_while_suspended_and_still_down(w: World) -> None:
    w.blocker = "cluster unreachable"
    await w.begin()
    await w.feed(lc.UserStart("restarted by user"))
    assert w.state is S.SUSPENDED and not w.procs


@history
async def user_start_resets_the_backoff(w: World) -> None:
    await w.begin()
    for _ in range(4):
        await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
        await w.advance(w.runner.record.retry_at - w.clock.now())
    await w.feed(lc.UserStart("restarted by user"))
    await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
    assert w.runner.record.retry_at - w.clock.now() == 0.5


@history
async def start_from_cooldown_is_immediate(w: World) -> None:
    await w.begin()
    await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
    await w.feed(lc.UserStart("started by user"))
    assert w.state is S.CONNECTING and len(w.procs) == 2


# -- config --------------------------------------------------------------------------------------


@history
async def config_change_of_display_fields_keeps_the_kubectl(w: World) -> None:
    await w.begin()
    await w.running()
    w.runner.change_spec(_with(w.spec, type="web"))
    await w.settle()
    assert w.state is S.RUNNING and len(w.procs) == 1 and w.runner.spec.type == "web"


@history
async def config_change_of_the_port_restarts(w: World) -> None:
    await w.begin()
    await w.running()
    w.runner.change_spec(_with(w.spec, local_port=19000))
    await w.settle()
    assert len(w.procs) == 2 and w.runner.record.planned_restarts == 1


@history
async def reload_during_backoff_starts_at_once(w: World) -> None:
    await w.begin()
    await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
    assert w.state is S.COOLDOWN
    w.runner.change_spec(_with(w.spec, target="service/api2"))
    await w.settle()
    assert w.state is S.CONNECTING and w.runner.record.retry_at is None


@history
async def config_change_of_a_moved_forward_tries_home_again(w: World) -> None:
    w.ports.append(18081)
    await w.begin()
    await w.running()
    assert w.runner.status().port_moved
    w.runner.change_spec(_with(w.spec, target_port=9001))
    await w.settle()
    await w.running()
    assert w.runner.status().local_port == 18080 and not w.runner.status().port_moved


@history
async def config_change_of_a_stopped_forward_stays_stopped(w: World) -> None:
    await w.begin()
    await w.feed(lc.UserStop("stopped by user"))
    w.runner.change_spec(_with(w.spec, local_port=19000))
    await w.settle()
    assert w.state is S.STOPPED and len(w.procs) == 1


@history
async def invalid_spec_fails_alone_and_is_not_retried(w: World) -> None:
    await w.feed(lc.Invalid("forward 'api': context 'nope' is not in kc (contexts: a, b)"))
    assert w.state is S.FAILED and w.runner.record.retry_at is None
    await w.advance(3600)
    assert w.state is S.FAILED and not w.procs
    await w.feed(lc.UserStart("started by user"))
    assert w.state is S.FAILED and not w.procs


@history
async def invalid_spec_fixed_by_a_config_change(w: World) -> None:
    await w.feed(lc.Invalid("context 'nope' unknown"))
    w.runner.change_spec(_with(w.spec, context="kind"))
    await w.settle()
    assert w.state is S.CONNECTING


@history
async def context_change_while_waiting_retries_now(w: World) -> None:
    await w.begin()
    await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
    await w.feed(lc.RetryNow("kube context changed to b"))
    assert w.state is S.CONNECTING


# -- stale inputs --------------------------------------------------------------------------------


@history
async def a_stale_exit_is_ignored(w: World) -> None:
    await w.begin()
    first = w.proc
    await w.feed(lc.UserStart("restarted by user"))
    await w.running()
    first.exit(F.FATAL, "not found", "(NotFound)")
    await w.settle()
    assert w.state is S.RUNNING


@history
async def a_stale_probe_is_ignored(w: World) -> None:
    await w.begin()
    await w.running()
    old_pid = w.proc.pid
    await w.feed(lc.UserStart("restarted by user"))
    await w.feed(lc.ProbeDone(old_pid, False, 0.0, "late"))
    assert w.state is S.CONNECTING


# -- every row of the table, through the runner ---------------------------------------------------


async def _hold_slots(w: World) -> None:
    for _ in range(4):
        await w._slot.acquire()


async def _free_slots(w: World) -> None:
    for _ in range(4):
        w._slot.release()
    await w.settle()


async def reach(w: World, state: ForwardState, *, failed_before: bool = False) -> None:
    """Bring the world's forward into ``state`` by a realistic path."""
    if state is S.STARTING:
        await _hold_slots(w)
        await w.begin()
    elif state is S.SUSPENDED:
        w.blocker = "cluster unreachable"
        await w.begin()
        w.blocker = None
    else:
        await w.begin()
        if failed_before:  # one failure first, so a loss of the tunnel backs off
            await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
            await w.advance(w.runner.record.retry_at - w.clock.now())
        if state in (S.RUNNING, S.DEGRADED, S.RECONNECTING):
            await w.running()
        if state is S.DEGRADED:
            await w.probe_now_and(False)
        elif state is S.RECONNECTING:
            await _hold_slots(w)
            await w.feed(lc.Reconnect("pod deleted"))
        elif state is S.COOLDOWN:
            await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
        elif state is S.FAILED:
            await w.exit(F.FATAL, "not found", "(NotFound)")
        elif state is S.STOPPED:
            await w.feed(lc.UserStop("stopped by user"))
    assert w.state is state, (state, w.state, w.transitions)


async def deliver(w: World, state: ForwardState, event: object) -> None:
    """Make ``event`` happen to a forward in ``state`` the way the world would."""
    from kportforward.core.states import Event as E

    waiting = state in (S.STARTING, S.RECONNECTING)
    if event is E.SPAWNED:
        await _free_slots(w)
    elif event is E.PROBE_OK:
        if state is S.CONNECTING:
            await w.ready()
        await w.probe(True)
    elif event is E.PROBE_FAILED:
        await w.probe_now_and(False)
    elif event is E.EXITED:
        if waiting:
            w.emfile()
            await _free_slots(w)
        else:
            await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")
    elif event is E.EXITED_FATAL:
        if waiting:
            w.spawn_errors.append(FileNotFoundError(2, "No such file or directory"))
            await _free_slots(w)
        else:
            await w.exit(F.FATAL, "not found", "(NotFound)")
    elif event is E.CLUSTER_DOWN:
        if waiting:
            w.blocker = "cluster unreachable"
            await _free_slots(w)
        else:
            await w.feed(lc.ClusterDown("cluster unreachable"))
    elif event is E.CLUSTER_UP:
        await w.feed(lc.ClusterUp())
    elif event is E.PORT_UNAVAILABLE:
        w.ports.append("no free local port")
        await w.feed(lc.UserStart("restarted by user"))
    elif event is E.BACKOFF_ELAPSED:
        await w.advance(w.runner.record.retry_at - w.clock.now())
    elif event is E.RECONNECT:
        await w.feed(lc.Reconnect("pod deleted"))
    elif event is E.USER_STOP:
        await w.feed(lc.UserStop("stopped by user"))
    elif event is E.USER_START:
        await w.feed(lc.UserStart("restarted by user"))
    else:  # pragma: no cover
        raise AssertionError(event)


ROWS = sorted(TRANSITIONS, key=lambda row: (row[0].value, row[1].value))


@pytest.mark.parametrize("row", ROWS, ids=[f"{s.value}+{e.value}" for s, e in ROWS])
async def test_table_row_through_the_runner(row: tuple[ForwardState, object]) -> None:
    from kportforward.core.states import Event as E

    state, event = row
    w = World()
    needs_backoff = event is E.EXITED and state in (S.RUNNING, S.DEGRADED, S.CONNECTING)
    await reach(w, state, failed_before=needs_backoff)
    w.transitions.clear()
    await deliver(w, state, event)
    expected = TRANSITIONS[row]
    assert (state, expected) in {(p, n) for p, n, _r in w.transitions}, w.transitions


WORLD_HISTORIES = sorted(HISTORIES)


@pytest.mark.parametrize("name", WORLD_HISTORIES)
async def test_history(name: str) -> None:
    world = World()
    await HISTORIES[name](world)
    for previous, new, _reason in world.transitions:
        assert previous is not new or new in (S.STARTING, S.RECONNECTING)


def test_at_least_forty_histories() -> None:
    assert len(HISTORIES) >= 40


def _with(spec: ForwardSpec, **changes: object) -> ForwardSpec:
    from dataclasses import replace

    return replace(spec, **changes)  # type: ignore[arg-type]


async def _probe_now_and(
    self: World, ok: bool, reason: str = "probe failed", timed_out: bool = False
) -> None:
    self.runner.probe_now()
    await self.probe(ok, reason, timed_out)


World.probe_now_and = _probe_now_and  # type: ignore[attr-defined]


async def test_a_probe_of_a_dead_kubectl_does_not_block_the_next_ones() -> None:
    """Found with the real kubectl: a probe still out when its kubectl died kept the next
    kubectl from ever being probed (stuck in "checking the tunnel" until the connect timeout)."""
    w = World()
    await w.begin()
    await w.running()
    await w.advance(10)  # stable: the loss restarts at once
    w.runner.probe_now()
    assert len(w.probes) == 1  # out, unanswered
    await w.exit()
    await w.ready()
    assert w.state is S.CONNECTING
    await w.probe(True)  # the new kubectl's probe (the old one was abandoned)
    assert w.state is S.RUNNING and len(w.procs) == 2


async def test_lost_working_tunnels_come_back_within_the_verified_cap() -> None:
    """Chaos in the cluster (kills, replaced pods, dropped streams) cuts tunnels that worked:
    they back off, but never beyond verified_cap; attempts that never carry bytes go on."""
    w = World()
    await w.begin()
    waits = []
    for _ in range(8):
        await w.running()
        await w.advance(1)
        await w.exit()
        waits.append((w.runner.record.retry_at or w.clock.now()) - w.clock.now())
        await w.advance(waits[-1])
    assert waits == [0.0, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    await w.exit(F.UNKNOWN, "kubectl exited", "error: odd")  # never verified: past the cap
    assert w.runner.record.retry_at - w.clock.now() > 2.0


async def test_silence_from_a_backend_that_answered_before_passes_quickly() -> None:
    """A hung API server makes verification probes time out: for a forward whose backend has
    answered before, that is transient (within the 2 s cap); for one that never answered, the
    backoff climbs (it may be a backend that never answers a half-close)."""
    w = World()
    await w.begin()
    await w.running()
    await w.advance(10)
    await w.exit()  # stable: back at once
    waits = []
    for _ in range(5):
        await w.ready()
        await w.probe(False, "no answer through the tunnel in 0.5s", timed_out=True)
        waits.append(w.runner.record.retry_at - w.clock.now())
        await w.advance(waits[-1])
    assert max(waits) <= 2.0, waits
    fresh = World()
    await fresh.begin()
    waits = []
    for _ in range(5):
        await fresh.ready()
        await fresh.probe(False, "no answer through the tunnel in 0.5s", timed_out=True)
        waits.append(fresh.runner.record.retry_at - fresh.clock.now())
        await fresh.advance(waits[-1])
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]
