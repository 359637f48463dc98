"""The dashboard app: a thin shell over a SupervisorProtocol.

It renders immutable snapshots and sends commands; it holds no supervision logic. The supervisor's
lifetime follows the app's: started after the first frame, shut down on quit (or unmount). Its
events reach the UI through one worker, coalesced per forward (see ``ui/updates.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import webbrowser
from collections.abc import Callable, Iterable
from datetime import tzinfo
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from kportforward.core.models import ClusterStatus, ForwardStatus
from kportforward.core.states import ForwardState
from kportforward.supervisor.events import (
    ClusterEvent,
    ConfigReloaded,
    ForwardEvent,
    NoticeEvent,
    TrafficEvent,
)
from kportforward.supervisor.protocol import SupervisorProtocol
from kportforward.ui.actions import DashboardActions
from kportforward.ui.messages import ClusterChanged, ConfigApplied, NoticePosted, StatusesPending
from kportforward.ui.presenters import format_clock
from kportforward.ui.screens.main import MainScreen
from kportforward.ui.signals import QuitSignals
from kportforward.ui.updates import StatusCoalescer
from kportforward.ui.widgets.summary import SummaryBar

if TYPE_CHECKING:
    from kportforward.core.models import Config
    from kportforward.webui import WebUIs

log = logging.getLogger(__name__)

THEME_ALIASES = {"dark": "textual-dark", "light": "textual-light"}
DEFAULT_THEME = "textual-dark"
SLOW_QUIT_NOTICE = 0.5
"""Seconds of shutdown after which the app says it is stopping kubectl processes."""
SHUTDOWN_TIMEOUT = 10.0
SIGNAL_EXIT_DEADLINE = 2.7
"""Seconds from SIGINT/SIGTERM/SIGHUP to the end of the process, whatever the terminal does."""
FORCED_EXIT_DEADLINE = 0.5


class KPortForwardApp(DashboardActions):
    """The kportforward dashboard. Build it with ``make_app``."""

    CSS_PATH = "app.tcss"
    TITLE = "kportforward"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("Q", "quit_instance", "Quit and stop", show=False),  # attached: stop it too
        Binding("ctrl+c", "quit", "Quit", show=False),  # as in the Go tool (and kubectl)
        Binding("question_mark", "help", "Help"),
        # Keys acting on a forward live on the screens that show one (ui/keys.py).
    ]

    def __init__(
        self,
        supervisor: SupervisorProtocol,
        *,
        config_path: str,
        config_arg: str | None = None,
        clock: Callable[[], float] = time.time,
        tz: tzinfo | None = None,
        open_url: Callable[[str], bool] | None = None,
        handle_signals: bool = True,
        exit_deadline: Callable[[float], None] | None = None,
        webuis: WebUIs | None = None,
        kubeconfig: str | None = None,
        select: Callable[[Config], Config] | None = None,
    ) -> None:
        super().__init__()
        self.webuis = webuis
        self.kubeconfig = kubeconfig
        self.select = select
        self.supervisor = supervisor
        self.config_path = config_path
        self.config_arg = config_arg
        self.clock = clock
        self.tz = tz
        self.browser = open_url or open_in_browser
        self.refresh_rate = max(0.05, supervisor.config.settings.refresh_rate)
        self.statuses: dict[str, ForwardStatus] = {}
        self.clusters: dict[str, ClusterStatus] = {}
        self.coalescer = StatusCoalescer()
        self.supervisor_started = asyncio.Event()
        self._handle_signals = handle_signals
        self._exit_deadline = exit_deadline
        self._signals: QuitSignals | None = None
        self._quitting = False
        self._start_requested = False
        self._polling = False
        self.ui_ready = False
        """True once the table screen has composed (it sets this in its on_mount)."""
        self._shut_down = False
        self._moved_noticed: set[str] = set()
        self.main_screen = MainScreen(clock, config_path, empty=not supervisor.config.forwards)

    def get_default_screen(self) -> Screen[None]:
        """The table screen."""
        return self.main_screen

    # --- lifetime ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        """Apply the theme, start reading events, install the signal handlers."""
        self.theme = self._theme_name(self.supervisor.config.settings.theme)
        for warning in self.supervisor.config.warnings:
            self.notify(str(warning), title="Config warning", severity="warning", timeout=10)
        self.run_worker(self._consume_events(), name="events", group="events", exit_on_error=False)
        self.set_interval(self.refresh_rate, self._tick)
        if self._handle_signals:
            self._signals = QuitSignals(
                asyncio.get_running_loop(), self._on_signal, self._signal_deadline
            )
            self._signals.install()

    def _theme_name(self, wanted: str) -> str:
        name = THEME_ALIASES.get(wanted, wanted)
        if name in self.available_themes:
            return name
        self.notify(
            f"Unknown theme {wanted!r} in uiOptions.theme; using dark. "
            f"Known: dark, light, {', '.join(sorted(self.available_themes))}",
            severity="warning",
            timeout=8,
        )
        return DEFAULT_THEME

    def start_supervisor(self) -> None:
        """Start the supervisor in a worker; the table screen calls this after its first frame."""
        if self._start_requested:
            return
        self._start_requested = True
        self.run_worker(self._start(), name="start", group="start", exit_on_error=False)

    async def _start(self) -> None:
        await self.supervisor.start()
        self.supervisor_started.set()
        if self.webuis is not None:  # after the first frame; a failure is one notice
            self.webuis.set_notice(lambda text: self.notify(text, severity="warning"))
            await self.webuis.start()
        self.call_later(self.resync)  # widgets are updated by the app, not from the worker

    async def _consume_events(self) -> None:
        async for event in self.supervisor.events():
            if isinstance(event, ForwardEvent):
                if self.webuis is not None:
                    self.webuis.update(event.status)  # Swagger UI / grpcui follow the forwards
                if self.coalescer.put(event.status):
                    self.post_message(StatusesPending())
            elif isinstance(event, TrafficEvent):
                # The row's traffic figures: the newest status replaces a pending one.
                with contextlib.suppress(KeyError):
                    if self.coalescer.put(self.supervisor.status(event.forward)):
                        self.post_message(StatusesPending())
            elif isinstance(event, ClusterEvent):
                self.post_message(ClusterChanged(event.cluster))
            elif isinstance(event, NoticeEvent):
                self.post_message(NoticePosted(event))
            elif isinstance(event, ConfigReloaded):
                self.post_message(ConfigApplied(event))
        if getattr(self.supervisor, "lost", False):  # attached, and the instance went away
            self.notify("The kportforward instance stopped", severity="error", timeout=30)

    def _signal_deadline(self, count: int) -> None:
        # Runs in the signal handler: the process must end in time even if the loop is stuck.
        if self._exit_deadline is not None:
            self._exit_deadline(SIGNAL_EXIT_DEADLINE if count == 1 else FORCED_EXIT_DEADLINE)

    def _on_signal(self, count: int) -> None:
        log.info("dashboard: quit signal (%d)", count)
        # SIGINT, SIGTERM and SIGHUP all quit cleanly; a second one during a slow quit forces it.
        self.call_later(self.action_quit)

    async def on_unmount(self) -> None:
        """Whatever ended the app, no kubectl outlives it (unless the quit was forced)."""
        if self._signals is not None:
            self._signals.uninstall()
        if not self._shut_down and not self._quitting:
            await self._shutdown_supervisor()

    async def _shutdown_supervisor(self) -> None:
        try:
            await asyncio.wait_for(self.supervisor.shutdown(), SHUTDOWN_TIMEOUT)
        finally:
            self._shut_down = True
            if self.webuis is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.webuis.close(), SHUTDOWN_TIMEOUT)

    async def action_quit(self) -> None:
        """Stop every kubectl, then exit; say so if that takes a while. Twice: exit now."""
        if self._quitting:
            # Forced: kill every kubectl group now rather than wait for the polite stop.
            self.supervisor.kill_all()
            if self._exit_deadline is not None:
                self._exit_deadline(FORCED_EXIT_DEADLINE)
            self.exit(return_code=130)
            return
        self._quitting = True
        if self._exit_deadline is not None:
            self._exit_deadline(SHUTDOWN_TIMEOUT + 2.0)
        self.run_worker(self._quit(), name="quit", group="quit", exit_on_error=False)

    async def action_quit_instance(self) -> None:
        """Quit and stop the forwards: attached, stop the instance too; else the same as q."""
        stop_instance = getattr(self.supervisor, "stop_instance", None)
        if stop_instance is None or self._quitting:
            await self.action_quit()
            return
        self._quitting = True
        if self._exit_deadline is not None:
            self._exit_deadline(SHUTDOWN_TIMEOUT + 2.0)
        await stop_instance()
        self._shut_down = True
        self.exit(return_code=0)

    async def _quit(self) -> None:
        running = sum(1 for s in self.statuses.values() if s.pid)
        notice = self.set_timer(
            SLOW_QUIT_NOTICE,
            lambda: self.notify(
                f"Stopping {running} kubectl process{'es' if running != 1 else ''}… "
                "(press q again to exit now)",
                title="Quitting",
                timeout=30,
            ),
        )
        started = time.monotonic()
        try:
            await self._shutdown_supervisor()
        except Exception as exc:
            log.exception("dashboard: shutdown failed")
            self.notify(f"Shutdown did not finish cleanly: {exc}", severity="error")
        finally:
            notice.stop()
        log.info("dashboard: supervisor shut down in %.2f s", time.monotonic() - started)
        self.exit(return_code=0)  # not reached when a forced quit cancelled this worker

    # --- events into the UI ------------------------------------------------------------------

    def resync(self) -> None:
        """Take a full snapshot (at start, after start, after a reload)."""
        statuses = list(self.supervisor.snapshot())
        # Before start() the supervisor may know no forward yet: show the configured ones as
        # Starting, so the first frame already lists every row.
        known = {s.name for s in statuses}
        statuses += [
            ForwardStatus(spec=spec, state=ForwardState.STARTING, reason="starting")
            for spec in self.supervisor.config.forwards
            if spec.name not in known
        ]
        self.statuses = {s.name: s for s in statuses}
        self.clusters = {c.context: c for c in self.supervisor.clusters()}
        if self.ui_ready:
            self.main_screen.show_all(statuses, self.clusters.values())
        self._notice_moved_ports(statuses)

    @on(StatusesPending)
    def _apply_statuses(self) -> None:
        batch = self.coalescer.drain()
        if not batch:
            return
        self.statuses.update(batch)
        try:
            if self.ui_ready:
                self.main_screen.apply(batch, self.statuses.values(), self.clusters.values())
            self._notice_moved_ports(batch.values())
        except Exception as exc:  # the dashboard keeps running; the next batch may draw
            log.exception("dashboard: cannot apply statuses")
            self.notify(f"Cannot show an update: {exc}", severity="error")

    @on(MainScreen.Mounted)
    def _main_mounted(self) -> None:
        self.ui_ready = True
        self.resync()
        self.call_after_refresh(self.start_supervisor)

    @on(MainScreen.DetailsWanted)
    def _details_wanted(self, message: MainScreen.DetailsWanted) -> None:
        self.action_details(message.name)

    @on(ClusterChanged)
    def _cluster_changed(self, message: ClusterChanged) -> None:
        # The supervisor's list is the truth: exactly the clusters the forwards use now.
        self.clusters = {c.context: c for c in self.supervisor.clusters()}
        if self.ui_ready:
            self.main_screen.query_one(SummaryBar).show_clusters(
                self.clusters.values(), self.statuses.values()
            )

    @on(NoticePosted)
    def _notice(self, message: NoticePosted) -> None:
        event = message.event
        self.show_notice(event.message, event.level, event.ts)

    @on(ConfigApplied)
    def _config_applied(self, message: ConfigApplied) -> None:
        event = message.event
        for warning in event.warnings:
            self.show_notice(f"config: {warning}", "warning", event.ts)
        self.show_notice(event.summary, "information", event.ts)
        self.resync()

    def show_notice(
        self, text: str, level: str = "information", ts: float | None = None, toast: bool = True
    ) -> None:
        """Put a notice in the header and (with ``toast``) in a notification."""
        when = format_clock(ts if ts is not None else self.clock(), self.tz, self.clock())
        if self.ui_ready:
            self.main_screen.query_one(SummaryBar).show_notice(when, text, level)
        if toast:
            severity = level if level in ("information", "warning", "error") else "information"
            self.notify(text, severity=severity)  # type: ignore[arg-type]

    def _notice_moved_ports(self, statuses: Iterable[ForwardStatus]) -> None:
        for s in statuses:
            if s.port_moved and s.name not in self._moved_noticed:
                self._moved_noticed.add(s.name)
                reason = f": {s.port_moved_reason}" if s.port_moved_reason else ""
                self.show_notice(
                    f"{s.name}: port moved {s.spec.local_port} → {s.local_port}{reason}",
                    "warning",
                    toast=False,  # the supervisor's own notice, if it sends one, is the toast
                )

    def _tick(self) -> None:
        if self._polling:
            self._poll_snapshot()
        if self.ui_ready:
            self.main_screen.table.refresh_time()

    def _poll_snapshot(self) -> None:
        # Fallback when the event stream broke: the snapshot is cheap at the refresh rate.
        try:
            current = self.supervisor.snapshot()
        except Exception:
            log.exception("dashboard: snapshot failed")
            return
        for status in current:
            if self.statuses.get(status.name) != status:
                self.coalescer.put(status)
        self._apply_statuses()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Errors in workers become notifications; the app keeps running."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            log.error("dashboard: worker %s failed: %r", event.worker.name, error)
            text = f"{event.worker.name}: {type(error).__name__}: {error}"
            if event.worker.name == "events" and not self._quitting:
                self._polling = True
                text += " — following the supervisor's snapshot instead"
            self.notify(text, title="Error", severity="error", timeout=10)


def open_in_browser(url: str) -> bool:
    """Open ``url`` in a graphical browser; False when there is none.

    Without a display, ``webbrowser`` falls back to console browsers (lynx, w3m) that would take
    over the dashboard's own terminal, so on Linux without X11/Wayland this declines instead.
    """
    graphical = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not graphical:
        return False
    return webbrowser.open(url)


def make_app(
    supervisor: SupervisorProtocol,
    *,
    config_path: str,
    config_arg: str | None = None,
    clock: Callable[[], float] = time.time,
    tz: tzinfo | None = None,
    open_url: Callable[[str], bool] | None = None,
    handle_signals: bool = True,
    exit_deadline: Callable[[float], None] | None = None,
    webuis: WebUIs | None = None,
    kubeconfig: str | None = None,
    select: Callable[[Config], Config] | None = None,
) -> KPortForwardApp:
    """The one way to build the dashboard: the CLI, the tests, the snapshots and the demo use it.

    ``config_path`` is the file the empty state names; ``config_arg`` the ``--config`` value a
    reload passes to ``load_config``. ``clock`` is wall-clock seconds (freeze it for snapshots);
    ``tz`` the zone times are shown in (None: local); ``open_url`` opens a URL in a browser;
    ``handle_signals`` makes SIGINT, SIGTERM and SIGHUP quit cleanly (off in Pilot tests, which
    share the test runner's process). ``exit_deadline(seconds)`` is called when a quit begins
    (from a key or a signal handler); the CLI uses it to guarantee the process ends by then.
    ``webuis`` (``kportforward.webui.WebUIs``, fed by the caller) gives the Swagger UI / grpcui
    URLs that ``o``, ``c``, ``w`` and the details use; ``kubeconfig`` is the ``--kubeconfig``
    the ``a`` screen lists services through (None: $KUBECONFIG or ~/.kube/config); ``select``
    (the global ``--context``/``-n`` filter) is applied to every config a reload reads.
    """
    return KPortForwardApp(
        supervisor,
        config_path=config_path,
        config_arg=config_arg,
        clock=clock,
        tz=tz,
        open_url=open_url,
        handle_signals=handle_signals,
        exit_deadline=exit_deadline,
        webuis=webuis,
        kubeconfig=kubeconfig,
        select=select,
    )
