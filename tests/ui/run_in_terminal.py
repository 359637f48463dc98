"""Run a command in the terminal, then report how it left the terminal (for the tmux tests).

``python run_in_terminal.py ARGV...`` runs ARGV (no shell), then prints ``EXIT=<code>`` and
``TTY=restored`` (or ``TTY=changed``) comparing the terminal modes before and after, and stays
alive so the test can read the screen. The test kills the tmux server when done.
"""

from __future__ import annotations

import subprocess
import sys
import termios
import time


def main() -> None:
    """Run, report, linger."""
    before = termios.tcgetattr(0)
    code = subprocess.call(sys.argv[1:])
    after = termios.tcgetattr(0)
    print(f"\nEXIT={code}")
    print("TTY=restored" if after == before else f"TTY=changed {before} {after}", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
