"""The Simulator: an HTTP(S) server on 127.0.0.1 that kubectl and the kubernetes client treat as an
API server, plus the fault methods tests and the demo use to break it on purpose."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import secrets
import shutil
import ssl
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any

from kportforward.sim import control
from kportforward.sim.api import Api, not_found, portforward_target, route
from kportforward.sim.faults import Faults, RequestRecord
from kportforward.sim.http import Request, json_response, read_request, response_head
from kportforward.sim.kubeconfig import make_certificate, write_kubeconfig
from kportforward.sim.portforward import PortForwardSession
from kportforward.sim.rules import Rule, denial
from kportforward.sim.state import ClusterState
from kportforward.sim.transport import WS_PROTOCOL, websocket_accept
from kportforward.sim.world import World

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
LOG_LIMIT = 200_000  # request records kept (the most recent)


class Simulator(Faults):
    """A loopback-only stand-in for the Kubernetes API server (see DESIGN.md §6).

    Async: ``await sim.start()`` / ``await sim.stop()`` (or ``async with``). Sync:
    ``with Simulator(w) as sim:`` or ``start_in_thread()`` / ``stop_in_thread()`` run it on its own
    thread and loop. Fault methods are safe to call from any thread.
    """

    def __init__(
        self,
        world: World | None = None,
        *,
        tls: bool = False,
        token: str | None = None,
        port: int = 0,
        server_version: str = "v1.32.4",
        workdir: str | Path | None = None,
        host: str = LOOPBACK,
        context_name: str = "kportforward-sim",
    ) -> None:
        if host != LOOPBACK:
            raise ValueError(f"the simulator listens on {LOOPBACK} only; refusing to bind {host!r}")
        if token and not tls:
            raise ValueError("a token needs tls=True: kubectl sends no credentials over plain http")
        if world is None:
            from kportforward.sim.worlds import demo_world

            world = demo_world()
        self.world = world
        self.tls = tls
        self.token: str | None = token or (secrets.token_urlsafe(24) if tls else None)
        self.host = LOOPBACK
        self.port = port
        self.context_name = context_name
        self.allow_websocket = True  # False: refuse the WebSocket upgrade so kubectl falls back
        self._requested_port = port
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self.workdir: Path | None = None
        self.kubeconfig_path: Path | None = None
        self._state = ClusterState(world)
        self._api = Api(self._state, lambda: f"{self.host}:{self.port}", self._record)
        self._api.version = server_version
        self._gate: asyncio.Event | None = None
        self._rules: list[Rule] = []
        self._next_rule = 1
        # Bounded so a simulator left running for hours (the demo) does not grow without end.
        self._log: deque[RequestRecord] = deque(maxlen=LOG_LIMIT)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._thread: threading.Thread | None = None
        self._cert: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT``."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def server_version(self) -> str:
        """The version ``/version`` reports (it picks the gcloud dispatcher's kubectl)."""
        return self._api.version

    async def start(self) -> None:
        """Bind 127.0.0.1, start every pod's backends and write the kubeconfig."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._gate = asyncio.Event()
        self._gate.set()
        self._api.gate = self._gate
        if self._workdir_arg is not None:
            self.workdir = self._workdir_arg
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="kportforward-sim-"))
        try:
            context = None
            if self.tls:
                cert, key = await asyncio.to_thread(make_certificate, self.workdir)
                self._cert = cert
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(cert, key)
            self._server = await asyncio.start_server(
                self._serve,
                LOOPBACK,
                self._requested_port,
                ssl=context,
                limit=1 << 20,
                backlog=1024,
            )
        except BaseException:
            self._remove_workdir()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        self._state.go_live()
        self.kubeconfig_path = self.write_kubeconfig(self.workdir / "kubeconfig")
        log.info("simulator listening on %s", self.url)

    def write_kubeconfig(self, path: str | Path, *, token: str | None = None) -> Path:
        """Write a kubeconfig for this simulator (one context, ``context_name``) to ``path``;
        ``token`` overrides the simulator's own (e.g. a wrong one, to test credential failures)."""
        return write_kubeconfig(
            Path(path),
            server=self.url,
            context=self.context_name,
            token=token if token is not None else self.token,
            ca_cert=self._cert,
        )

    async def stop(self) -> None:
        """Close the listener, every connection, watch, tunnel and backend."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        if self._gate is not None:
            self._gate.set()
        self._state.close_all()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)
        self._remove_workdir()

    def _remove_workdir(self) -> None:
        # Only a directory we created; a caller's workdir is theirs.
        if self._workdir_arg is None and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self, timeout: float = 30.0) -> Simulator:
        """Run the simulator on a new thread with its own event loop; returns once it listens."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=main, name="kportforward-sim", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the simulator did not start in time")
        if errors:
            self._thread.join(timeout)
            self._thread = None
            raise errors[0]
        return self

    def stop_in_thread(self, timeout: float = 30.0) -> None:
        """Stop a simulator started with :meth:`start_in_thread` and join its thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._thread = None
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> Simulator:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_in_thread()

    # -- serving ---------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                req = await read_request(reader)
                if req is None or not await self._dispatch(req, reader, writer):
                    break
                await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.transport.abort()

    async def _dispatch(
        self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if req.path.startswith(control.PREFIX):
            if self.token and not self._authorized(req):
                writer.write(json_response(401, denial(401, req)))
                return req.keep_alive
            status, body = control.handle(self, req)
            writer.write(json_response(status, body, keep_alive=req.keep_alive))
            return req.keep_alive
        gate = self._gate
        if gate is not None and not gate.is_set():
            await gate.wait()
        if self.token and not self._authorized(req):
            return self._reply(req, writer, 401, denial(401, req))
        for rule in list(self._rules):
            if rule.matches(req):
                return self._reply(req, writer, rule.status, denial(rule.status, req, rule.message))
        pf = portforward_target(req.path)
        if pf is not None:
            return await self._portforward(req, reader, writer, *pf)
        if req.query.get("watch") in ("true", "1") and route(req.path) is not None:
            self._record(req, 200)
            await self._api.handle(req, writer, reader)
            return False  # a watch always ends its connection (see Api._watch)
        if await self._api.handle(req, writer) is None:
            return self._reply(req, writer, 404, denial(404, req))
        return req.keep_alive

    def _authorized(self, req: Request) -> bool:
        given = req.headers.get("authorization", "")
        return secrets.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    def _reply(self, req: Request, writer: asyncio.StreamWriter, status: int, body: Any) -> bool:
        self._record(req, status)
        writer.write(json_response(status, body, keep_alive=req.keep_alive))
        return req.keep_alive

    async def _portforward(
        self,
        req: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        namespace: str,
        name: str,
    ) -> bool:
        if (namespace, name) not in self.world.pods:
            return self._reply(req, writer, 404, not_found("pods", name))
        upgrade = req.headers.get("upgrade", "").lower()
        websocket = req.method == "GET" and upgrade == "websocket" and self.allow_websocket
        if websocket:
            offered = [p.strip() for p in req.headers.get("sec-websocket-protocol", "").split(",")]
            if WS_PROTOCOL not in offered:
                body = denial(400, req, f"no supported subprotocol in {offered}")
                return self._reply(req, writer, 400, body)
            headers = {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Accept": websocket_accept(req.headers.get("sec-websocket-key", "")),
                "Sec-WebSocket-Protocol": WS_PROTOCOL,
            }
        elif req.method == "POST" and upgrade.startswith("spdy/3.1"):
            headers = {
                "Connection": "Upgrade",
                "Upgrade": "SPDY/3.1",
                "X-Stream-Protocol-Version": "portforward.k8s.io",
            }
        else:
            body = denial(400, req, "Upgrade request required")
            return self._reply(req, writer, 400, body)
        self._record(req, 101)
        writer.write(response_head(101, headers))
        state = self._state
        session = PortForwardSession(
            name,
            lambda port: state.resolve(namespace, name, port),
            websocket=websocket,
            hung=self.hung,
            idle_timeout=state.idle_timeout,
        )
        # Hand the connection to the session's protocol, with whatever the stream reader had
        # already buffered (private attribute: asyncio offers no public way to take it back).
        buffered = getattr(reader, "_buffer", b"")
        leftover = bytes(buffered)
        if isinstance(buffered, bytearray):
            buffered.clear()
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        session.attach(transport, leftover)
        state.add_session(namespace, name, session)
        try:
            await session.done
        finally:
            session.close()
            state.remove_session(namespace, name, session)
        return False
