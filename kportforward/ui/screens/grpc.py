"""The built-in gRPC screen: browse an rpc forward's services by server reflection, call a unary
method with a JSON body, see the JSON reply or the status. No extra program (unlike grpcui), only
the ``grpc`` extra; without it the screen says how to install it.

All gRPC work happens in :mod:`kportforward.grpcclient` (no Textual there); this screen runs its
calls in workers and renders what the workers return.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Button, Footer, Static, TextArea, Tree
from textual.worker import Worker, WorkerState

from kportforward.grpcclient import (
    INSTALL_HINT,
    CallResult,
    GrpcClient,
    GrpcClientError,
    MethodInfo,
    ServiceInfo,
    grpc_available,
)


class GrpcScreen(Screen[None]):
    """gRPC for the forward ``forward_name`` listening on ``target`` (``127.0.0.1:PORT``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+r", "call", "Call", priority=True),
        Binding("f5", "reload", "Reload services"),
    ]

    # Local layout only: the screen is self-contained (the lead may move this into app.tcss).
    DEFAULT_CSS = """
    GrpcScreen #grpc-title { height: 1; padding: 0 1; background: $boost; }
    GrpcScreen #grpc-body { height: 1fr; }
    GrpcScreen #grpc-services { width: 40%; min-width: 30; border: round $primary-darken-2; }
    GrpcScreen #grpc-right { width: 1fr; }
    GrpcScreen #grpc-method { height: auto; padding: 0 1; }
    GrpcScreen #grpc-request { height: 1fr; min-height: 5; border: round $primary-darken-2; }
    GrpcScreen #grpc-actions { height: auto; }
    GrpcScreen #grpc-call { margin: 0 1; }
    GrpcScreen #grpc-result { height: 1fr; min-height: 5; border: round $primary-darken-2; }
    GrpcScreen #grpc-missing { padding: 1 2; }
    """

    def __init__(self, forward_name: str, target: str, *, timeout: float = 10.0) -> None:
        super().__init__()
        self.forward_name = forward_name
        self.target = target
        self.timeout = timeout
        self.client: GrpcClient | None = None
        self.services: tuple[ServiceInfo, ...] = ()
        self.method: MethodInfo | None = None
        self._bodies: dict[str, str] = {}
        """Request bodies typed per method path."""
        self.last_result: CallResult | None = None
        """The last call's outcome (for tests and the copy action)."""

    def compose(self) -> ComposeResult:
        """Title; services on the left; request, Call and result on the right."""
        yield Static(
            f"[b]gRPC[/b]  {escape(self.forward_name)}  [$text-muted]{escape(self.target)}[/]",
            id="grpc-title",
        )
        if not grpc_available():
            yield Static(
                "The gRPC screen needs grpcio and grpcio-reflection.\n\n"
                f"Install them with:  [b]{escape(INSTALL_HINT)}[/b]\n\n"
                "(or start the dashboard with --grpcui to use the grpcui program instead)",
                id="grpc-missing",
            )
            yield Footer()
            return
        with Horizontal(id="grpc-body"):
            tree: Tree[MethodInfo | None] = Tree("services", id="grpc-services")
            tree.show_root = False
            yield tree
            with Vertical(id="grpc-right"):
                yield Static("Asking the server for its services (reflection)…", id="grpc-method")
                request = TextArea("{}", id="grpc-request", show_line_numbers=False)
                request.border_title = "request (JSON)"
                yield request
                with Horizontal(id="grpc-actions"):
                    yield Button("Call  ctrl+r", id="grpc-call", variant="primary", disabled=True)
                result = TextArea("", id="grpc-result", read_only=True, show_line_numbers=False)
                result.border_title = "reply"
                yield result
        yield Footer()

    def on_mount(self) -> None:
        """Open the channel and list the services."""
        if not grpc_available():
            return
        self.client = GrpcClient(self.target, timeout=self.timeout)
        self.action_reload()

    def on_unmount(self) -> None:
        """Close the channel with the screen."""
        if self.client is not None:
            self.client.close()
            self.client = None

    # -- actions ---------------------------------------------------------------------------------
    def action_reload(self) -> None:
        """List the services again (after a deploy changed them)."""
        if self.client is None:
            return
        self._status("Asking the server for its services (reflection)…")
        self.run_worker(
            self.client.alist_services(), name="list", group="grpc", exit_on_error=False
        )

    def action_call(self) -> None:
        """Call the selected method with the request body."""
        if self.client is None or self.method is None:
            return
        if not self.method.unary:
            self._status(
                f"{escape(self.method.name)} is a {self.method.kind} method: only unary methods "
                "can be called here (grpcui can stream)"
            )
            return
        body = self.query_one("#grpc-request", TextArea).text
        self.query_one("#grpc-call", Button).disabled = True
        self._result("", "calling…")
        self.run_worker(
            self.client.acall(self.method.path, body),
            name="call",
            group="grpc",
            exit_on_error=False,
        )

    @on(Button.Pressed, "#grpc-call")
    def _pressed(self) -> None:
        self.action_call()

    @on(Tree.NodeSelected, "#grpc-services")
    def _selected(self, event: Tree.NodeSelected[MethodInfo | None]) -> None:
        method = event.node.data
        if method is None or self.client is None:
            return
        request = self.query_one("#grpc-request", TextArea)
        if self.method is not None:
            self._bodies[self.method.path] = request.text  # coming back keeps what was typed
        self.method = method
        self.query_one("#grpc-call", Button).disabled = not method.unary
        self._status(
            f"[b]{escape(method.service)}.{escape(method.name)}[/b]  {method.kind}\n"
            f"[$text-muted]{escape(method.input_type)} → {escape(method.output_type)}[/]"
        )
        if method.path in self._bodies:
            request.text = self._bodies[method.path]
            return
        # exclusive: picking methods quickly must not let an older template land last.
        self.run_worker(
            self.client.arequest_template(method.path),
            name="template",
            group="grpc-template",
            exclusive=True,
            exit_on_error=False,
        )

    # -- worker results --------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Render what a worker returned (workers never touch widgets themselves)."""
        worker: Worker[Any] = event.worker
        if event.state is WorkerState.ERROR:
            error = worker.error
            text = str(error) if isinstance(error, GrpcClientError) else f"{error!r}"
            if worker.name == "call":
                self.query_one("#grpc-call", Button).disabled = False
                self._result(text, "not sent")
            else:
                self._status(f"[$error]{escape(text)}[/]")
            return
        if event.state is not WorkerState.SUCCESS:
            return
        result = worker.result
        if worker.name == "list" and isinstance(result, tuple):
            self._show_services(result)
        elif worker.name == "template" and isinstance(result, str):
            self.query_one("#grpc-request", TextArea).text = result
        elif worker.name == "call" and isinstance(result, CallResult):
            self.query_one("#grpc-call", Button).disabled = False
            self._show_result(result)

    def _show_services(self, services: tuple[ServiceInfo, ...]) -> None:
        self.services = tuple(services)
        tree = self.query_one("#grpc-services", Tree)
        tree.clear()
        # Tree labels are Rich text (no Textual $variables): plain Text objects, no markup parsing.
        for service in services:
            node = tree.root.add(Text(service.name, style="bold"), expand=True)
            if service.error:
                node.add_leaf(Text(service.error, style="red"))
            for method in service.methods:
                label = Text(method.name)
                if not method.unary:
                    label.append(f"  ({method.kind})", style="dim")
                node.add_leaf(label, data=method)
        count = sum(len(s.methods) for s in services)
        self._status(
            f"{len(services)} services, {count} methods. "
            "Pick a method, edit the JSON, ctrl+r calls."
        )
        tree.focus()

    def _show_result(self, result: CallResult) -> None:
        self.last_result = result
        ms = f"{result.elapsed * 1000:.0f} ms"
        if result.ok:
            self._result(result.reply or "{}", f"OK · {ms}")
        else:
            self._result(f"{result.code}: {result.details}", f"{result.code} · {ms}")

    def _status(self, markup: str) -> None:
        self.query_one("#grpc-method", Static).update(markup)

    def _result(self, text: str, title: str) -> None:
        area = self.query_one("#grpc-result", TextArea)
        area.text = text
        area.border_title = f"reply · {title}"
