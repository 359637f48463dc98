"""Messages from the event worker to the app."""

from __future__ import annotations

from textual.message import Message

from kportforward.core.models import ClusterStatus
from kportforward.supervisor.events import ConfigReloaded, NoticeEvent


class StatusesPending(Message):
    """Doorbell: the coalescer holds new statuses. Any pending doorbell makes another redundant."""

    def can_replace(self, message: Message) -> bool:
        """One doorbell stands for all pending statuses."""
        return isinstance(message, StatusesPending)


class ClusterChanged(Message):
    """A cluster's reachability changed."""

    def __init__(self, cluster: ClusterStatus) -> None:
        super().__init__()
        self.cluster = cluster


class NoticePosted(Message):
    """A notice a person should see once."""

    def __init__(self, event: NoticeEvent) -> None:
        super().__init__()
        self.event = event


class ConfigApplied(Message):
    """The supervisor applied a config (added, removed, changed forwards, and its warnings)."""

    def __init__(self, event: ConfigReloaded) -> None:
        super().__init__()
        self.event = event
