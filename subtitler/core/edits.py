"""Edits as command objects with ``do``/``undo``, built on ``Document.replace_range``.

Each command works out its result when it is made, refusing invalid edits with an
``EditError`` that says why, and records what it replaces, so ``undo`` restores the
document exactly. The window wraps them in ``QUndoCommand`` unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Optional

from subtitler.core.document import Cue, Document
from subtitler.core.profiles import PROFILES
from subtitler.core.timecode import format_ms
from subtitler.errors import EditError


class Edit:
    """Replace ``count`` cues at ``first`` with ``new``; undo puts the old ones back."""

    label = "Edit"

    def __init__(self, doc: Document, first: int, count: int, new: list[Cue]):
        for s in new:
            validate(doc, s)
        self.doc = doc
        self.first = first
        self.old = [s.copy() for s in doc.cues[first : first + count]]
        self.new = [s.copy() for s in new]

    def do(self) -> None:
        self.doc.replace_range(self.first, len(self.old), self.new)

    def undo(self) -> None:
        self.doc.replace_range(self.first, len(self.new), self.old)


def validate(doc: Document, s: Cue) -> None:
    if s.start < 0 or s.end < 0:
        raise EditError("A time cannot be negative.")
    if s.start >= s.end:
        raise EditError(f"The start ({format_ms(s.start)}) must be before the end ({format_ms(s.end)}).")
    if doc.media_duration is not None and s.end > doc.media_duration:
        raise EditError(
            f"The end ({format_ms(s.end)}) is past the end of the media ({format_ms(doc.media_duration)})."
        )


def _check_index(doc: Document, i: int) -> Cue:
    if not 0 <= i < len(doc.cues):
        raise EditError(f"There is no subtitle #{i + 1}.")
    return doc.cues[i]


class EditText(Edit):
    label = "Edit text"

    def __init__(self, doc: Document, i: int, text: str):
        s = _check_index(doc, i).copy()
        if s.text != text:
            s.words = []  # word timings no longer describe the text
        s.text = text
        super().__init__(doc, i, 1, [s])


class SetTimes(Edit):
    """Set the start and/or end of one cue (inline edits, the playhead, waveform drags)."""

    label = "Change time"

    def __init__(self, doc: Document, i: int, start: Optional[int] = None, end: Optional[int] = None):
        s = _check_index(doc, i).copy()
        s.start = s.start if start is None else int(start)
        s.end = s.end if end is None else int(end)
        super().__init__(doc, i, 1, [s])


class Split(Edit):
    """Split at a character position; times from word timings if known, else by characters."""

    label = "Split"

    def __init__(self, doc: Document, i: int, pos: int):
        s = _check_index(doc, i)
        text = s.text
        if not 0 < pos < len(text):
            raise EditError("Put the cursor inside the text to split it.")
        pos = _word_boundary(text, pos)
        left, right = text[:pos].rstrip(), text[pos:].lstrip()
        if not left or not right:
            raise EditError("Both halves of a split need some text.")
        lw, rw, cut = _split_words(s, pos)
        if cut is None:
            cut = s.start + round(s.duration * pos / len(text))
        cut = min(max(cut, s.start + 1), s.end - 1)
        super().__init__(
            doc,
            i,
            1,
            [
                Cue(s.start, cut, left, lw, copy.deepcopy(s.extra)),
                Cue(cut, s.end, right, rw, copy.deepcopy(s.extra)),
            ],
        )
        self.left_raw, self.right_raw = text[:pos], text[pos:]


def _word_boundary(text: str, pos: int) -> int:
    """The whitespace nearest to ``pos``: subtitles split between words, not inside one."""
    if text[pos - 1].isspace() or text[pos].isspace():
        return pos
    spaces = [i for i, c in enumerate(text) if c.isspace() and 0 < i < len(text) - 1]
    if not spaces:
        raise EditError("Put the cursor between two words to split.")
    return min(spaces, key=lambda i: abs(i - pos))


def _split_words(s: Cue, pos: int):
    """Divide word timings at a character position of the text, if they line up."""
    if not s.words or "".join(w.text for w in s.words).strip() != s.text.strip():
        return [], [], None
    consumed = len(s.text) - len(s.text.lstrip()) - (len(s.words[0].text) - len(s.words[0].text.lstrip()))
    left, right = [], []
    for w in s.words:
        mid = consumed + len(w.text) / 2
        (left if mid < pos else right).append(w)
        consumed += len(w.text)
    if not left or not right:
        return [], [], None
    return left, right, right[0].start


class Merge(Edit):
    """Merge cue ``i`` with the one after it."""

    label = "Merge"

    def __init__(self, doc: Document, i: int):
        a = _check_index(doc, i)
        if i + 1 >= len(doc.cues):
            raise EditError("There is no following subtitle to merge with.")
        b = doc.cues[i + 1]
        joined = Cue(
            min(a.start, b.start),
            max(a.end, b.end),
            _join(a.text, b.text),
            [w for w in a.words + b.words] if a.words and b.words else [],
            copy.deepcopy(a.extra),
        )
        super().__init__(doc, i, 2, [joined])


def _join(a: str, b: str) -> str:
    if not a.strip():
        return b
    if not b.strip():
        return a
    return a.rstrip() + " " + b.lstrip()


class Insert(Edit):
    label = "Insert"

    def __init__(self, doc: Document, i: int, cue: Cue):
        if not 0 <= i <= len(doc.cues):
            raise EditError(f"Cannot insert at position {i + 1}.")
        super().__init__(doc, i, 0, [cue])


def insert_after(doc: Document, i: Optional[int], duration: int = 2000) -> Insert:
    """A new empty subtitle after ``i`` (or at the start), in the gap that follows it."""
    start = doc.cues[i].end + 1 if i is not None and 0 <= i < len(doc.cues) else 0
    end = start + duration
    nxt = i + 1 if i is not None else 0
    if nxt < len(doc.cues):
        end = min(end, doc.cues[nxt].start)
    if end <= start:
        end = start + duration
    if doc.media_duration is not None:
        end = min(end, doc.media_duration)
    return Insert(doc, nxt, Cue(start, end, ""))


class Delete(Edit):
    """Delete a contiguous run of cues."""

    label = "Delete"

    def __init__(self, doc: Document, first: int, count: int = 1):
        _check_index(doc, first)
        _check_index(doc, first + count - 1)
        super().__init__(doc, first, count, [])


class Shift(Edit):
    """Move cues by ``delta`` ms: all of them, a contiguous selection, or from one on."""

    label = "Shift"

    def __init__(self, doc: Document, delta: int, first: int = 0, count: Optional[int] = None):
        count = len(doc.cues) - first if count is None else count
        if count <= 0:
            raise EditError("No subtitles to shift.")
        _check_index(doc, first)
        moved = []
        for s in doc.cues[first : first + count]:
            c = s.copy()
            c.start += delta
            c.end += delta
            for w in c.words:
                w.start += delta
                w.end += delta
            moved.append(c)
        super().__init__(doc, first, count, moved)


class SnapToNeighbours(Edit):
    """Close small gaps and undo overlaps: start at the previous end, end at the next start,
    keeping ``gap`` ms between them."""

    label = "Snap to neighbours"

    def __init__(self, doc: Document, i: int, gap: int = PROFILES["default"].min_gap, reach: int = 500):
        s = _check_index(doc, i).copy()
        if i > 0:
            prev = doc.cues[i - 1]
            if abs(s.start - (prev.end + gap)) <= reach or s.start < prev.end + gap:
                s.start = prev.end + gap
        if i + 1 < len(doc.cues):
            nxt = doc.cues[i + 1]
            if abs(nxt.start - gap - s.end) <= reach or s.end > nxt.start - gap:
                s.end = nxt.start - gap
        super().__init__(doc, i, 1, [s])


class ReplaceText(Edit):
    """Find and replace over a run of cues, as one edit."""

    label = "Replace"

    def __init__(
        self,
        doc: Document,
        find: str,
        replace: str,
        indices: Optional[Iterable[int]] = None,
        case_sensitive: bool = False,
    ):
        import re

        if not find:
            raise EditError("Type the text to find.")
        idx = sorted(indices) if indices is not None else range(len(doc.cues))
        pattern = re.compile(re.escape(find), 0 if case_sensitive else re.IGNORECASE)
        first = min(idx) if idx else 0
        last = max(idx) if idx else -1
        new = []
        self.count = 0
        for j in range(first, last + 1):
            s = doc.cues[j].copy()
            if j in idx:
                text, n = pattern.subn(lambda m: replace, s.text)
                if n:
                    s.text, s.words = text, []
                    self.count += n
            new.append(s)
        if not self.count:
            raise EditError(f"'{find}' was not found.")
        super().__init__(doc, first, last - first + 1, new)
