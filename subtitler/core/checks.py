"""Readability checks: each finding names its cue, so a table can colour the row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from subtitler.core.document import Cue
from subtitler.core.profiles import Profile, get_profile
from subtitler.core.timecode import format_ms


@dataclass(frozen=True)
class Finding:
    index: int
    kind: str  # overlap | too_short | too_long | gap | cps | line_length | line_count
    message: str
    unavoidable: bool = False  # no timing between the neighbours could meet the limit


def room(cues: list[Cue], i: int, profile: Profile, media_end: Optional[int] = None) -> float:
    """The longest a cue could be shown without crowding its neighbours: from the
    previous cue's end to the next one's start, less the minimum gaps (the last cue: to
    the media's end, when known)."""
    lo = cues[i - 1].end + profile.min_gap if i else 0
    last = float("inf") if media_end is None else media_end
    hi = cues[i + 1].start - profile.min_gap if i + 1 < len(cues) else last
    return hi - lo


UNAVOIDABLE = "; unavoidable: its neighbours leave no more room"


def visible_chars(text: str) -> int:
    return len(text.replace("\n", ""))


def cps(cue: Cue) -> float:
    seconds = cue.duration / 1000
    return visible_chars(cue.text.strip()) / seconds if seconds > 0 else float("inf")


def check_cue(cues: list[Cue], i: int, profile: Profile, media_end: Optional[int] = None) -> list[Finding]:
    s = cues[i]
    out = []
    if i + 1 < len(cues):
        nxt = cues[i + 1]
        if nxt.start < s.end:
            out.append(Finding(i, "overlap", f"overlaps the next subtitle by {s.end - nxt.start} ms"))
        elif nxt.start - s.end < profile.min_gap:
            out.append(
                Finding(
                    i,
                    "gap",
                    f"gap to the next subtitle is {nxt.start - s.end} ms (minimum {profile.min_gap} ms)",
                )
            )
    if s.duration < profile.min_duration:
        forced = room(cues, i, profile, media_end) < profile.min_duration
        out.append(
            Finding(
                i,
                "too_short",
                f"shown for {s.duration} ms (minimum {profile.min_duration} ms)"
                + (UNAVOIDABLE if forced else ""),
                forced,
            )
        )
    if s.duration > profile.max_duration:
        out.append(Finding(i, "too_long", f"shown for {s.duration} ms (maximum {profile.max_duration} ms)"))
    rate = cps(s)
    if rate > profile.max_cps:
        forced = room(cues, i, profile, media_end) < visible_chars(s.text.strip()) / profile.max_cps * 1000
        out.append(
            Finding(
                i,
                "cps",
                f"{rate:.1f} characters per second (maximum {profile.max_cps:g})"
                + (UNAVOIDABLE if forced else ""),
                forced,
            )
        )
    lines = s.text.split("\n")
    if len(lines) > profile.max_lines:
        out.append(Finding(i, "line_count", f"{len(lines)} lines (maximum {profile.max_lines})"))
    longest = max(len(line) for line in lines)
    if longest > profile.max_chars_per_line:
        out.append(
            Finding(
                i, "line_length", f"a line of {longest} characters (maximum {profile.max_chars_per_line})"
            )
        )
    return out


class Findings:
    """The findings of every cue of a list, kept up to date change by change: a
    replaced range rechecks only its own cues and the one before it (overlap and
    gap look at the next cue), so an edit among 10,000 cues costs the same as
    among ten."""

    def __init__(
        self, cues: list[Cue], profile: Profile | str | None = None, media_end: Optional[int] = None
    ):
        self.profile = get_profile(profile)
        self.media_end = media_end  # ms: the last cue cannot be shown past it
        self.cues = cues
        self.by_row: list[list[Finding]] = []
        self.recheck_all(cues)

    def recheck_all(self, cues: list[Cue]) -> None:
        self.cues = cues
        self.by_row = [check_cue(cues, i, self.profile, self.media_end) for i in range(len(cues))]

    def replaced(self, cues: list[Cue], first: int, old: int, new: int) -> range:
        """Follow ``old`` cues at ``first`` having become ``new`` ones; returns the
        rows whose findings may have changed."""
        self.cues = cues
        self.by_row[first : first + old] = [[] for _ in range(new)]
        rows = range(max(0, first - 1), min(len(cues), first + new))
        for i in rows:
            self.by_row[i] = check_cue(cues, i, self.profile, self.media_end)
        return rows

    def __getitem__(self, row: int) -> list[Finding]:
        return self.by_row[row]


def check(
    cues: list[Cue], profile: Profile | str | None = None, media_end: Optional[int] = None
) -> list[Finding]:
    """Every cue's findings; ``media_end`` (ms, when known) bounds the last cue's room."""
    p = get_profile(profile)
    return [f for i in range(len(cues)) for f in check_cue(cues, i, p, media_end)]


def format_finding(f: Finding, cues: list[Cue]) -> str:
    s = cues[f.index]
    return f"#{f.index + 1} {format_ms(s.start)}-{format_ms(s.end)}: {f.message}"
