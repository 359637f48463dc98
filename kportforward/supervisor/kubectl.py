"""One ``kubectl port-forward`` process: argv, spawn, output parsing, and the stop sequence.

Facts relied on (shared/notes/kubectl-port-forward.md): readiness is the stdout line
``Forwarding from 127.0.0.1:PORT -> N``; every accepted local connection prints
``Handling connection for PORT``; failures are one ``error: …`` or ``Error from server …`` line on
stderr, exit 1; SIGINT makes kubectl exit 0. With ``-v=6`` kubectl logs each API request, which is
how we learn the pod it forwards to (``…/pods/<name>/portforward``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from kportforward.core.models import ForwardSpec
from kportforward.logs import redact
from kportforward.platform import Platform, StopStep, current
from kportforward.platform.guard import OrphanGuard, default_guard
from kportforward.platform.posix import pdeathsig_preexec, setpriv_path
from kportforward.supervisor.reclaim import FORWARD_ENV, owner_marker

log = logging.getLogger(__name__)

LOG_LINES = 300
"""Lines of kubectl output kept per forward."""

_READY = re.compile(r"^Forwarding from (\S+):(\d+) -> (\S+)")
_HANDLING = "Handling connection for "
_POD_PF = re.compile(r"/namespaces/([^/\s\"]+)/pods/([^/\s\"?]+)/portforward")
_POD_GET = re.compile(r"\bGET \S*/namespaces/([^/\s\"]+)/pods/([^/\s\"?]+)[\s\"]+200")
_KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+\] ")


class Failure(str, enum.Enum):  # noqa: UP042 - like ForwardState
    """What a kubectl exit means for the forward."""

    RETRY = "retry"
    """Transient (lost connection, pod not running, no pods yet): back off and retry."""
    FATAL = "fatal"
    """Retrying cannot fix it (NotFound, Forbidden, no such service port)."""
    AUTH = "auth"
    """The cluster rejected the credentials."""
    NETWORK = "network"
    """The API server could not be reached."""
    PORT = "port"
    """The local port could not be bound."""
    UNKNOWN = "unknown"
    """kubectl exited for a reason nothing here recognises: back off all the way."""
    REFUSED = "refused"
    """Nothing listens on the target port in the pod (kubectl dies of one refused connection)."""


@dataclass(frozen=True, slots=True)
class Classification:
    """A kubectl exit, classified: the kind of failure and a human reason."""

    failure: Failure
    reason: str
    message: str
    """kubectl's own words (its last error line), or the reason when it said nothing."""


# kubectl's line when a connection through the tunnel found nothing listening in the pod (it then
# exits with "lost connection to pod"): "an error occurred forwarding 18080 -> 9000: … connect:
# connection refused" (or an EOF from the far side).
_FORWARD_ERROR = r"an error occurred forwarding \d+ -> \d+"
_FORWARD_ERROR_RE = re.compile(_FORWARD_ERROR)
_CLASSIFY_CHARS = 4096
"""Only this much of each line is classified: kubectl's real error lines are short, and a
regex over megabytes of one line would block the event loop."""

# (pattern, failure, reason) — first match wins, tried against the error lines, newest first.
_RULES: tuple[tuple[re.Pattern[str], Failure, str], ...] = tuple(
    (re.compile(p, re.I), f, r)
    for p, f, r in (
        (r"unable to listen on|unable to create listener", Failure.PORT, "local port busy"),
        (_FORWARD_ERROR, Failure.REFUSED, "nothing listens in the pod"),
        (
            r"must be logged in|provide credentials|Unauthorized",
            Failure.AUTH,
            "credentials rejected",
        ),
        (r"getting credentials|exec plugin", Failure.AUTH, "credential plugin failed"),
        (r"error upgrading connection: .*forbidden", Failure.FATAL, "forbidden"),
        (r"\(Forbidden\)|is forbidden", Failure.FATAL, "forbidden"),
        (r"error upgrading connection: .*not found", Failure.RETRY, "pod went away"),
        (r"\(NotFound\)", Failure.FATAL, "not found"),
        (r"does not have a service port|does not have a named port", Failure.FATAL, "no such port"),
        (
            r"context \S+ does not exist|context was not found|no configuration has been provided|"
            r"invalid configuration|error loading config file|Error in configuration|^error: stat ",
            Failure.FATAL,
            "kubeconfig problem",
        ),
        (r"^setpriv: failed to execute", Failure.FATAL, "cannot run kubectl"),
        (r"lost connection to pod", Failure.RETRY, "lost connection to pod"),
        (r"pod is not running", Failure.RETRY, "pod not running"),
        (r"timed out waiting for the condition", Failure.RETRY, "no running pod"),
        (
            r"connection to the server .* was refused|Unable to connect to the server|"
            r"connect: connection refused|no such host|i/o timeout|TLS handshake timeout|"
            r"network is unreachable|no route to host|couldn't get current server API group list",
            Failure.NETWORK,
            "cluster unreachable",
        ),
    )
)


_POD_NOT_FOUND = re.compile(r'\(NotFound\): pods "')


def classify(
    lines: list[str] | tuple[str, ...], returncode: int | None, *, pod_target: bool = True
) -> Classification:
    """Classify a kubectl exit from its stderr lines (oldest first) and exit code.

    ``pod_target`` is False when the forward targets a service or workload: then a NotFound for
    the *pod* kubectl picked means that pod was replaced between kubectl's list and its get (every
    rolling update), which a retry fixes; the target itself missing stays fatal.
    """
    # kubectl's own error lines first; its klog "E…" lines only when it printed nothing else.
    lines = [ln[:_CLASSIFY_CHARS] for ln in lines]
    refused = [ln for ln in lines if _FORWARD_ERROR_RE.search(ln)]
    if refused:  # the cause; the "lost connection to pod" after it is only the consequence
        text = _clean(refused[-1])
        text = text[text.find("an error occurred forwarding") :].rstrip('"')
        return Classification(Failure.REFUSED, "nothing listens in the pod", text)
    errors = [ln for ln in lines if ln and not _KLOG.match(ln)]
    if not errors:
        errors = [ln for ln in lines if ln.startswith("E") and _KLOG.match(ln)]
    for line in reversed(errors):
        if not pod_target and _POD_NOT_FOUND.search(line):
            return Classification(Failure.RETRY, "pod went away", _clean(line))
        for pattern, failure, reason in _RULES:
            if pattern.search(line):
                return Classification(failure, reason, _clean(line))
    if errors:
        return Classification(Failure.UNKNOWN, "kubectl exited", _clean(errors[-1]))
    if returncode is not None and returncode < 0:
        with contextlib.suppress(ValueError):
            name = signal.Signals(-returncode).name
            return Classification(Failure.RETRY, f"kubectl killed by {name}", f"killed by {name}")
    text = f"kubectl exited with code {returncode}"
    return Classification(Failure.UNKNOWN, "kubectl exited", text)


def _clean(line: str) -> str:
    line = _KLOG.sub("", line).strip()
    return redact(line)[:500]


def build_argv(
    kubectl: str,
    spec: ForwardSpec,
    local_port: int,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    verbose: bool = True,
    address: str | None = None,
) -> list[str]:
    """The argv for one forward (never a shell). ``-v=6`` makes kubectl name the pod it uses.
    ``address`` overrides the spec's: behind a front door kubectl listens on loopback only."""
    argv = [kubectl, "port-forward", "--address", address or spec.address]
    ctx = spec.context or context
    if ctx:
        argv += ["--context", ctx]
    kc = spec.kubeconfig or kubeconfig
    if kc:
        argv += ["--kubeconfig", os.path.expanduser(kc)]
    if spec.namespace:
        argv += ["-n", spec.namespace]
    if verbose:
        argv.append("-v=6")
    argv += [spec.target, f"{local_port}:{spec.target_port}"]
    return argv


def _setpriv() -> str | None:
    """util-linux ``setpriv`` if it can set a parent-death signal (Linux only)."""
    return setpriv_path()


def pdeathsig_argv(argv: list[str]) -> tuple[list[str], Callable[[], None] | None]:
    """``argv`` wrapped so Linux SIGKILLs the child when our (event-loop) thread dies.

    ``setpriv --pdeathsig KILL -- kubectl …`` execs kubectl in place (same pid), and lets Python
    spawn with vfork: about 0.4 ms of CPU per spawn instead of the ~4 ms a ``preexec_fn`` costs
    (it forces a full fork of the whole supervisor), with the event loop blocked meanwhile.
    Without setpriv, a ``preexec_fn`` calling prctl(PR_SET_PDEATHSIG) does the same job. (The
    platform layer, ``kportforward/platform/posix.py``, owns this; kept here for callers.)
    """
    setpriv = _setpriv()
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "KILL", "--", *argv], None
    return argv, _pdeathsig_preexec()


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGKILL the child when our (event-loop) thread dies."""
    return pdeathsig_preexec()


class _Protocol(asyncio.SubprocessProtocol):
    """Splits stdout/stderr into lines and hands them to the process; no reader tasks needed."""

    def __init__(self, proc: KubectlProcess) -> None:
        self._proc = proc
        self._partial = {1: b"", 2: b""}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buf = self._partial.get(fd, b"") + data
        *lines, rest = buf.split(b"\n")
        self._partial[fd] = rest[-65536:]
        for raw in lines:
            self._proc._line(fd, raw.decode("utf-8", "replace").rstrip("\r"))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        rest = self._partial.pop(fd, b"")
        if rest:
            self._proc._line(fd, rest.decode("utf-8", "replace"))

    def connection_lost(self, exc: Exception | None) -> None:
        # Called once the process has exited *and* both pipes are drained, so the last error
        # line is always in hand before anyone classifies the exit.
        self._proc._exited()


class KubectlProcess:
    """A running ``kubectl port-forward``: readiness, connection count, pod, output, exit."""

    def __init__(self, log_lines: deque[str] | None = None) -> None:
        self.pid: int | None = None
        self.ready = asyncio.Event()
        self.ready_port: int | None = None
        self.connections = 0
        self.forward_errors = 0
        """Connections kubectl could not forward (nothing listening in the pod)."""
        self.pod: str | None = None
        self.pod_namespace: str | None = None
        self.errors: list[str] = []
        """stderr lines that are not debug request logs (for classification)."""
        self.lines: deque[str] = log_lines if log_lines is not None else deque(maxlen=LOG_LINES)
        self.started = time.monotonic()
        self.ready_after: float | None = None
        """Seconds from spawn to the readiness line."""
        self.on_change: Callable[[], None] | None = None
        """Called (in the loop) on readiness and on a change of pod."""
        self._transport: asyncio.SubprocessTransport | None = None
        self._exit: asyncio.Future[int] | None = None
        self._platform: Platform = current()
        self._guard: OrphanGuard | None = None

    @classmethod
    async def spawn(
        cls,
        argv: list[str],
        *,
        forward: str,
        env: dict[str, str] | None = None,
        log_lines: deque[str] | None = None,
        platform: Platform | None = None,
        guard: OrphanGuard | None = None,
    ) -> KubectlProcess:
        """Start kubectl in its own process group (session on POSIX), from the loop thread.

        On Linux with a parent-death signal; on every platform registered with the orphan guard
        (``guard``, default the process-wide one: the watchdog, and a Job Object on Windows),
        which forgets it again once it has exited.
        """
        loop = asyncio.get_running_loop()
        proc = cls(log_lines)
        proc._platform = platform or current()
        proc._exit = loop.create_future()
        child_env = dict(os.environ if env is None else env)
        child_env.update(owner_marker())  # who we are, provably: reclaim trusts only this
        child_env[FORWARD_ENV] = forward
        options = proc._platform.spawn_options(argv, child_env)
        transport, _ = await loop.subprocess_exec(
            lambda: _Protocol(proc),
            *options.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env,
            close_fds=True,
            **options.kwargs,
        )
        proc._transport = transport
        proc.pid = transport.get_pid()
        proc._note(f"spawned pid {proc.pid}: {' '.join(argv[1:])}")
        proc._register(guard or default_guard(), forward)
        return proc

    def _register(self, guard: OrphanGuard, forward: str) -> None:
        if self.pid is None:
            return
        try:
            guard.register(self.pid, group=True, label=f"kubectl:{forward}")
        except Exception:  # the guard must never cost us the forward
            log.warning("orphan guard: could not register pid %s", self.pid, exc_info=True)
            return
        self._guard = guard
        if self.exited:  # it died before we got here: do not leave it registered
            guard.unregister(self.pid)

    @property
    def returncode(self) -> int | None:
        """The exit code once kubectl has exited (negative: killed by that signal)."""
        return None if self._transport is None else self._transport.get_returncode()

    @property
    def exited(self) -> bool:
        """True once the exit has been observed."""
        return self._exit is not None and self._exit.done()

    async def wait(self) -> int:
        """Wait for kubectl to exit (observed at once, not polled); its exit code."""
        assert self._exit is not None
        return await asyncio.shield(self._exit)

    def add_exit_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` in the loop once kubectl has exited and its output is drained."""
        assert self._exit is not None
        self._exit.add_done_callback(lambda _f: callback())

    def classify(self, *, pod_target: bool = True) -> Classification:
        """Why kubectl exited, from what it printed (see :func:`classify`)."""
        return classify(self.errors, self.returncode, pod_target=pod_target)

    def _note(self, text: str) -> None:
        self.lines.append(f"{time.strftime('%H:%M:%S')} [kportforward] {text}")

    def _line(self, fd: int, text: str) -> None:
        if not text:
            return
        if fd == 1:
            if text.startswith(_HANDLING):
                # Counted, not kept: our own probes would flush everything else out of the ring.
                self.connections += 1
                return
            self.lines.append(f"{time.strftime('%H:%M:%S')} {text}")
            if not self.ready.is_set() and (m := _READY.match(text)):
                self.ready_port = int(m.group(2))
                self.ready_after = time.monotonic() - self.started
                self.ready.set()
                if self.on_change:
                    self.on_change()
            return
        self.lines.append(f"{time.strftime('%H:%M:%S')} {redact(text)}")
        if _KLOG.match(text):
            m = _POD_PF.search(text) or _POD_GET.search(text)
            if m and (m.group(1), m.group(2)) != (self.pod_namespace, self.pod):
                self.pod_namespace, self.pod = m.group(1), m.group(2)
                if self.on_change and self.ready.is_set():
                    self.on_change()
            if text.startswith("E"):
                self.errors.append(text[:_CLASSIFY_CHARS])
                if _FORWARD_ERROR_RE.search(text[:_CLASSIFY_CHARS]):
                    self.forward_errors += 1
        else:
            self.errors.append(text[:_CLASSIFY_CHARS])
        del self.errors[:-20]

    def _exited(self) -> None:
        if self._exit is not None and not self._exit.done():
            code = self.returncode
            self._exit.set_result(-1 if code is None else code)
            self._note(f"kubectl exited with code {code}")
        if self._transport is not None:
            self._transport.close()  # closes the pipes: no fd left behind
        if self._guard is not None and self.pid is not None:
            self._guard.unregister(self.pid)

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to kubectl's whole process group, unless it has already exited.

        On Windows, SIGINT becomes CTRL_BREAK_EVENT and anything else TerminateProcess.
        """
        if self.pid is None or self.exited:
            return
        plan = self._platform.stop_plan()
        step = next((s for s in plan if s.signal == sig), None)
        if step is None:
            step = StopStep("kill", sig, signal.Signals(sig).name, None, True)
            if self._platform.name == "win32":
                step = plan[-1]
        self._platform.signal(self.pid, step)

    async def stop(self, interrupt_wait: float = 1.0, term_wait: float = 0.5) -> int:
        """The platform's stop plan, gentlest first, each step waiting for the exit; returns the
        exit code. POSIX: SIGINT → SIGTERM → SIGKILL to the group; Windows: CTRL_BREAK_EVENT →
        TerminateProcess on kubectl and its children."""
        for step in self._platform.stop_plan(interrupt_wait, term_wait):
            if self.exited or self.pid is None:
                break
            self._platform.signal(self.pid, step)
            if step.wait is None:
                await self.wait()
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wait(), step.wait)
        return self.returncode if self.returncode is not None else -1

    def kill(self) -> None:
        """The plan's forced step now (the forced path of a second Ctrl-C): SIGKILL to the group,
        or TerminateProcess on Windows."""
        if self.pid is None or self.exited:
            return
        self._platform.signal(self.pid, self._platform.stop_plan()[-1])
