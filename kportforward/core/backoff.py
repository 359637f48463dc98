"""Restart policy: exponential backoff with jitter, reset after a stretch of healthy running.

Pure and clock-injected, so scripted histories can be tested without sleeping:

    b = Backoff(clock=fake.now, rng=lambda: 0.5)
    b.next_delay()      # 0 (the first failure after a healthy stretch restarts at once),
                        # then 0.5, 1, 2, 4 … capped at 30
    b.mark_running()    # Running began
    ...                 # after reset_after seconds of Running, the next failure starts at 0.5 again
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before the next restart of one forward."""

    base: float = 0.5
    """First delay, in seconds."""
    cap: float = 30.0
    """No delay is longer than this; Failed forwards are retried at this pace."""
    factor: float = 2.0
    jitter: float = 0.2
    """Each delay is spread uniformly over ±jitter of itself: forwards do not retry in lockstep."""
    reset_after: float = 5.0
    first_free: bool = True
    """The first failure (after a reset) restarts at once: one crash is not a crash loop."""
    """A forward that stayed Running this long starts again from ``base`` on its next failure."""
    clock: Callable[[], float] = time.monotonic
    rng: Callable[[], float] = random.random
    attempts: int = 0
    """Consecutive failures since the last reset."""
    _running_since: float | None = field(default=None, repr=False)

    def mark_running(self) -> None:
        """The forward became Running now."""
        self._running_since = self.clock()

    def mark_stopped(self) -> None:
        """The forward left Running; if it had been up long enough, forget earlier failures."""
        if (
            self._running_since is not None
            and self.clock() - self._running_since >= self.reset_after
        ):
            self.attempts = 0
        self._running_since = None

    def reset(self) -> None:
        """Forget every failure (a user restart or a config change)."""
        self.attempts = 0
        self._running_since = None

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next attempt."""
        self.mark_stopped()
        attempt = self.attempts
        self.attempts += 1
        if self.first_free:
            if attempt == 0:
                return 0.0
            attempt -= 1
        return self._spread(min(self.cap, self.base * self.factor**attempt))

    def slow_delay(self) -> float:
        """The delay for a Failed forward: the cap, jittered."""
        return self._spread(self.cap)

    def peek(self) -> float:
        """The un-jittered delay the next failure would get (for display and tests)."""
        attempt = self.attempts - (1 if self.first_free else 0)
        return 0.0 if attempt < 0 else min(self.cap, self.base * self.factor**attempt)

    def _spread(self, raw: float) -> float:
        spread = raw * (1.0 + self.jitter * (2.0 * self.rng() - 1.0))
        return max(0.0, min(self.cap, spread))
