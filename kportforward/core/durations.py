"""Durations as people (and Go's ``time.ParseDuration``) write them.

Accepted: every form Go accepts — ``300us``, ``50ms``, ``2s``, ``1m30s``, ``1.5h``, ``25h``,
``.5s``, ``+5s``, ``0`` — plus spaces between parts (``1m 30s``) and a bare number, which means
seconds here.
Units: ``ns``, ``us`` (also ``µs``/``μs``), ``ms``, ``s``, ``m``, ``h``. The result is in seconds.

A negative duration is an error (Go's tickers panic on them); a value beyond Go's own limit
(about 292 years) is an error, as it is in Go. Ranges are the caller's business.
"""

from __future__ import annotations

import math
import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 MICRO SIGN
    "μs": 1e-6,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
# Longest units first so "ms" is never read as "m" followed by garbage.
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
GO_MAX_SECONDS = (2**63 - 1) / 1e9
"""The longest duration Go can represent (int64 nanoseconds, ≈ 292 years)."""
MAX_TEXT = 100
"""Longer duration texts are refused before any arithmetic (a real one is a few characters)."""
_EXAMPLE = "expected a duration like 500ms, 2s, 1m30s or 1.5h"


def parse_duration(value: object) -> float:
    """``value`` in seconds (≥ 0); ValueError with a human message if it is not a duration."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{_EXAMPLE}, got {_show(value)}")
    if isinstance(value, int):
        if value.bit_length() > 64:  # int → float would overflow (or lose all meaning)
            raise ValueError(f"{_show(value)} is longer than any duration (Go's limit is ≈292y)")
        seconds = float(value)
    elif isinstance(value, float):
        seconds = value
    else:
        seconds = _parse_text(value)
    if math.isnan(seconds):
        raise ValueError(f"{_EXAMPLE}, got {_show(value)}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {_show(value)}")
    if seconds > GO_MAX_SECONDS:
        raise ValueError(f"{_show(value)} is longer than any duration (Go's limit is ≈292y)")
    return seconds


def is_bare_number(value: object) -> bool:
    """True when ``value`` is a number without a unit (``5``, ``0.5``, ``"5"``): seconds here."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None


def _parse_text(value: str) -> float:
    text = value.strip().replace(" ", "")
    if not text or len(text) > MAX_TEXT:
        raise ValueError(f"{_EXAMPLE}, got {_show(value)}")
    if _NUMBER.fullmatch(text):
        return float(text)
    sign = 1.0
    if text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    pos, seconds = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{_EXAMPLE}, got {_show(value)}")
    return sign * seconds


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}…({len(text)} characters)"


def format_duration(seconds: float) -> str:
    """Compact human form: ``45s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def format_setting(seconds: float) -> str:
    """A duration as a config value (``250ms``, ``1.5s``, ``2m``, ``1h``): for warnings."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 60 or seconds % 60:
        return f"{seconds:g}s"
    if seconds < 3600 or seconds % 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
