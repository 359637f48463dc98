"""The transition table: scripted histories, and no state that nothing leaves."""

from __future__ import annotations

import pytest

from kportforward.core.states import TRANSITIONS, Event, ForwardState, has_process, next_state

S, E = ForwardState, Event


def play(start: ForwardState, events: list[Event]) -> list[ForwardState]:
    """Run a history through the table; ignored events leave the state as it was."""
    state, seen = start, []
    for event in events:
        state = next_state(state, event) or state
        seen.append(state)
    return seen


HISTORIES = {
    "happy start": (
        S.STARTING,
        [E.SPAWNED, E.PROBE_OK, E.PROBE_OK],
        [S.CONNECTING, S.RUNNING, S.RUNNING],
    ),
    "kubectl killed, backoff, back": (
        S.RUNNING,
        [E.EXITED, E.BACKOFF_ELAPSED, E.SPAWNED, E.PROBE_OK],
        [S.COOLDOWN, S.STARTING, S.CONNECTING, S.RUNNING],
    ),
    "probe fails once then recovers": (
        S.RUNNING,
        [E.PROBE_FAILED, E.PROBE_OK],
        [S.DEGRADED, S.RUNNING],
    ),
    "dead tunnel: two probe failures restart": (
        S.RUNNING,
        [E.PROBE_FAILED, E.RECONNECT, E.SPAWNED, E.PROBE_OK],
        [S.DEGRADED, S.RECONNECTING, S.CONNECTING, S.RUNNING],
    ),
    "NotFound is Failed, retried slowly": (
        S.CONNECTING,
        [E.EXITED_FATAL, E.BACKOFF_ELAPSED, E.SPAWNED, E.EXITED_FATAL],
        [S.FAILED, S.STARTING, S.CONNECTING, S.FAILED],
    ),
    "Failed retried at once by the user": (S.FAILED, [E.USER_START], [S.STARTING]),
    "401 suspends; probe passes; resumes": (
        S.CONNECTING,
        [E.CLUSTER_DOWN, E.BACKOFF_ELAPSED, E.CLUSTER_UP, E.SPAWNED, E.PROBE_OK],
        [S.SUSPENDED, S.SUSPENDED, S.STARTING, S.CONNECTING, S.RUNNING],
    ),
    "suspended cluster blocks a spawn": (S.STARTING, [E.CLUSTER_DOWN], [S.SUSPENDED]),
    "pod deleted reconnects": (S.RUNNING, [E.RECONNECT, E.SPAWNED], [S.RECONNECTING, S.CONNECTING]),
    "context change while waiting retries now": (S.COOLDOWN, [E.BACKOFF_ELAPSED], [S.STARTING]),
    "user stop from anywhere, start again": (
        S.DEGRADED,
        [E.USER_STOP, E.PROBE_OK, E.EXITED, E.USER_START],
        [S.STOPPED, S.STOPPED, S.STOPPED, S.STARTING],
    ),
    "restart a running forward": (S.RUNNING, [E.USER_START], [S.RECONNECTING]),
    "no port": (S.STARTING, [E.PORT_UNAVAILABLE, E.BACKOFF_ELAPSED], [S.COOLDOWN, S.STARTING]),
    "a late probe after exit is ignored": (
        S.COOLDOWN,
        [E.PROBE_OK, E.PROBE_FAILED],
        [S.COOLDOWN, S.COOLDOWN],
    ),
}


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_scripted_history(name: str) -> None:
    start, events, expected = HISTORIES[name]
    assert play(start, events) == expected


def test_every_state_has_a_way_out_without_the_user() -> None:
    # Stopped is left only by the user, by design; every other state leaves by itself.
    automatic = {e for e in Event if e not in (E.USER_START, E.USER_STOP)}
    for state in S:
        exits = {TRANSITIONS[(state, e)] for e in automatic if (state, e) in TRANSITIONS}
        exits.discard(state)
        if state is S.STOPPED:
            assert not exits
        else:
            assert exits, f"{state} has no automatic exit"


def test_every_state_can_be_stopped_and_started() -> None:
    for state in S:
        if state is not S.STOPPED:
            assert next_state(state, E.USER_STOP) is S.STOPPED
        assert next_state(state, E.USER_START) in (S.STARTING, S.RECONNECTING)


def test_every_state_reaches_running() -> None:
    for state in S:
        seen, frontier = {state}, [state]
        while frontier:
            s = frontier.pop()
            for (src, _e), dst in TRANSITIONS.items():
                if src is s and dst not in seen:
                    seen.add(dst)
                    frontier.append(dst)
        assert S.RUNNING in seen


def test_unknown_pairs_are_ignored() -> None:
    assert next_state(S.STOPPED, E.PROBE_OK) is None
    assert next_state(S.RUNNING, E.PROBE_OK) is None
    assert has_process(S.RUNNING) and has_process(S.CONNECTING) and not has_process(S.COOLDOWN)
