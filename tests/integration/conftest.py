"""Shared integration fixtures: simulators and the real kubectl port-forwarding through them.

- ``sim``: a started :class:`~kportforward.sim.Simulator` on the demo world (thread API), stopped
  after the test.
- ``sim_factory(world=None, **kwargs)``: more simulators (a second cluster, TLS, a generated world).
- ``port_forward(sim, target, remote, ...)``: runs ``kubectl port-forward --address 127.0.0.1
  --kubeconfig sim.kubeconfig_path`` (argv, no shell), waits for the ``Forwarding from`` line and is
  always killed at teardown. Returns a :class:`PortForward`.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from kportforward.sim import Simulator, World, demo_world

FORWARDING = re.compile(r"^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


class PortForward:
    """A running ``kubectl port-forward`` and what it has printed (read by background threads)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self.local_port: int | None = None
        self._ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream, is_stdout: bool) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            line = line.rstrip("\n")
            (self.stdout_lines if is_stdout else self.stderr_lines).append(line)
            m = FORWARDING.match(line) if is_stdout else None
            if m and self.local_port is None:
                self.local_port = int(m.group(1))
                self._ready.set()
        if is_stdout:
            self._ready.set()  # EOF: stop waiting, the process is gone

    @property
    def stdout(self) -> str:
        """Everything kubectl printed on stdout so far."""
        return "\n".join(self.stdout_lines)

    @property
    def stderr(self) -> str:
        """Everything kubectl printed on stderr so far."""
        return "\n".join(self.stderr_lines)

    def wait_ready(self, timeout: float = 30) -> int:
        """Wait for ``Forwarding from 127.0.0.1:P``; returns P (fails with kubectl's stderr)."""
        self._ready.wait(timeout)
        if self.local_port is None:
            self.kill()
            self.join_output()
            raise AssertionError(
                f"kubectl never said 'Forwarding from' (exit {self.proc.returncode}):\n"
                f"stdout: {self.stdout}\nstderr: {self.stderr}"
            )
        return self.local_port

    def wait_exit(self, timeout: float = 30) -> int:
        """Wait for kubectl to exit by itself; returns the exit code, output fully read."""
        code = self.proc.wait(timeout)
        self.join_output()
        return code

    def join_output(self, timeout: float = 5) -> None:
        """Wait until both output pipes are drained."""
        for t in self._threads:
            t.join(timeout)

    def wait_for_stderr(self, pattern: str, timeout: float = 30) -> str:
        """Poll until a stderr line matches ``pattern`` (re.search); returns the line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr_lines):
                if re.search(pattern, line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no stderr line matched {pattern!r}; stderr:\n{self.stderr}")

    def alive(self) -> bool:
        """Whether kubectl is still running."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL kubectl (only this process, which we started) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def connect(self, timeout: float = 10) -> socket.socket:
        """A TCP connection to the forwarded local port."""
        assert self.local_port is not None, "not forwarding yet"
        return socket.create_connection(("127.0.0.1", self.local_port), timeout=timeout)

    def echo(self, data: bytes, timeout: float = 30) -> bytes:
        """Send ``data`` through the tunnel, half-close, and return all bytes that come back."""
        return echo_through(self.local_port or 0, data, timeout)

    def http_get(self, path: str = "/", timeout: float = 10) -> str:
        """One HTTP GET through the tunnel; returns the response body."""
        with self.connect(timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n".encode())
            data = _read_all(s)
        return data.split(b"\r\n\r\n", 1)[-1].decode()


def _read_all(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def echo_through(port: int, data: bytes, timeout: float = 30) -> bytes:
    """Send ``data`` to 127.0.0.1:``port`` from a thread while reading; half-close; return echo."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:

        def send() -> None:
            # A connection cut meanwhile (a killed kubectl) shows in what the reader gets.
            with contextlib.suppress(OSError):
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        got = _read_all(s)
        sender.join(timeout)
    return got


def small_world() -> World:
    """One namespace, one of each target kind, echo and http backends, a named port."""
    w = World(seed=1)
    w.add_deployment("echo", ports=[{"name": "tcp", "containerPort": 7000, "backend": "echo"}])
    w.add_service("echo", ports=[{"name": "tcp", "port": 7000, "targetPort": "tcp"}])
    w.add_app("web", port=80, target_port=8080, port_name="http")
    w.add_statefulset("db", ports=[{"name": "db", "containerPort": 5432}])
    w.add_pod("solo", labels={"app": "solo"}, ports=[7000])
    return w


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Simulator]]:
    """Make started simulators (thread API): ``sim_factory(world=None, **Simulator kwargs)``.
    ``world=None`` gives the demo world. All are stopped after the test."""
    sims: list[Simulator] = []

    def make(world: World | None = None, **kwargs: object) -> Simulator:
        sim = Simulator(world if world is not None else demo_world(), **kwargs)  # type: ignore[arg-type]
        sim.start_in_thread()
        sims.append(sim)
        return sim

    yield make
    for sim in reversed(sims):
        sim.stop_in_thread()


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A started simulator on the demo world."""
    return sim_factory()


@pytest.fixture
def port_forward(kubectl: str) -> Iterator[Callable[..., PortForward]]:
    """Start ``kubectl port-forward`` against a simulator; every process is killed at teardown.

    ``port_forward(sim, target, remote, *, namespace="default", local=0, extra=(), env=None,
    wait=True, timeout=30)``: ``target`` like ``service/web``; ``remote`` the port (or name);
    ``env`` entries are added to the test's environment; ``wait=False`` returns at once (for
    failure cases: then use ``wait_exit``).
    """
    started: list[PortForward] = []

    def start(
        sim: Simulator,
        target: str,
        remote: int | str,
        *,
        namespace: str = "default",
        local: int = 0,
        extra: Sequence[str] = (),
        env: dict[str, str] | None = None,
        wait: bool = True,
        timeout: float = 30,
        kubeconfig: str | Path | None = None,
    ) -> PortForward:
        argv = [
            kubectl,
            "port-forward",
            "--address",
            "127.0.0.1",
            "--kubeconfig",
            str(kubeconfig or sim.kubeconfig_path),
            "-n",
            namespace,
            *extra,
            target,
            f"{local}:{remote}",
        ]
        pf = PortForward(argv, {**os.environ, **(env or {})})
        started.append(pf)
        if wait:
            pf.wait_ready(timeout)
        return pf

    yield start
    for pf in started:
        pf.kill()
        pf.join_output()
