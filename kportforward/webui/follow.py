"""``WebUIs``: the one object the dashboard and ``run`` feed with forward snapshots to get
Swagger UI (``--swaggerui``) and grpcui (``--grpcui``) pages that follow the forwards.

Policy, in one place:

- Swagger UI, for ``type: rest`` forwards with a ``swaggerPath``: published once the forward is
  Running (or Degraded), on the port it actually uses; kept through restarts, reconnects and
  backoff (the URL never changes and the page says when the forward is down); withdrawn when the
  forward is Stopped or removed. ``open_swagger`` does the same on demand for one forward, starting
  the server if needed, even without ``--swaggerui``.
- grpcui, for ``type: rpc`` forwards: ensured while the forward is Running or Degraded, with
  kubectl's pid as the generation (a new kubectl restarts grpcui); stopped in every other state.

Call :meth:`update` from the event-loop thread for every snapshot (coalesced ones are fine: a
restart shows up as a new pid), :meth:`forget` for removed forwards, ``await close()`` at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from kportforward.core.models import ForwardStatus
from kportforward.core.states import ForwardState
from kportforward.supervisor.grpcui import GrpcUIStatus, GrpcUISupervisor
from kportforward.webui.server import SwaggerUI

log = logging.getLogger(__name__)

SERVING = frozenset({ForwardState.RUNNING, ForwardState.DEGRADED})
"""States in which kubectl is forwarding."""


def wants_swagger(status: ForwardStatus) -> bool:
    """A ``type: rest`` forward with a ``swaggerPath`` (the Go tool's rule)."""
    return status.spec.type == "rest" and bool(status.spec.swagger_path)


class WebUIs:
    """Swagger UI and grpcui for the forwards; either part may be off."""

    def __init__(
        self,
        *,
        swaggerui: bool = False,
        grpcui: bool = False,
        swagger_server: SwaggerUI | None = None,
        grpcui_supervisor: GrpcUISupervisor | None = None,
        on_notice: Callable[[str], None] | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.swaggerui_enabled = swaggerui
        self.grpcui_enabled = grpcui
        self.swagger = swagger_server or SwaggerUI()
        self.grpcui = grpcui_supervisor or GrpcUISupervisor(on_notice=on_notice)
        if on_change is not None:
            self.grpcui.on_change = lambda s: on_change(s.name)
        self._on_notice = on_notice
        self._stops: set[asyncio.Task[None]] = set()

    def set_notice(self, on_notice: Callable[[str], None]) -> None:
        """Where one-line notices go (a missing grpcui, Swagger UI off): set once the caller's
        output exists."""
        self._on_notice = on_notice
        self.grpcui.on_notice = on_notice

    async def start(self) -> None:
        """Start the Swagger UI server when ``--swaggerui`` is on. A failure (assets missing, no
        port) is one notice, never fatal: the forwards matter more than their docs."""
        if not self.swaggerui_enabled:
            return
        try:
            await self.swagger.start()
        except Exception as exc:  # SwaggerUIError: a one-line message with its hint
            self._notice(f"Swagger UI is off: {exc}")

    def update(self, status: ForwardStatus) -> None:
        """Follow one forward's new snapshot."""
        name = status.name
        if wants_swagger(status) and self.swagger.running:
            if status.state in SERVING and (self.swaggerui_enabled or self._published(name)):
                self._publish(status)
            elif status.state is ForwardState.STOPPED:
                self.swagger.withdraw(name)
        if self.grpcui_enabled and status.spec.type == "rpc":
            if status.state in SERVING and status.local_port:
                self.grpcui.ensure(
                    name,
                    status.local_port,
                    address=status.spec.address,
                    generation=status.pid,
                )
            elif self.grpcui.status(name) is not None:
                self._stop_grpcui(name)

    def forget(self, name: str) -> None:
        """The forward was removed from the config."""
        if self.swagger.running:
            self.swagger.withdraw(name)
        if self.grpcui.status(name) is not None:
            self._stop_grpcui(name)

    def url(self, name: str) -> str | None:
        """The web UI for forward ``name`` now: its Swagger UI, else its grpcui, else None."""
        if self.swagger.running and self._published(name):
            return self.swagger.url(name)
        return self.grpcui.url(name)

    def grpcui_status(self, name: str) -> GrpcUIStatus | None:
        """Forward ``name``'s grpcui, for the details screen."""
        return self.grpcui.status(name)

    async def open_swagger(self, status: ForwardStatus) -> str:
        """Swagger UI for this forward now (the on-demand key): starts the server if needed.

        Raises ``SwaggerUIError`` (assets missing, no port) and ``ValueError`` (the forward is not
        a REST forward with a swaggerPath) with a one-line message for a notice.
        """
        if not wants_swagger(status):
            raise ValueError(f"{status.name} has no swaggerPath (only type: rest forwards do)")
        if not self.swagger.running:
            await self.swagger.start()
        return self._publish(status)

    async def close(self) -> None:
        """Stop grpcui children and the Swagger UI server (idempotent)."""
        await self.grpcui.close()
        if self._stops:
            await asyncio.gather(*self._stops, return_exceptions=True)
        await self.swagger.close()

    def _publish(self, status: ForwardStatus) -> str:
        spec = status.spec
        return self.swagger.publish(
            status.name,
            status.local_port or spec.local_port,
            spec.api_path,
            spec.swagger_path or "",
            address=spec.address,
        )

    def _published(self, name: str) -> bool:
        return name in self.swagger.published()

    def _stop_grpcui(self, name: str) -> None:
        # stop_soon detaches the child at once: a Running snapshot right after this one starts a
        # fresh grpcui (after the old one is gone) instead of being undone by a late stop.
        task = self.grpcui.stop_soon(name)
        if task is not None:
            self._stops.add(task)
            task.add_done_callback(self._stops.discard)

    def _notice(self, message: str) -> None:
        log.warning("%s", message)
        if self._on_notice is not None:
            with contextlib.suppress(Exception):
                self._on_notice(message)
