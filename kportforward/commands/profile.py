"""``kportforward profile``: validate the arguments (each with a documented range), profile, print
the summary.

Ranges: ``--duration`` longer than 0 and at most 24h; ``--forwards`` 1–1000; ``--churn`` a finite
number from 0 to 100 (kubectl kills per second). ``--cpuprofile``/``--memprofile`` must be regular
files or not exist yet; ``--output`` must be creatable.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
from pathlib import Path
from typing import Any

from kportforward.core.durations import parse_duration
from kportforward.errors import ArgumentError, OutputPathError
from kportforward.profiling import ProfileOptions, print_summary, profile

FORWARDS_RANGE = (1, 1000)
"""``--forwards``: each forward is a real kubectl (~30-50 MB); 1000 is a lot for one host."""
CHURN_MAX = 100.0
"""``--churn``: a finite number of kubectl kills per second, 0 to this."""
DURATION_MAX = 24 * 3600.0
"""``--duration``: longer than 0, at most 24h."""


def options_from_args(args: Any) -> ProfileOptions:
    """Validate the CLI arguments (one-line errors, exit 2) and build ProfileOptions.

    Ranges: ``--duration`` more than 0 and at most 24h; ``--forwards`` 1–1000; ``--churn`` a finite
    number from 0 to 100 (kubectl kills per second).
    """
    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise ArgumentError(f"--duration: {exc}", "use e.g. --duration 30s") from None
    if duration <= 0:
        raise ArgumentError("--duration must be longer than 0", "use e.g. --duration 30s")
    if duration > DURATION_MAX:
        raise ArgumentError(f"--duration must be at most 24h, got {args.duration}", "e.g. 30s")
    lo, hi = FORWARDS_RANGE
    if not lo <= args.forwards <= hi:
        raise ArgumentError(
            f"--forwards must be at least {lo} and at most {hi}, got {args.forwards}",
            "use e.g. 50",
        )
    churn = float(args.churn)
    if not math.isfinite(churn) or not 0 <= churn <= CHURN_MAX:
        raise ArgumentError(
            f"--churn must be a number from 0 to {CHURN_MAX:g}, got {args.churn}",
            "kubectl kills per second, e.g. 0.5",
        )
    from kportforward.commands.run import resolve_kubectl

    kubectl = resolve_kubectl(args.kubectl)
    opts = ProfileOptions(
        duration=duration,
        output=Path(args.output).expanduser(),
        forwards=args.forwards,
        churn=churn,
        config=args.config,
        kubeconfig=args.kubeconfig,
        kubectl=kubectl,
        cpuprofile=Path(args.cpuprofile).expanduser() if args.cpuprofile else None,
        memprofile=Path(args.memprofile).expanduser() if args.memprofile else None,
    )
    _check_writable(opts)
    return opts


def _check_writable(opts: ProfileOptions) -> None:
    """Fail before any work, and before creating anything, if a report cannot be written."""
    for extra, flag in ((opts.cpuprofile, "--cpuprofile"), (opts.memprofile, "--memprofile")):
        if extra is None:
            continue
        parent = extra.parent if str(extra.parent) else Path(".")
        if _exists_not_regular(extra) or not parent.is_dir() or not os.access(parent, os.W_OK):
            raise OutputPathError(
                f"{flag} {extra}: cannot write a file there", f"choose a writable {flag} FILE"
            )
    # The output directory is created only when the run starts: its nearest existing ancestor
    # must be a writable directory.
    existing = opts.output
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"cannot create the output directory {opts.output}: "
            f"{existing} is not a writable directory",
            "choose a writable --output DIR",
        )


def _exists_not_regular(path: Path) -> bool:
    """True when ``path`` exists (or cannot be looked at) and is not a regular file: a FIFO would
    block the report's write, a device or directory cannot hold it."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
    except OSError:
        return True


def main(args: argparse.Namespace) -> int:
    """Validate, profile, print the summary."""
    opts = options_from_args(args)
    summary = profile(opts)
    print_summary(summary, opts.output)
    return 0
