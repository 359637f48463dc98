"""The asyncio supervisor: the only place that starts processes.

``Supervisor`` is imported lazily so ``import kportforward.supervisor`` stays cheap; nothing here
imports textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kportforward.supervisor.runner import Tuning
    from kportforward.supervisor.supervisor import Supervisor

__all__ = ["Supervisor", "Tuning"]


def __getattr__(name: str) -> Any:
    if name == "Supervisor":
        from kportforward.supervisor.supervisor import Supervisor

        return Supervisor
    if name == "Tuning":
        from kportforward.supervisor.runner import Tuning

        return Tuning
    raise AttributeError(name)
