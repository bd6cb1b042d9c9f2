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
    # A shorter gap between cues closes to ``min_gap``: the subtitle stays through a pause
    # instead of flickering off and on. One second is the subtitlers' "one-second rule"
    # for connected subtitles; Netflix's profile keeps its own 12 frames.
    chain_gap: int = 1000


PROFILES = {
    "default": Profile("default"),
    # Netflix English timed text: 5/6 s minimum, 2 frames (at 23.976 fps) between cues,
    # and cues under 12 frames apart chained (closed up to those 2 frames).
    "netflix": Profile("netflix", min_duration=833, min_gap=83, chain_gap=500),
}


def get_profile(name: str | Profile | None) -> Profile:
    if isinstance(name, Profile):
        return name
    key = (name or "default").lower()
    if key not in PROFILES:
        raise ValueError(f"Unknown reading profile '{name}'; choose from {', '.join(PROFILES)}.")
    return PROFILES[key]
