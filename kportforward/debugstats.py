"""The Go kportforward's debug flags, mapped onto Python's own tools.

- ``--mem-stats-interval D``: every D, one log line with the process's memory (RSS, peak RSS),
  the garbage collector's counts and, while tracing, tracemalloc's current and peak (Go logs
  ``runtime.MemStats``).
- ``--heap-snapshot-dir DIR --heap-snapshot-interval D``: tracemalloc traces allocations and every
  D writes ``heap-<UTC time>-<n>.tracemalloc`` (load it with ``tracemalloc.Snapshot.load``) and a
  readable ``.txt`` with the 30 biggest allocation sites beside it (Go writes pprof heap profiles).
- ``--pprof ADDR`` has no Python counterpart; the CLI refuses it and points at
  ``kportforward profile``.

A zero duration means off, as in Go. The work runs on one daemon thread that wakes only when a
report is due; :func:`start` returns the handle whose ``stop()`` ends it.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass

from kportforward.core.durations import format_setting
from kportforward.errors import ArgumentError, OutputPathError

log = logging.getLogger(__name__)

MEM_STATS_RANGE = (1.0, 86400.0)
"""``--mem-stats-interval``: 0 (off) or 1s to 24h."""
HEAP_SNAPSHOT_RANGE = (10.0, 86400.0)
"""``--heap-snapshot-interval``: 0 (off) or 10s to 24h (a snapshot walks every allocation)."""
TRACE_FRAMES = 10


@dataclass(frozen=True, slots=True)
class DebugOptions:
    """What to report; intervals in seconds, 0 for off."""

    mem_stats_interval: float = 0.0
    heap_snapshot_dir: str | None = None
    heap_snapshot_interval: float = 0.0

    @property
    def active(self) -> bool:
        """True when anything is to be reported."""
        return bool(self.mem_stats_interval or self.heap_snapshot_interval)


def check_interval(flag: str, seconds: float, bounds: tuple[float, float]) -> float:
    """``seconds`` when 0 or within ``bounds``; ArgumentError naming the range otherwise."""
    low, high = bounds
    if seconds and not low <= seconds <= high:
        raise ArgumentError(
            f"{flag} {format_setting(seconds)} is out of range",
            f"use 0 (off) or {format_setting(low)} to {format_setting(high)}",
        )
    return seconds


def validate(options: DebugOptions) -> DebugOptions:
    """Check the combination: a snapshot directory and interval come together."""
    check_interval("--mem-stats-interval", options.mem_stats_interval, MEM_STATS_RANGE)
    check_interval("--heap-snapshot-interval", options.heap_snapshot_interval, HEAP_SNAPSHOT_RANGE)
    if options.heap_snapshot_interval and not options.heap_snapshot_dir:
        raise ArgumentError(
            "--heap-snapshot-interval needs --heap-snapshot-dir", "name a directory to write to"
        )
    if options.heap_snapshot_dir and not options.heap_snapshot_interval:
        raise ArgumentError(
            "--heap-snapshot-dir needs --heap-snapshot-interval",
            "e.g. --heap-snapshot-interval 30m",
        )
    if options.heap_snapshot_dir:
        _check_dir(options.heap_snapshot_dir)
    return options


def _check_dir(path: str) -> None:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(
            f"--heap-snapshot-dir {path}: not a directory", "name a directory"
        ) from None
    except OSError as exc:
        raise OutputPathError(
            f"--heap-snapshot-dir {path}: {exc.strerror}", "name a writable directory"
        ) from None
    if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"--heap-snapshot-dir {path}: not a writable directory", "name a writable directory"
        )


class DebugStats:
    """The running reporter; ``stop()`` ends it (and tracemalloc, if it started it)."""

    def __init__(self, options: DebugOptions) -> None:
        self.options = options
        self.snapshots: list[str] = []
        """Files written so far (the .tracemalloc ones)."""
        self._stop = threading.Event()
        self._started_tracing = False
        self._thread = threading.Thread(target=self._run, name="debugstats", daemon=True)

    def start(self) -> DebugStats:
        """Begin reporting (tracemalloc starts now when snapshots are wanted)."""
        if self.options.heap_snapshot_interval and not tracemalloc.is_tracing():
            tracemalloc.start(TRACE_FRAMES)
            self._started_tracing = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reporting; waits briefly for a report in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._started_tracing:
            tracemalloc.stop()
            self._started_tracing = False

    def _run(self) -> None:
        now = time.monotonic()
        mem, heap = self.options.mem_stats_interval, self.options.heap_snapshot_interval
        next_mem = now + mem if mem else float("inf")
        next_heap = now + heap if heap else float("inf")
        while not self._stop.wait(max(0.0, min(next_mem, next_heap) - time.monotonic())):
            now = time.monotonic()
            try:
                if now >= next_mem:
                    next_mem = now + mem
                    log.info("%s", memory_line())
                if now >= next_heap:
                    next_heap = now + heap
                    self.snapshot()
            except Exception:  # a report must never take the program down
                log.exception("debug stats report failed")

    def snapshot(self) -> str:
        """Write one heap snapshot now (and its summary); the .tracemalloc file's path."""
        directory = self.options.heap_snapshot_dir or "."
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = os.path.join(directory, f"heap-{stamp}-{len(self.snapshots) + 1}")
        snap = tracemalloc.take_snapshot()
        snap.dump(f"{base}.tracemalloc")
        with open(f"{base}.txt", "w", encoding="utf-8") as fh:
            current, peak = tracemalloc.get_traced_memory()
            fh.write(f"traced: {current / 1e6:.1f} MB now, {peak / 1e6:.1f} MB peak\n")
            for stat in snap.statistics("lineno")[:30]:
                fh.write(f"{stat}\n")
        self.snapshots.append(f"{base}.tracemalloc")
        log.info("heap snapshot written: %s.tracemalloc", base)
        return f"{base}.tracemalloc"


def memory_line() -> str:
    """One line of memory statistics for the log."""
    parts = []
    try:
        import psutil

        info = psutil.Process().memory_info()
        parts.append(f"rss={info.rss / 1e6:.1f}MB vms={info.vms / 1e6:.1f}MB")
    except Exception:  # psutil is a dependency, but a sandbox may hide /proc
        pass
    if sys.platform != "win32":  # the resource module is POSIX only
        import resource

        with contextlib.suppress(OSError):
            peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            parts.append(f"peak_rss={peak_kb / 1e3:.1f}MB")
    parts.append(f"gc_counts={gc.get_count()} gc_objects={len(gc.get_objects())}")
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        parts.append(f"traced={current / 1e6:.1f}MB traced_peak={peak / 1e6:.1f}MB")
    parts.append(f"threads={threading.active_count()}")
    return "memory stats: " + " ".join(parts)


def start(options: DebugOptions) -> DebugStats | None:
    """Validate ``options`` and start reporting; None when nothing was asked for."""
    validate(options)
    if not options.active:
        return None
    return DebugStats(options).start()
