"""SubRip (.srt), through the ``srt`` library, read strictly: every block (cues are
separated by blank lines) must have a time line, or the file is refused naming that
block's line; nothing is glued into the cue before it."""

from __future__ import annotations

import re
from datetime import timedelta

import srt

import subtitler.core.formats.markup as markup
from subtitler.core.document import Cue
from subtitler.errors import MissingTimeLine, SubtitleFileError

_TIME_LINE = re.compile(r"^\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}\s*-->\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}")


def _ms(td: timedelta) -> int:
    return round(td.total_seconds() * 1000)


def times(s: Cue) -> tuple[int, int]:
    """A cue's times as every writer writes them: from 0 on, and ending after they start."""
    start = max(0, s.start)
    return start, max(s.end, start + 1)


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """The blank-line separated blocks with the line number each starts on."""
    out, cur, first = [], [], 0
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            if not cur:
                first = n
            cur.append(line)
        elif cur:
            out.append((first, cur))
            cur = []
    if cur:
        out.append((first, cur))
    return out


def read(text: str, skip_bad: bool = False) -> tuple[list[Cue], list[int]]:
    """Cues of an SRT text, and the lines of the blocks skipped (with ``skip_bad``;
    without it a block with no time line raises ``SubtitleFileError``)."""
    good, skipped = [], []
    for line, lines in _blocks(text):
        timing = 1 if len(lines) > 1 and lines[0].strip().isdigit() else 0
        if not _TIME_LINE.match(lines[timing]):
            if skip_bad:
                skipped.append(line)
                continue
            raise MissingTimeLine(
                f"Malformed SRT at line {line}: this block has no valid time line "
                f"(expected 'start --> end').",
                line,
            )
        good.append("\n".join([str(len(good) + 1), *lines[timing:]]))
    try:
        subs = list(srt.parse("\n\n".join(good) + "\n"))
    except (srt.SRTParseError, ValueError) as e:
        raise SubtitleFileError(f"Malformed SRT: {e}.") from e
    return [Cue(_ms(s.start), _ms(s.end), s.content) for s in subs], skipped


def write(cues: list[Cue]) -> str:
    subs = []
    for i, s in enumerate(cues):
        start, end = times(s)
        subs.append(
            srt.Subtitle(
                i + 1, timedelta(milliseconds=start), timedelta(milliseconds=end), markup.to_srt(s.text)
            )
        )
    return srt.compose(subs, reindex=False, strict=False)
