"""The subtitle document: ordered segments in integer milliseconds plus metadata.

Mutations go through four primitive methods that notify listeners, so a UI
adapter (the Qt table model) can follow every change without knowing about edits.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Word:
    start: int  # ms
    end: int
    text: str
    probability: float = 1.0


@dataclass
class Segment:
    start: int  # ms
    end: int
    text: str  # lines split by "\n"; <i>, <b>, <u> mark styles, and a file's own markup stays as it came
    words: list[Word] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # what a file format keeps per cue (VTT id and settings, ASS style)

    @property
    def duration(self) -> int:
        return self.end - self.start

    def copy(self) -> "Segment":
        return copy.deepcopy(self)


# A change notification: ("reset" | "replace", first index, old count, new count).
Listener = Callable[[str, int, int, int], None]


class Document:
    def __init__(self, segments: Optional[list[Segment]] = None, media_path: Optional[str] = None,
                 model: Optional[str] = None, language: Optional[str] = None,
                 media_duration: Optional[int] = None):
        self.segments: list[Segment] = list(segments or [])
        self.media_path = media_path
        self.model = model
        self.language = language
        self.media_duration = media_duration  # ms, when known
        self.header: dict = {}  # what a file format keeps for the whole file (VTT blocks, ASS styles), by format
        self.video_size: Optional[tuple[int, int]] = None  # width, height of the media's picture, when known
        self.revision = 0  # bumped on every change, for autosave/dirty tracking
        self._listeners: list[Listener] = []

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, i: int) -> Segment:
        return self.segments[i]

    def subscribe(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def unsubscribe(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _notify(self, kind: str, first: int, old: int, new: int) -> None:
        self.revision += 1
        for fn in list(self._listeners):
            fn(kind, first, old, new)

    # The primitives every edit is built from.
    def replace_range(self, first: int, count: int, segments: list[Segment]) -> list[Segment]:
        """Replace ``count`` segments at ``first`` with ``segments``; returns the removed ones."""
        removed = self.segments[first : first + count]
        self.segments[first : first + count] = [s.copy() for s in segments]
        self._notify("replace", first, count, len(segments))
        return removed

    def set_segments(self, segments: list[Segment]) -> None:
        self.segments = [s.copy() for s in segments]
        self._notify("reset", 0, 0, len(self.segments))

    def append(self, segment: Segment) -> None:
        self.replace_range(len(self.segments), 0, [segment])

    def snapshot(self) -> list[Segment]:
        return [s.copy() for s in self.segments]

    def index_at(self, ms: int) -> Optional[int]:
        """The segment shown at time ``ms``, if any."""
        for i, s in enumerate(self.segments):
            if s.start <= ms < s.end:
                return i
        return None
