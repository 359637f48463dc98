"""Coalescing supervisor updates per forward, between the event worker and the UI.

The event worker and the UI share one asyncio loop (Textual runs async workers on the app's loop),
so no lock is needed: the worker ``put``s every status it reads, and posts one doorbell message when
the pending batch goes from empty to non-empty; the UI ``drain``s the batch when the doorbell rings.
An update for forward X replaces a pending update for X and never one for Y, so a flood of events
costs the UI one table update per forward per frame, whatever the event rate.

Textual's own ``Message.can_replace`` only compares a message with the one queued right behind it,
so interleaved X, Y, X updates would not coalesce there; this dict does.
"""

from __future__ import annotations

from kportforward.core.models import ForwardStatus


class StatusCoalescer:
    """The newest pending status per forward, drained in one batch by the UI."""

    def __init__(self) -> None:
        self._pending: dict[str, ForwardStatus] = {}
        self.received = 0
        """Statuses put in, over the coalescer's life."""
        self.delivered = 0
        """Statuses handed to the UI; ``received - delivered`` were superseded before drawing."""

    def put(self, status: ForwardStatus) -> bool:
        """Keep ``status`` as the newest for its forward; True when the batch was empty before."""
        was_empty = not self._pending
        self._pending[status.name] = status
        self.received += 1
        return was_empty

    def drain(self) -> dict[str, ForwardStatus]:
        """Take every pending status (one per forward) and start a new batch."""
        pending, self._pending = self._pending, {}
        self.delivered += len(pending)
        return pending

    def __len__(self) -> int:
        return len(self._pending)
