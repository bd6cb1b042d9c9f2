"""Subtitle files: what we read and write, by extension.

| ext | format | read | write |
|---|---|---|---|
| .srt | SubRip (``srt``) | yes | yes |
| .vtt | WebVTT (``webvtt-py``) | yes | yes |
| .ass, .ssa | Advanced SubStation, SubStation Alpha (``pysubs2``) | yes | yes |
| .txt | plain text | no | yes |
| .json | subtitler's document (words and all) | yes | yes |

Reading detects the text encoding (``encoding``); writing is UTF-8 and atomic.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Optional

from subtitler.core.document import Document
from subtitler.core.formats import ass, plain, subrip, vtt
from subtitler.core.formats.encoding import atomic_write, read_text
from subtitler.errors import SubtitleFileError


class Format(NamedTuple):
    name: str
    read: Optional[Callable[[str], Document]]
    write: Callable[[Document], str]


def _read_srt(text: str) -> Document:
    return Document(subrip.read(text)[0])


FORMATS: dict[str, Format] = {
    "srt": Format("SubRip", _read_srt, lambda doc: subrip.write(doc.cues)),
    "vtt": Format("WebVTT", vtt.read, vtt.write),
    "ass": Format("Advanced SubStation Alpha", ass.read, lambda doc: ass.write(doc, "ass")),
    "ssa": Format("SubStation Alpha", ass.read, lambda doc: ass.write(doc, "ssa")),
    "txt": Format("Plain text", None, plain.write_txt),
    "json": Format("subtitler document (JSON)", plain.read_json, plain.write_json),
}
READABLE = tuple(k for k, f in FORMATS.items() if f.read)


def format_of(path) -> str:
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise SubtitleFileError(
            f"Unknown subtitle format '.{ext}': use one of {', '.join('.' + f for f in FORMATS)}."
        )
    return ext


def list_formats() -> str:
    """One line per format: extension, name, and whether we read and write it."""
    return "\n".join(
        f".{ext:<5} {f.name:<28} {'read and write' if f.read else 'write only'}" for ext, f in FORMATS.items()
    )


def dialog_filter(for_reading: bool) -> str:
    """Qt file-dialog filters: all readable (or writable) formats, then one per format."""
    exts = [e for e, f in FORMATS.items() if f.read or not for_reading]
    each = [f"{FORMATS[e].name} (*.{e})" for e in exts]
    return ";;".join([f"Subtitles ({' '.join('*.' + e for e in exts)})", *each])


def dumps(doc: Document, fmt: str) -> str:
    if fmt not in FORMATS:
        raise SubtitleFileError(f"Unknown subtitle format '{fmt}'.")
    return FORMATS[fmt].write(doc)


def loads(text: str, fmt: str) -> Document:
    if fmt not in FORMATS or FORMATS[fmt].read is None:
        raise SubtitleFileError(f"Cannot import .{fmt} files: use {', '.join('.' + f for f in READABLE)}.")
    return FORMATS[fmt].read(text)


class Loaded(NamedTuple):
    document: Document
    skipped: list[int]  # lines of SRT blocks skipped for having no time line


def read_file(
    path, fmt: Optional[str] = None, encoding: Optional[str] = None, skip_bad: bool = False
) -> Loaded:
    """Read a subtitle file; with ``skip_bad``, SRT blocks without a time line are
    skipped (and their lines reported) instead of refusing the file."""
    fmt = fmt or format_of(path)
    text = read_text(path, encoding)
    try:
        if fmt == "srt":
            cues, skipped = subrip.read(text, skip_bad)
            return Loaded(Document(cues), skipped)
        return Loaded(loads(text, fmt), [])
    except SubtitleFileError as e:
        if not str(e).startswith(Path(path).name):
            e.args = (f"{Path(path).name}: {e}",)  # the same error, naming the file
        raise


def load(path, fmt: Optional[str] = None, encoding: Optional[str] = None) -> Document:
    return read_file(path, fmt, encoding).document


def save(doc: Document, path, fmt: Optional[str] = None, bom: bool = False) -> None:
    atomic_write(path, dumps(doc, fmt or format_of(path)), bom=bom)


to_json = plain.write_json
