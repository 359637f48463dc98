"""Launch to first frame of the dashboard, measured as a person's terminal sees it.

Run: .venv/bin/python benchmarks/e2e_first_frame.py [--runs 7] [--forwards 10]

Each run starts ``python -m kportforward --config C --kubeconfig K`` on a fresh pseudo-terminal
(120x30) against the simulator, and times from just before the process is spawned until the table
header (``NAME``) arrives on the terminal. It also checks the promise behind the figure: the first
frame is drawn before the cluster is contacted (the simulator's first request comes later). Then it
types ``q`` and times the quit until the process has exited, and checks that no kubectl is left.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import psutil

from kportforward.sim import Simulator, generated_world

MARKER = b"NAME"


def write_config(path: Path, n: int, first_port: int) -> None:
    lines = ["portForwards:"]
    for i in range(n):
        lines += [
            f"  svc-{i:03d}:",
            f"    target: service/svc-{i:03d}",
            "    targetPort: 80",
            f"    localPort: {first_port + i}",
            "    type: web",
        ]
    path.write_text("\n".join(lines) + "\n")


def kubectls(kubeconfig: str) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        live = proc.info["status"] != psutil.STATUS_ZOMBIE
        if live and cmd and "kubectl" in cmd[0] and kubeconfig in cmd:
            out.append(proc)
    return out


def one_run(config: Path, sim: Simulator, env: dict[str, str]) -> tuple[float, float, float]:
    """(seconds to first frame, seconds from first frame to first API request, quit seconds)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    sim.clear_log()
    argv = [
        sys.executable,
        "-m",
        "kportforward",
        "--config",
        str(config),
        "--kubeconfig",
        str(sim.kubeconfig_path),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    first_frame_wall = 0.0
    frame = 0.0
    try:
        deadline = start + 30
        while MARKER not in seen:
            if time.perf_counter() > deadline:
                raise SystemExit(f"no first frame within 30 s; got {seen[-400:]!r}")
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                seen += os.read(master, 65536)
        frame = time.perf_counter() - start
        first_frame_wall = time.time()
        # Keep the terminal drained until the cluster has been contacted.
        while not sim.request_log:
            if select.select([master], [], [], 0.05)[0]:
                os.read(master, 65536)
        first_request = min(r.ts for r in sim.request_log)
        time.sleep(0.5)
        quit_start = time.perf_counter()
        os.write(master, b"q")
        while proc.poll() is None:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        proc.wait(30)
        quit_s = time.perf_counter() - quit_start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    left = kubectls(str(sim.kubeconfig_path))
    if left:
        raise SystemExit(f"kubectl left behind: {[p.pid for p in left]}")
    return frame, first_request - first_frame_wall, quit_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--forwards", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kpf-first-frame-") as tmp:
        home = Path(tmp) / "home"
        (home / ".config").mkdir(parents=True)
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "KUBECONFIG": str(home / "kubeconfig-unused"),
            "KUBECACHEDIR": str(Path(tmp) / "kubecache"),
            "TERM": "xterm-256color",
        }
        env.pop("KPORTFORWARD_CONFIG", None)
        sim = Simulator(generated_world(args.forwards))
        sim.start_in_thread()
        try:
            config = Path(tmp) / "config.yaml"
            write_config(config, args.forwards, 31000)
            one_run(config, sim, env)  # warm the OS file cache and kubectl's discovery cache
            frames, leads, quits = [], [], []
            for _ in range(args.runs):
                frame, lead, quit_s = one_run(config, sim, env)
                frames.append(frame)
                leads.append(lead)
                quits.append(quit_s)
        finally:
            sim.stop_in_thread()
    print(f"kportforward first frame, {args.forwards} forwards, 120x30 pty, {args.runs} runs")
    print(
        f"  launch -> first frame: median {statistics.median(frames):.3f} s, "
        f"min {min(frames):.3f} s, max {max(frames):.3f} s (target <= 0.7 s)"
    )
    print(
        f"  first frame drawn before the first API request in {sum(x > 0 for x in leads)}/"
        f"{len(leads)} runs (median lead {statistics.median(leads) * 1000:.0f} ms)"
    )
    print(
        f"  q -> process exited: median {statistics.median(quits):.3f} s, max {max(quits):.3f} s;"
        " no kubectl left"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
