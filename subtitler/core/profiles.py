"""Reading profiles: the limits a readable subtitle keeps. One home for them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    max_chars_per_line: int = 42
    max_lines: int = 2
    min_duration: int = 1000  # ms
    max_duration: int = 7000
    max_cps: float = 20.0
    min_gap: int = 83
    # A cue appears up to ``lead_in`` before its speech (a few frames, as subtitle timers
    # set it: the eye is on the text as the voice starts). Cues whose speech is less than
    # ``chain_gap`` apart are chained: the earlier one stays on, ``min_gap`` short of the
    # next, through a pause inside a turn or before a quick reply (timers extend the lead-
    # out, not the lead-in). Measured on benchmarks/real.py's meeting and quality.py's clip.
    chain_gap: int = 2000
    lead_in: int = 120


PROFILES = {
    "default": Profile("default"),
    # Netflix English timed text: 5/6 s minimum, 2 frames (at 23.976 fps) between cues,
    # cues under 12 frames apart chained (closed up to those 2 frames), in-times on the speech.
    "netflix": Profile("netflix", min_duration=833, min_gap=83, chain_gap=500, lead_in=0),
}


def get_profile(name: str | Profile | None) -> Profile:
    if isinstance(name, Profile):
        return name
    key = (name or "default").lower()
    if key not in PROFILES:
        raise ValueError(f"Unknown reading profile '{name}'; choose from {', '.join(PROFILES)}.")
    return PROFILES[key]
