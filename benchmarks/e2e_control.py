"""Client commands against a running instance, timed as whole processes (with interpreter start).

    .venv/bin/python benchmarks/e2e_control.py [--runs 20] [--forwards 5]

Starts the simulator (``generated_world(N)``) in this process and ``kportforward run`` on N
forwards in a child, waits until every forward is Running, then times ``kportforward status
--json`` and ``kportforward wait --all`` (already verified) ``--runs`` times each from spawn to
exit, and ``python -c pass`` for the interpreter's own share. It also samples the instance's CPU
time over an idle stretch with 20 clients subscribed and with none. Prints min / median / max.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from kportforward.control.client import Client
from kportforward.control.paths import find_instance
from kportforward.sim import Simulator, generated_world


def timed(argv: list[str], runs: int) -> list[float]:
    """Wall seconds of each run of ``argv`` (output discarded)."""
    out = []
    for _ in range(runs + 1):  # the first is a warm-up
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - start)
    return out[1:]


def show(label: str, xs: list[float]) -> None:
    """One figure row in milliseconds."""
    print(f"{label:<34} min {min(xs) * 1000:6.1f}  median {statistics.median(xs) * 1000:6.1f}"
          f"  max {max(xs) * 1000:6.1f} ms  (n={len(xs)})")  # fmt: skip


def cpu_over(proc: psutil.Process, seconds: float) -> float:
    """CPU seconds ``proc`` used during ``seconds`` of wall time."""
    before = proc.cpu_times()
    time.sleep(seconds)
    after = proc.cpu_times()
    return (after.user + after.system) - (before.user + before.system)


def main() -> int:
    """Run the measurement; 0, or 1 if the instance never became ready."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--forwards", type=int, default=5)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds per idle sample")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kpfb"))
    os.environ["XDG_RUNTIME_DIR"] = str(work)
    sim = Simulator(generated_world(args.forwards))
    sim.start_in_thread()
    config = work / "kpf.yaml"
    forwards = {f"f{i}": {"target": f"service/svc-{i:03d}", "targetPort": 9000, "localPort": 0,
                          "namespace": "default"} for i in range(args.forwards)}  # fmt: skip
    for i, spec in enumerate(forwards.values()):
        spec["localPort"] = 42000 + i
    config.write_text(yaml.safe_dump({"portForwards": forwards, "monitoringInterval": "1s"}))
    kpf = [sys.executable, "-m", "kportforward", "--config", str(config)]
    run = subprocess.Popen([*kpf, "--kubeconfig", str(sim.kubeconfig_path), "run"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while find_instance(str(config)) is None and time.monotonic() < deadline:
            time.sleep(0.05)  # `run` takes the lock once its config is loaded
        ready = subprocess.run([*kpf, "wait", "--timeout", "60s"], capture_output=True, text=True)
        if ready.returncode != 0:
            print("instance never ready:", ready.stderr)
            return 1
        print(f"{args.forwards} forwards Running; {args.runs} runs each after one warm-up")
        show("python -c pass", timed([sys.executable, "-c", "pass"], args.runs))
        show("kportforward status --json", timed([*kpf, "status", "--json"], args.runs))
        show("kportforward wait (verified)", timed([*kpf, "wait", "--timeout", "5s"], args.runs))
        proc = psutil.Process(run.pid)
        idle = cpu_over(proc, args.idle)
        info = find_instance(str(config))
        assert info is not None
        clients = [Client(info.socket) for _ in range(20)]
        for c in clients:
            c.call("subscribe")
        busy = cpu_over(proc, args.idle)
        for c in clients:
            c.close()
        print(f"instance CPU over {args.idle:g} s: {idle:.3f} s with no client, "
              f"{busy:.3f} s with 20 subscribed clients (probes run in both)")  # fmt: skip
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(30)
        sim.stop_in_thread()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
