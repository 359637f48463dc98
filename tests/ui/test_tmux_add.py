"""As a person: ``a`` in the real dashboard lists the simulator's services, two are picked, the
config file gains exactly the appended block, and the new forwards start through the reload."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

from kportforward.core.config import load_config
from kportforward.core.config_append import NewForward, block_to_append
from kportforward.sim import Simulator
from tests.ui.test_app_real import free_ports, world
from tests.ui.test_tmux import Terminal, _require_tmux, gone, kubectls_using


def test_add_two_services_from_the_cluster(kubectl: str, tmp_path: Path) -> None:
    tmux = _require_tmux()
    sim = Simulator(world())  # default: web (80), grpc (9090); payments: api (80)
    sim.start_in_thread()
    term: Terminal | None = None
    try:
        web, api = free_ports(2)
        config = tmp_path / "config.yaml"
        original = (
            "# my own forwards; this comment and the layout below must survive\n"
            "uiOptions:\n  refreshRate: 100ms\n"
            "portForwards:\n"
            f"    web:\n        target: service/web\n        targetPort: 80\n"
            f"        localPort: {web}\n        type: web\n"
            f"    api:\n        target: service/api\n        targetPort: 80\n"
            f"        localPort: {api}\n        namespace: payments\n        type: rest\n"
        )
        config.write_text(original)
        argv = [
            sys.executable,
            str(Path(__file__).with_name("run_in_terminal.py")),
            sys.executable, "-m", "kportforward",
            "--config", str(config),
            "--kubeconfig", str(sim.kubeconfig_path),
            "--kubectl", kubectl,
        ]  # fmt: skip
        # The a screen reads the API through the user's kubeconfig ($KUBECONFIG), as a person's
        # shell would have it; --kubeconfig reaches it too once the dashboard command passes it.
        term = Terminal(tmux, tmp_path, argv, env={"KUBECONFIG": str(sim.kubeconfig_path)})
        term.wait_screen(lambda s: "2/2 running" in s, what="both forwards Running")
        term.keys("Down")  # web, in namespace default
        term.keys("a")
        screen = term.wait_screen(
            lambda s: "ports in" in s and "grpc" in s, what="the services of namespace default"
        )
        assert "namespace default" in screen and "Add forwards" in screen
        term.keys("Space", "Down", "Space")  # grpc 9090, web 80
        screen = term.wait_screen(lambda s: "web-2  service/web:80" in s, what="the preview")
        assert "grpc  service/grpc:9090 → localhost:9090  rpc" in screen
        term.keys("C-s")
        term.wait_screen(lambda s: "NAME" in s and "Add forwards" not in s, what="back")
        term.wait_screen(lambda s: "4/4 running" in s, timeout=60, what="all four Running")

        after = config.read_text()
        assert after.startswith(original)
        appended = after[len(original) :]
        comment = re.match(r"    # (Added by kportforward on .*)\n", appended)
        assert comment is not None, appended
        names = {s.name: s for s in load_config(str(config)).forwards}
        expected = [
            NewForward("grpc", "service/grpc", 9090, names["grpc"].local_port, "default", "rpc"),
            NewForward("web-2", "service/web", 80, names["web-2"].local_port, "default", "web"),
        ]
        assert appended == block_to_append(original, str(config), expected, comment.group(1))
        assert len(kubectls_using(sim.kubeconfig_path)) == 4  # type: ignore[arg-type]
        term.keys("q")
        term.wait_screen(lambda s: "EXIT=0" in s, what="exit 0")
    finally:
        if term is not None:
            term.kill_server()
            for pid in (term.pid, term.wrapper):  # only processes this test started
                if not gone(pid):
                    os.kill(pid, signal.SIGKILL)
        for proc in kubectls_using(sim.kubeconfig_path):  # type: ignore[arg-type]
            proc.kill()
        sim.stop_in_thread()
