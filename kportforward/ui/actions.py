"""The dashboard's actions: on the selected forward, commands to the supervisor, the palette.

``DashboardActions`` is the App base class that holds the action methods (bound to keys in the app
and listed in the command palette); the helpers below it do the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from datetime import tzinfo
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen

from kportforward.core.models import ForwardStatus
from kportforward.core.states import ForwardState
from kportforward.ui.presenters import address_text, is_browsable

if TYPE_CHECKING:
    from kportforward.core.config_append import Appended
    from kportforward.core.models import Config
    from kportforward.kube.discover import Discovery
    from kportforward.supervisor.protocol import SupervisorProtocol
    from kportforward.ui.screens.main import MainScreen
    from kportforward.webui import WebUIs

VERB_WORDS = {"restart": "Restarting", "stop": "Stopping", "start_forward": "Starting"}


class DashboardActions(App[None]):
    """Actions on the selected forward (also in the command palette)."""

    supervisor: SupervisorProtocol
    statuses: dict[str, ForwardStatus]
    main_screen: MainScreen
    browser: Callable[[str], bool]
    config_path: str
    config_arg: str | None
    clock: Callable[[], float]
    tz: tzinfo | None
    refresh_rate: float
    webuis: WebUIs | None
    kubeconfig: str | None
    select: Callable[[Config], Config] | None

    def web_url(self, status: ForwardStatus) -> str | None:
        """The forward's Swagger UI / grpcui page, when one is up."""
        return self.webuis.url(status.name) if self.webuis is not None else None

    def show_notice(
        self, text: str, level: str = "information", ts: float | None = None, toast: bool = True
    ) -> None:
        """Put a notice in the header (and a notification); the app implements it."""
        raise NotImplementedError

    def resync(self) -> None:
        """Take a full snapshot from the supervisor; the app implements it."""
        raise NotImplementedError

    def selected_name(self) -> str | None:
        """The forward the keys act on: the details/log screen's, else the table's cursor."""
        name = getattr(self.screen, "forward_name", None)
        return name if name is not None else self.main_screen.table.cursor_name

    def fresh_status(self, name: str) -> ForwardStatus | None:
        """The supervisor's current status of ``name``, including what changes without a
        transition (probe latencies, RSS/CPU, connections); the last event's status otherwise."""
        try:
            return self.supervisor.status(name)
        except KeyError:
            return None

    def _selected(self) -> ForwardStatus | None:
        name = self.selected_name()
        status = self.statuses.get(name) if name else None
        if status is None:
            self.notify("No forward selected", severity="warning")
        return status

    def action_details(self, name: str | None = None) -> None:
        """Open the details screen of ``name`` (default: the selected forward)."""
        name = name or self.selected_name()
        if name and name in self.statuses:
            from kportforward.ui.screens.details import DetailsScreen  # later: a faster first frame

            self.push_screen(
                DetailsScreen(
                    name,
                    self.fresh_status,
                    self.clock,
                    self.tz,
                    self.refresh_rate,
                    web_rows=self.web_rows,
                    traffic_of=self.supervisor.traffic_history,
                )
            )

    def web_rows(self, status: ForwardStatus) -> list[tuple[str, str]]:
        """Details rows for the forward's Swagger UI / gRPC UI (none without web UIs)."""
        if self.webuis is None:
            return []
        rows = []
        url = self.webuis.url(status.name)
        if status.spec.type == "rest" and status.spec.swagger_path:
            rows.append(("Swagger UI", url or "off (press w to open it)"))
        elif status.spec.type == "rpc":
            grpcui = self.webuis.grpcui_status(status.name)
            if grpcui is not None:
                text = grpcui.url or grpcui.state.value
                if grpcui.last_error:
                    text += f"  (last error: {grpcui.last_error})"
                rows.append(("gRPC UI", text))
            else:
                rows.append(("gRPC UI", "off (press w for the gRPC screen)"))
        return rows

    def action_log(self) -> None:
        """Open the live kubectl log of the selected forward."""
        from kportforward.ui.screens.log import LogScreen

        if isinstance(self.screen, LogScreen):
            return  # already there: a second l must not stack another log screen
        if (status := self._selected()) is not None:
            self.push_screen(LogScreen(status.name, self.supervisor.log_lines, self.refresh_rate))

    def action_http_log(self) -> None:
        """Open the HTTP request log of the selected forward (what its front door saw)."""
        from kportforward.ui.screens.requests import RequestsScreen

        if isinstance(self.screen, RequestsScreen):
            return  # already there
        if (status := self._selected()) is not None:
            self.push_screen(
                RequestsScreen(
                    status.name,
                    self.fresh_status,
                    self.supervisor.http_requests,
                    self.clock,
                    self.tz,
                    self.refresh_rate,
                )
            )

    def action_help(self) -> None:
        """Show every key."""
        from kportforward.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_restart(self) -> None:
        """Restart the selected forward (a new kubectl)."""
        if (status := self._selected()) is not None:
            self._command("restart", [status.name])

    def action_stop_start(self) -> None:
        """Stop the selected forward, or start it when it is Stopped."""
        if (status := self._selected()) is not None:
            verb = "start_forward" if status.state is ForwardState.STOPPED else "stop"
            self._command(verb, [status.name])

    def action_group_stop_start(self) -> None:
        """Stop every forward of the selected forward's group, or start them all if all stopped."""
        if (status := self._selected()) is None:
            return
        plan = group_plan(status, self.statuses.values())
        if plan is None:
            self.notify(f"{status.name} has no group (set 'group:' in the config)")
            return
        verb, names = plan
        count = f"{len(names)} forward{'s' if len(names) != 1 else ''}"
        self._command(verb, names, label=f"group {status.spec.group} ({count})")

    def action_open_url(self) -> None:
        """Open the selected forward's web UI or URL in the browser (in a thread: browsers can
        block). Only HTTP forwards (web, rest) or ones with a web UI: the others are no page."""
        if (status := self._selected()) is None:
            return
        url = self.web_url(status)
        if url is None and not is_browsable(status):
            self.notify(
                f"{status.name} is a type {status.spec.type} forward, not a web page: "
                f"press c to copy {address_text(status)}",
                severity="warning",
            )
            return
        self._open(url or status.url)

    @work(thread=True, name="open-url", group="browser", exit_on_error=False)
    def _open(self, url: str) -> None:
        target = url if "://" in url else f"http://{url}"
        if not self.browser(target):
            self.call_from_thread(
                self.notify, f"No browser to open {target}; press c to copy it", severity="warning"
            )

    def action_copy_url(self) -> None:
        """Copy the web UI or URL (web/rest) or ``localhost:PORT`` (others): OSC 52 to the
        terminal, and the platform's clipboard tool when there is one."""
        if (status := self._selected()) is None:
            return
        text = self.web_url(status) or (
            status.url if is_browsable(status) else address_text(status)
        )
        self.copy_to_clipboard(text)
        self._copy_with_tool(text)

    @work(thread=True, name="copy", group="clipboard", exit_on_error=False)
    def _copy_with_tool(self, text: str) -> None:
        from kportforward.ui.desktop import copy_with_tool

        tool = copy_with_tool(text)
        how = (
            f"with {tool}"
            if tool
            else "through the terminal (OSC 52); if it is not there, your terminal does not "
            "allow OSC 52: select the text instead"
        )
        self.call_from_thread(self.notify, f"Copied {text} {how}")

    def action_web_ui(self) -> None:
        """Swagger UI of a rest forward (started on demand), the gRPC screen of an rpc one."""
        if (status := self._selected()) is None:
            return
        if status.spec.type == "rpc":
            from kportforward.ui.screens.grpc import GrpcScreen

            port = status.local_port or status.spec.local_port
            self.push_screen(GrpcScreen(status.name, f"127.0.0.1:{port}"))
            return
        if status.spec.type != "rest" or not status.spec.swagger_path:
            self.notify(
                f"{status.name} has no web UI: Swagger UI needs type: rest and a swaggerPath, "
                "the gRPC screen type: rpc",
                severity="warning",
            )
            return
        if self.webuis is None:
            self.notify("Swagger UI is not available in this session", severity="warning")
            return
        self.run_worker(self._open_swagger(status), name="swagger", exit_on_error=False)

    async def _open_swagger(self, status: ForwardStatus) -> None:
        assert self.webuis is not None
        try:
            url = await self.webuis.open_swagger(status)
        except Exception as exc:  # SwaggerUIError and friends: one line, never a crash
            self.notify(f"Swagger UI: {exc}", severity="error", timeout=10)
            return
        self.notify(f"Swagger UI for {status.name}: {url}")
        self._open(url)

    def action_add(self) -> None:
        """Pick services of a namespace and append them to the config file."""
        from kportforward.ui.screens.add import AddScreen

        if isinstance(self.screen, AddScreen):
            return
        status = self.statuses.get(self.main_screen.table.cursor_name or "")
        namespace = status.spec.namespace if status is not None else None
        self.push_screen(
            AddScreen(self.add_target(), namespace, self.discover, self.config, self.clock),
            callback=self._added,
        )

    def _added(self, result: Appended | None) -> None:
        if result is None:
            return
        names = ", ".join(result.names)
        self.show_notice(f"Added {names} to {result.path}; starting them", "information")
        self.action_reload_config()  # the normal reload starts them

    def add_target(self) -> str:
        """The file ``a`` appends to: ``--config`` when given, else the user's config file."""
        return self.config_arg or self.config_path

    def config(self) -> Config:
        """The config the supervisor runs (names and ports the new entries must not reuse)."""
        return self.supervisor.config

    async def discover(self, namespace: str | None) -> Discovery:
        """The services of ``namespace`` through the API (the app may be given another way)."""
        from kportforward.kube.discover import discover_services

        return await discover_services(namespace, kubeconfig=self.kubeconfig)

    def deliver_screenshot(
        self,
        filename: str | None = None,
        path: str | None = None,
        time_format: str | None = None,
    ) -> str | None:
        """Save an SVG of the screen where it can be found, and say where (or why not)."""
        from pathlib import Path

        from textual._files import generate_datetime_filename

        from kportforward.ui.desktop import save_text, screenshot_dir

        name = filename or generate_datetime_filename(self.title, ".svg", time_format)
        directory = Path(path) if path else screenshot_dir()
        try:
            saved = save_text(directory, name, self.export_screenshot())
        except OSError as exc:
            self.notify(
                f"Screenshot not saved to {directory}: {exc.strerror or exc} "
                "(set KPORTFORWARD_SCREENSHOT_DIR to a writable directory)",
                title="Screenshot",
                severity="error",
                timeout=10,
            )
            return None
        self.notify(f"Saved {saved}", title="Screenshot", timeout=8)
        return str(saved)

    def action_reload_config(self) -> None:
        """Read the config files again and apply them."""
        self.run_worker(reload_config(self), name="reload", group="reload", exit_on_error=False)

    def _command(self, verb: str, names: list[str], label: str | None = None) -> None:
        self.run_worker(
            run_command(self, verb, names, label),
            name=verb,
            group="commands",
            exit_on_error=False,
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action of the dashboard, in the command palette."""
        yield from palette_commands(self)
        yield from super().get_system_commands(screen)


def group_plan(
    status: ForwardStatus, statuses: Iterable[ForwardStatus]
) -> tuple[str, list[str]] | None:
    """What ``g`` does: ``("stop", names)`` while any forward of the group is not Stopped, else
    ``("start_forward", names)``; None when ``status`` has no group."""
    group = status.spec.group
    if not group:
        return None
    members = sorted((s for s in statuses if s.spec.group == group), key=lambda s: s.name)
    if any(s.state is not ForwardState.STOPPED for s in members):
        return "stop", [s.name for s in members]
    return "start_forward", [s.name for s in members]


async def run_command(
    app: DashboardActions, verb: str, names: list[str], label: str | None = None
) -> None:
    """Call ``supervisor.<verb>(name)`` for each name at once; failures become notifications.

    ``label`` names what is acted on (``group payments (6 forwards)``) instead of the names.
    """
    what = label or (", ".join(names) if len(names) <= 3 else f"{len(names)} forwards")
    app.notify(f"{VERB_WORDS.get(verb, verb)} {what}", timeout=3)
    method = getattr(app.supervisor, verb)
    results = await asyncio.gather(*(method(name) for name in names), return_exceptions=True)
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            app.notify(
                f"{verb.replace('_forward', '')} {name} failed: {result}",
                title="Error",
                severity="error",
                timeout=10,
            )


async def reload_config(app: DashboardActions) -> None:
    """Load the config files again (in a thread) and hand the result to the supervisor."""
    from kportforward.core.config import load_config
    from kportforward.errors import KPortForwardError

    try:
        config = await asyncio.to_thread(load_config, app.config_arg)
        if app.select is not None:
            config = app.select(config)
    except KPortForwardError as exc:
        app.call_later(app.show_notice, f"Config not reloaded: {exc}", "error")
        return
    # The supervisor announces the reload itself (a notice event); the table follows its snapshot.
    await app.supervisor.reload(config)
    app.call_later(app.resync)


def palette_commands(app: DashboardActions) -> Iterator[SystemCommand]:
    """One command palette entry per dashboard action."""
    main = app.main_screen
    yield SystemCommand("Details", "Details of the selected forward (Enter)", app.action_details)
    yield SystemCommand(
        "Restart forward", "A new kubectl for the selected forward (R)", app.action_restart
    )
    yield SystemCommand(
        "Stop / start forward", "Stop or start the selected forward (space)", app.action_stop_start
    )
    yield SystemCommand(
        "Stop / start group", "The selected forward's whole group (g)", app.action_group_stop_start
    )
    yield SystemCommand("Live log", "kubectl output of the selected forward (l)", app.action_log)
    yield SystemCommand(
        "HTTP requests",
        "Requests through the selected web/rest forward's front door (h)",
        app.action_http_log,
    )
    yield SystemCommand(
        "Open URL", "Open the selected forward in the browser (o)", app.action_open_url
    )
    yield SystemCommand(
        "Copy address",
        "Copy the URL or localhost:PORT of the selected forward (c)",
        app.action_copy_url,
    )
    yield SystemCommand(
        "Web UI",
        "Swagger UI (rest) or the gRPC screen (rpc) of the selected forward (w)",
        app.action_web_ui,
    )
    yield SystemCommand(
        "Add forwards",
        "Pick services of a namespace; appended to the config (a)",
        app.action_add,
    )
    yield SystemCommand("Filter", "Filter the table (/)", main.action_filter)
    yield SystemCommand("Clear filter", "Show every forward (Esc)", main.action_clear_filter)
    for key, letter in (
        ("name", "n"),
        ("status", "s"),
        ("type", "t"),
        ("port", "p"),
        ("uptime", "u"),
    ):
        yield SystemCommand(
            f"Sort by {key}",
            f"Sort the table by {key} ({letter})",
            lambda key=key: main.action_sort(key),
        )
    yield SystemCommand("Reverse sort", "Reverse the current sort (r)", main.action_reverse)
    yield SystemCommand(
        "Reload config", f"Read {app.config_path} again and apply it", app.action_reload_config
    )
    yield SystemCommand("Help", "Every key (?)", app.action_help)
