"""Make the README's screenshots: the dashboard saves them itself, running the demo.

Run: .venv/bin/python docs/screenshots/make_screenshots.py [--out docs/screenshots]

Starts exactly what ``kportforward demo`` starts (the simulator with the demo world, the real
kubectl through the real supervisor), opens the dashboard headless at 120x32, waits until every
forward has settled, sends HTTP requests through the details forward's front door for a while
(so its traffic and request log are real), and saves ``dashboard.svg``, ``details.svg``,
``requests.svg`` (``h``), ``help.svg``, ``add.svg`` (the ``a`` screen listing the simulator's
services through the API, two picked; nothing is appended) and ``dashboard-80x24.svg`` (the same
table in a small terminal) with ``App.save_screenshot``. Nothing of the user's kubeconfig or config
is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kportforward.commands.demo import demo_environment
from kportforward.core.config import load_config
from kportforward.core.states import ForwardState
from kportforward.supervisor.supervisor import Supervisor
from kportforward.ui.app import KPortForwardApp, make_app

SIZE = (120, 32)
SETTLED = {ForwardState.RUNNING, ForwardState.FAILED}
PATHS = ("/", "/v1/orders?limit=20", "/v1/orders/42", "/healthz", "/v1/missing", "/v1/cart")


def browse(port: int, stop: threading.Event) -> None:
    """Requests through the door every 50-400 ms until ``stop``, as a user's app would."""
    i = 0
    while not stop.wait(0.05 + (i * 37 % 8) * 0.05):
        url = f"http://127.0.0.1:{port}{PATHS[i % len(PATHS)]}"
        i += 1
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                reply.read()
        except (urllib.error.URLError, OSError):
            pass  # a 404 is part of the picture


async def shoot(app: KPortForwardApp, out: Path, detail: str) -> None:
    async with app.run_test(size=SIZE) as pilot:

        async def wait(predicate: Callable[[], object], timeout: float = 60.0) -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                if time.monotonic() > deadline:
                    states = {n: s.state.value for n, s in app.statuses.items()}
                    raise SystemExit(f"the demo did not settle in time: {states}")
                await pilot.pause(0.1)

        await wait(lambda: app.statuses and all(s.state in SETTLED for s in app.statuses.values()))
        stop = threading.Event()
        port = app.statuses[detail].local_port
        browser = threading.Thread(target=browse, args=(port, stop), daemon=True)
        browser.start()
        await wait(lambda: len(app.fresh_status(detail).probe_latencies) >= 12)  # type: ignore[union-attr]
        await pilot.pause(20.0)  # a third of the traffic sparkline's minute
        app.save_screenshot("dashboard.svg", str(out))
        app.main_screen.table.move_cursor_to(detail)
        await pilot.press("enter")
        await pilot.pause(0.5)
        app.save_screenshot("details.svg", str(out))
        await pilot.press("escape", "h")
        await pilot.pause(0.5)
        app.save_screenshot("requests.svg", str(out))
        stop.set()
        await pilot.press("escape")
        await pilot.pause(0.2)
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        app.save_screenshot("help.svg", str(out))
        await pilot.press("escape")
        await pilot.pause(0.2)
        await pilot.press("a")
        await wait(lambda: "ports in" in str(app.screen.query_one("#add-status").render()))
        await pilot.press("space", "down", "down", "space")
        await pilot.pause(0.3)
        app.save_screenshot("add.svg", str(out))
        await pilot.press("escape")
        await pilot.pause(0.2)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.5)
        app.save_screenshot("dashboard-80x24.svg", str(out))
        await pilot.press("q")
        await wait(lambda: not app.is_running)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--details", default="api-gateway", help="forward for details.svg")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl is needed (the demo runs the real one)")
    with demo_environment() as (_sim, config_path, kubeconfig):
        supervisor = Supervisor(load_config(), kubectl=kubectl, kubeconfig=str(kubeconfig))
        app = make_app(
            supervisor,
            config_path=str(config_path),
            handle_signals=False,
            kubeconfig=str(kubeconfig),
        )
        asyncio.run(shoot(app, out, args.details))
    names = ("dashboard.svg", "details.svg", "requests.svg", "help.svg", "add.svg")
    for name in (*names, "dashboard-80x24.svg"):
        print(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
