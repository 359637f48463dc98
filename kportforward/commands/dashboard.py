"""``kportforward`` (no subcommand) and ``kportforward dashboard``: the Textual dashboard.

Everything that can be wrong with the input (config, kubectl, kubeconfig) is checked before the UI
starts, so it is reported as one line with exit 2 on a normal terminal. Nothing here contacts the
cluster: the supervisor starts inside the app after its first frame is drawn.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def build_supervisor(config: Any, args: argparse.Namespace, kubectl: str) -> Any:
    """The real supervisor for ``config``, watching the config files for changes."""
    from kportforward.cliux import forward_filter
    from kportforward.supervisor.supervisor import Supervisor

    return Supervisor(
        config,
        kubectl=kubectl,
        kubeconfig=getattr(args, "kubeconfig", None),
        config_path=getattr(args, "config", None),
        watch_config=True,
        remote_defaults=getattr(args, "remote_defaults", None),
        select=forward_filter(args),
    )


def run_dashboard(
    supervisor: Any,
    *,
    config_path: str,
    config_arg: str | None,
    last_resort: Callable[[], None] | None = None,
    webuis: Any = None,
    kubeconfig: str | None = None,
    select: Callable[[Any], Any] | None = None,
) -> int:
    """Run the app over ``supervisor`` until the user quits; returns the exit code.

    ``last_resort`` runs if the quit deadline has to end the process (e.g. the demo removes its
    temporary files); it must be quick and must not block.
    """
    from kportforward.ui.app import make_app

    app = make_app(
        supervisor,
        config_path=config_path,
        config_arg=config_arg,
        exit_deadline=ExitDeadline(last_resort),
        webuis=webuis,
        kubeconfig=kubeconfig,
        select=select,
    )
    register = getattr(supervisor, "set_stop_handler", None)
    if register is not None:  # a control client's `shutdown` quits the dashboard as `q` does
        register(lambda: app.call_later(app.action_quit))
    app.run()
    return int(app.return_code or 0)


def main(args: argparse.Namespace) -> int:
    """Load and check the config, kubectl and kubeconfig, then open the dashboard."""
    from kportforward.cliux import forward_filter
    from kportforward.commands.checkenv import find_kubectl, verify_kubectl
    from kportforward.commands.run import make_webuis
    from kportforward.commands.startup import check_startable
    from kportforward.control.instance import claim, serve
    from kportforward.control.paths import paths_for, read_info
    from kportforward.core.config import load_config, user_config_path

    config_arg = getattr(args, "config", None)
    config_path = str(config_arg or user_config_path())
    if read_info(paths_for(config_arg, create=False).lock) is not None:
        return attach(config_path=config_path, config_arg=config_arg)
    config = load_config(config_arg)
    if (select := forward_filter(args)) is not None:  # --context / -n
        config = select(config)
    kubectl = find_kubectl(getattr(args, "kubectl", None))
    # Forwards that cannot run show as Failed rows with the reason; none at all is exit 2.
    check_startable(config, getattr(args, "kubeconfig", None))
    verify_kubectl(kubectl)
    lock = claim(config_arg, mode="dashboard")
    try:
        supervisor = serve(build_supervisor(config, args, kubectl), lock, config_arg)
        log.info("dashboard: %d forwards, config %s", len(config.forwards), config_path)
        return run_dashboard(
            supervisor,
            config_path=config_path,
            config_arg=config_arg,
            webuis=make_webuis(args),
            kubeconfig=getattr(args, "kubeconfig", None),
            select=forward_filter(args),
        )
    finally:
        lock.release()


def attach(*, config_path: str, config_arg: str | None) -> int:
    """The dashboard over the instance already running on this config; quitting detaches."""
    from kportforward.control.client import NotRunningError, connect
    from kportforward.control.remote import RemoteSupervisor

    found = connect(config_arg)  # waits a little for an instance that is still starting
    if found is None:
        raise NotRunningError(
            "an instance holds the lock but does not answer on its socket",
            "wait a moment (it may be starting or stopping) and try again",
        )
    found[0].close()
    try:
        remote = RemoteSupervisor.probe(found[1].socket)
    except (OSError, ConnectionError) as exc:
        raise NotRunningError(f"the running instance went away: {exc}", "try again") from None
    log.info("dashboard: attached to pid %d", remote.pid)
    code = run_dashboard(remote, config_path=config_path, config_arg=config_arg)
    if remote.stopped_instance:
        print(f"kportforward: stopped the instance (pid {remote.pid})", file=sys.stderr)
    elif remote.lost:
        print("kportforward: the instance stopped", file=sys.stderr)
    elif remote.detached:
        print(
            f"kportforward: detached; the forwards keep running in pid {remote.pid} "
            "(`kportforward status`; `kportforward stop --instance` stops them)",
            file=sys.stderr,
        )
    return code


class ExitDeadline:
    """Ends the process at a deadline if the dashboard's polite quit has not finished by then.

    A terminal that went away (SIGHUP) can leave Textual's teardown blocked on writes forever; the
    supervisor's kubectl children carry a parent-death signal, so ending the process ends them too.
    """

    def __init__(self, last_resort: Callable[[], None] | None = None) -> None:
        self._last_resort = last_resort
        self._due = float("inf")
        self._timer: threading.Timer | None = None
        self._tty_attrs: list[Any] | None = None
        if sys.platform != "win32":  # no termios on Windows
            with contextlib.suppress(Exception):  # no tty
                import termios

                self._tty_attrs = termios.tcgetattr(sys.stdin.fileno())

    def __call__(self, seconds: float) -> None:
        """Make sure the process ends within ``seconds`` from now (an earlier deadline wins)."""
        due = time.monotonic() + seconds
        if due >= self._due:
            return
        self._due = due
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        log.warning("dashboard did not finish quitting in time; exiting now")
        self._restore_terminal()
        if self._last_resort is not None:
            with contextlib.suppress(Exception):
                self._last_resort()
        logging.shutdown()
        os._exit(0)

    def _restore_terminal(self) -> None:
        # Best effort, never blocking: the terminal may be gone or not reading.
        with contextlib.suppress(Exception):
            fd = sys.stdout.fileno()
            if sys.platform != "win32":
                os.set_blocking(fd, False)
            os.write(fd, b"\x1b[?1000l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?25h\x1b[?1049l")
        if sys.platform != "win32" and self._tty_attrs is not None:
            with contextlib.suppress(Exception):
                import termios

                termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, self._tty_attrs)
