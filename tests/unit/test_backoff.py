"""Backoff with a fake clock and a fixed random source: growth, cap, jitter bounds, reset."""

from __future__ import annotations

import random

from kportforward.core.backoff import Backoff


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_doubles_from_base_to_cap_without_jitter() -> None:
    b = Backoff(base=0.5, cap=30.0, jitter=0.0, clock=Clock(), first_free=False)
    assert [b.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert b.attempts == 9


def test_first_failure_restarts_at_once_then_backs_off() -> None:
    b = Backoff(base=0.5, cap=4.0, jitter=0.0, clock=Clock())
    assert b.peek() == 0.0
    assert [b.next_delay() for _ in range(6)] == [0.0, 0.5, 1, 2, 4, 4]


def test_jitter_stays_within_bounds_and_never_exceeds_cap() -> None:
    rng = random.Random(7)
    b = Backoff(base=1.0, cap=8.0, jitter=0.25, rng=rng.random, clock=Clock(), first_free=False)
    for attempt in range(12):
        raw = min(8.0, 1.0 * 2**attempt)
        d = b.next_delay()
        assert raw * 0.75 <= d <= min(8.0, raw * 1.25)


def test_jitter_spreads_forwards_apart() -> None:
    delays = {
        Backoff(rng=random.Random(seed).random, first_free=False).next_delay() for seed in range(20)
    }
    assert len(delays) > 10


def test_reset_after_running_long_enough() -> None:
    clock = Clock()
    b = Backoff(base=0.5, jitter=0.0, reset_after=10.0, clock=clock)
    for _ in range(4):
        b.next_delay()  # 0, 0.5, 1, 2
    b.mark_running()
    clock.now += 9.0  # not long enough: the next failure keeps growing
    assert b.next_delay() == 4.0
    b.mark_running()
    clock.now += 10.0  # long enough: a fresh start, at once, then from base
    assert b.next_delay() == 0.0
    assert b.next_delay() == 0.5


def test_crash_loop_keeps_growing_and_user_reset_forgets() -> None:
    clock = Clock()
    b = Backoff(base=0.5, jitter=0.0, clock=clock)
    history = []
    for _ in range(5):
        b.mark_running()
        clock.now += 1.0  # runs a second, dies: a crash loop
        history.append(b.next_delay())
    assert history == [0.0, 0.5, 1, 2, 4]
    b.reset()
    assert b.next_delay() == 0.0


def test_slow_delay_is_the_cap() -> None:
    b = Backoff(cap=30.0, jitter=0.0)
    assert b.slow_delay() == 30.0
    assert b.peek() == 0.0
