"""Forward states.

The transition table and ``next_state()`` live here too (added with the supervisor); this module holds
the vocabulary every other layer shares.
"""

from __future__ import annotations

from enum import Enum


class ForwardState(str, Enum):
    """Where one forward is in its lifecycle."""

    STARTING = "Starting"
    """Spec accepted; the local port is being resolved."""
    CONNECTING = "Connecting"
    """kubectl spawned; its readiness line has not been seen yet."""
    RUNNING = "Running"
    """Readiness seen and the last probe through the tunnel passed."""
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
