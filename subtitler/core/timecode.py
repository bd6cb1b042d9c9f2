"""The one home of time formatting and parsing. Times are integer milliseconds."""

from __future__ import annotations

import re


def format_ms(ms: int, sep: str = ".", hours: bool = True) -> str:
    """12345 -> '00:00:12.345' (``sep=','`` for SRT)."""
    ms = max(0, int(round(ms)))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    if hours or h:
        return f"{h:02d}:{m:02d}:{s:02d}{sep}{milli:03d}"
    return f"{m:02d}:{s:02d}{sep}{milli:03d}"


_TIME = re.compile(r"^\s*(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?\s*$")
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d{1,3})?)\s*s?\s*$")


def parse_ms(text: str) -> int:
    """'01:02:03.456', '02:03,4', '12.5' or '12.5s' -> milliseconds; ValueError if malformed."""
    m = _TIME.match(text)
    if m:
        h = int(m[1] or 0)
        mins, secs = int(m[2]), int(m[3])
        if mins >= 60 or secs >= 60:
            raise ValueError(f"Not a valid time: {text!r}")
        frac = (m[4] or "0").ljust(3, "0")
        return ((h * 60 + mins) * 60 + secs) * 1000 + int(frac)
    m = _SECONDS.match(text)
    if m:
        return int(round(float(m[1]) * 1000))
    raise ValueError(f"Not a valid time: {text!r} (use HH:MM:SS.mmm)")


def seconds_to_ms(seconds: float) -> int:
    return int(round(seconds * 1000))
