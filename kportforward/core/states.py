"""Forward states, the events that move them, and the one table that decides every transition.

``core/lifecycle.py`` never assigns a state directly: it maps each input to an :class:`Event`
and asks :func:`next_state` where that leads. An event that does not apply in the current state is
ignored (``None``), so a late report (a probe answer after a stop, say) can never push a forward
somewhere it should not be. Every state has at least one way out (``test_states`` checks this).
"""

from __future__ import annotations

from enum import Enum


class ForwardState(str, Enum):  # noqa: UP042 - str() stays "ForwardState.X" for callers
    """Where one forward is in its lifecycle."""

    STARTING = "Starting"
    """Spec accepted; the local port is being resolved."""
    CONNECTING = "Connecting"
    """kubectl spawned; not yet ready, or ready and the first probe has not crossed the tunnel."""
    RUNNING = "Running"
    """A probe crossed the tunnel since kubectl became ready, and the last one passed."""
    DEGRADED = "Degraded"
    """kubectl alive but a probe failed; one more failure restarts it."""
    RECONNECTING = "Reconnecting"
    """Being restarted after a context change, a pod change or a dead tunnel."""
    COOLDOWN = "Cooldown"
    """Waiting out a backoff delay after repeated failures; leaves by itself."""
    FAILED = "Failed"
    """A failure retrying cannot fix without the user; retried slowly, at once on restart."""
    SUSPENDED = "Suspended"
    """The cluster is unreachable or credentials expired; waiting for an access probe to pass."""
    STOPPED = "Stopped"
    """Stopped by the user or disabled."""


class Event(str, Enum):  # noqa: UP042 - like ForwardState
    """Something that happened to one forward; the table maps (state, event) to the next state."""

    SPAWNED = "spawned"
    """kubectl was started for this forward."""
    PROBE_OK = "probe_ok"
    """A probe through the tunnel passed (the first one after readiness makes it Running)."""
    PROBE_FAILED = "probe_failed"
    """A probe through the tunnel failed (refused, or no answer in time)."""
    EXITED = "exited"
    """kubectl exited with a failure that a retry may fix (lost connection, pod not running …)."""
    EXITED_FATAL = "exited_fatal"
    """kubectl exited with a failure retrying cannot fix (NotFound, Forbidden, bad spec)."""
    CLUSTER_DOWN = "cluster_down"
    """The cluster is unreachable or rejected the credentials."""
    CLUSTER_UP = "cluster_up"
    """The access probe passed again."""
    PORT_UNAVAILABLE = "port_unavailable"
    """No local port could be found for the forward."""
    BACKOFF_ELAPSED = "backoff_elapsed"
    """The Cooldown (or slow Failed retry) delay is over."""
    RECONNECT = "reconnect"
    """Restart without the user: the pod changed, the context changed, or the tunnel is dead."""
    USER_STOP = "user_stop"
    """The user (or a config reload) stopped the forward."""
    USER_START = "user_start"
    """The user started or restarted the forward, or its config changed."""


S = ForwardState
E = Event

# States in which a kubectl process may exist (or be about to).
_LIVE = (S.CONNECTING, S.RUNNING, S.DEGRADED)


def _table() -> dict[tuple[ForwardState, Event], ForwardState]:
    t: dict[tuple[ForwardState, Event], ForwardState] = {}
    # Starting/Reconnecting: the port is being resolved and kubectl is about to be spawned.
    for s in (S.STARTING, S.RECONNECTING):
        t[s, E.SPAWNED] = S.CONNECTING
        t[s, E.PORT_UNAVAILABLE] = S.COOLDOWN
        t[s, E.CLUSTER_DOWN] = S.SUSPENDED
        t[s, E.EXITED] = S.COOLDOWN  # kubectl could not be started for now (EMFILE …)
        t[s, E.EXITED_FATAL] = S.FAILED  # kubectl cannot be run at all
    t[S.CONNECTING, E.PROBE_OK] = S.RUNNING  # kubectl's readiness alone is not enough
    t[S.CONNECTING, E.CLUSTER_DOWN] = S.SUSPENDED  # a working tunnel outlives the API: not live
    t[S.RUNNING, E.PROBE_FAILED] = S.DEGRADED
    t[S.DEGRADED, E.PROBE_OK] = S.RUNNING
    for s in _LIVE:
        t[s, E.EXITED] = S.COOLDOWN  # also a dead tunnel, after the backoff's delay
        t[s, E.EXITED_FATAL] = S.FAILED
        t[s, E.RECONNECT] = S.RECONNECTING  # also a dead tunnel when the backoff says "now"
    for s in (S.COOLDOWN, S.FAILED):
        t[s, E.BACKOFF_ELAPSED] = S.STARTING
        t[s, E.CLUSTER_DOWN] = S.SUSPENDED
    t[S.SUSPENDED, E.CLUSTER_UP] = S.STARTING
    # The user can stop anything that is not already stopped, and (re)start anything.
    for s in S:
        if s is not S.STOPPED:
            t[s, E.USER_STOP] = S.STOPPED
        t[s, E.USER_START] = S.RECONNECTING if s in _LIVE else S.STARTING
    t[S.STARTING, E.USER_START] = S.STARTING
    t[S.RECONNECTING, E.USER_START] = S.RECONNECTING
    return t


TRANSITIONS: dict[tuple[ForwardState, Event], ForwardState] = _table()
"""(state, event) → next state. Pairs not listed are ignored."""


def next_state(state: ForwardState, event: Event) -> ForwardState | None:
    """Where ``event`` takes a forward in ``state``; None when the event does not apply there."""
    return TRANSITIONS.get((state, event))


def has_process(state: ForwardState) -> bool:
    """True in the states where a kubectl process belongs to the forward."""
    return state in _LIVE
