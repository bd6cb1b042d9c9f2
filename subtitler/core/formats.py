"""Subtitle files: SRT (through the ``srt`` library), WebVTT, plain text and JSON.

Readers take bytes-on-disk quirks (UTF-8 BOM, UTF-16, CRLF, cp1252) and report a
malformed file as a ``SubtitleFileError`` naming the line. Writers are atomic.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Optional

import srt

from subtitler.core.document import Document, Segment, Word
from subtitler.errors import SubtitleFileError
from subtitler.core.timecode import format_ms

FORMATS = ("srt", "vtt", "txt", "json")


def format_of(path) -> str:
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise SubtitleFileError(f"Unknown subtitle format '.{ext}': use one of {', '.join('.' + f for f in FORMATS)}.")
    return ext


# ----------------------------------------------------------------------------- text I/O


def decode_text(data: bytes) -> str:
    """Bytes to text: BOMs honoured, UTF-8 first, cp1252 as the fallback; CRLF -> LF."""
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8", errors="replace")
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def atomic_write(path, data: str | bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over, so a failure
    never leaves a half-written or damaged file."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as e:
        raise SubtitleFileError(f"Cannot write {path}: {e.strerror or e}.") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SubtitleFileError(f"Cannot write {path}: {e.strerror or e}.") from e


# ----------------------------------------------------------------------------- SRT


def _td(ms: int) -> timedelta:
    return timedelta(milliseconds=ms)


def _ms(td: timedelta) -> int:
    return round(td.total_seconds() * 1000)


def to_srt(segments: list[Segment]) -> str:
    subs = [srt.Subtitle(i + 1, _td(s.start), _td(s.end), s.text.strip()) for i, s in enumerate(segments)]
    return srt.compose(subs, reindex=False)


def from_srt(text: str) -> list[Segment]:
    try:
        subs = list(srt.parse(text))
    except srt.SRTParseError as e:
        line = text[: e.expected_start].count("\n") + 1
        raise SubtitleFileError(f"Malformed SRT near line {line}: expected a cue number and times.", line) from e
    except ValueError as e:
        raise SubtitleFileError(f"Malformed SRT: {e}.") from e
    return [Segment(_ms(s.start), _ms(s.end), s.content) for s in subs]


# ----------------------------------------------------------------------------- WebVTT

_VTT_TIME = r"(?:\d+:)?\d{2}:\d{2}\.\d{3}"
_VTT_CUE = re.compile(rf"^({_VTT_TIME})\s+-->\s+({_VTT_TIME})(?:\s+.*)?$")
_TAG = re.compile(r"<[^>]+>")


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_unescape(text: str) -> str:
    text = _TAG.sub("", text)
    for a, b in (("&lt;", "<"), ("&gt;", ">"), ("&nbsp;", "\u00a0"), ("&lrm;", "\u200e"),
                 ("&rlm;", "\u200f"), ("&amp;", "&")):
        text = text.replace(a, b)
    return text


def _vtt_ms(t: str) -> int:
    parts = t.split(":")
    h = int(parts[0]) if len(parts) == 3 else 0
    m, rest = int(parts[-2]), parts[-1]
    s, milli = rest.split(".")
    return ((h * 60 + m) * 60 + int(s)) * 1000 + int(milli)


def to_vtt(segments: list[Segment], cue_ids: bool = False) -> str:
    out = ["WEBVTT", ""]
    for i, s in enumerate(segments):
        if cue_ids:
            out.append(str(i + 1))
        out.append(f"{format_ms(s.start)} --> {format_ms(s.end)}")
        out.append(_vtt_escape(s.text.strip()))
        out.append("")
    return "\n".join(out)


def from_vtt(text: str) -> list[Segment]:
    lines = text.split("\n")
    if not lines or not lines[0].startswith("WEBVTT"):
        raise SubtitleFileError("Malformed WebVTT at line 1: the file must start with WEBVTT.", 1)
    segments = []
    i = 1
    n = len(lines)
    while i < n:
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if line.startswith(("NOTE", "STYLE", "REGION")):
            while i < n and lines[i].strip():
                i += 1
            continue
        m = _VTT_CUE.match(line)
        if not m and i + 1 < n:  # a cue id line, then the timing line
            m2 = _VTT_CUE.match(lines[i + 1].strip())
            if m2:
                i += 1
                m = m2
        if not m:
            raise SubtitleFileError(f"Malformed WebVTT at line {i + 1}: expected 'start --> end'.", i + 1)
        start, end = _vtt_ms(m[1]), _vtt_ms(m[2])
        i += 1
        body = []
        while i < n and lines[i].strip():
            body.append(lines[i])
            i += 1
        segments.append(Segment(start, end, _vtt_unescape("\n".join(body))))
    return segments


# ----------------------------------------------------------------------------- TXT and JSON


def to_txt(segments: list[Segment]) -> str:
    return "".join(s.text.strip().replace("\n", " ") + "\n" for s in segments)


def document_to_dict(doc: Document) -> dict:
    return {
        "media": doc.media_path, "model": doc.model, "language": doc.language,
        "segments": [
            {"start": s.start, "end": s.end, "text": s.text,
             **({"words": [{"start": w.start, "end": w.end, "text": w.text, "probability": w.probability}
                           for w in s.words]} if s.words else {})}
            for s in doc.segments
        ],
    }


def document_from_dict(data: dict) -> Document:
    try:
        segs = [Segment(int(s["start"]), int(s["end"]), str(s["text"]),
                        [Word(int(w["start"]), int(w["end"]), str(w["text"]), float(w.get("probability", 1.0)))
                         for w in s.get("words", [])])
                for s in data["segments"]]
    except (KeyError, TypeError, ValueError) as e:
        raise SubtitleFileError(f"The JSON file is not a subtitle document (missing or bad field {e}).") from e
    return Document(segs, data.get("media"), data.get("model"), data.get("language"))


def to_json(doc: Document) -> str:
    return json.dumps(document_to_dict(doc), ensure_ascii=False, indent=2) + "\n"


def from_json(text: str) -> Document:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SubtitleFileError(f"Malformed JSON at line {e.lineno}: {e.msg}.", e.lineno) from e
    if not isinstance(data, dict):
        raise SubtitleFileError("The JSON file is not a subtitle document.")
    return document_from_dict(data)


# ----------------------------------------------------------------------------- by extension


def dumps(doc: Document, fmt: str) -> str:
    if fmt == "srt":
        return to_srt(doc.segments)
    if fmt == "vtt":
        return to_vtt(doc.segments)
    if fmt == "txt":
        return to_txt(doc.segments)
    if fmt == "json":
        return to_json(doc)
    raise SubtitleFileError(f"Unknown subtitle format '{fmt}'.")


def loads(text: str, fmt: str) -> Document:
    if fmt == "srt":
        return Document(from_srt(text))
    if fmt == "vtt":
        return Document(from_vtt(text))
    if fmt == "json":
        return from_json(text)
    raise SubtitleFileError(f"Cannot import .{fmt} files: use SRT, VTT or JSON.")


def save(doc: Document, path, fmt: Optional[str] = None) -> None:
    atomic_write(path, dumps(doc, fmt or format_of(path)))


def load(path, fmt: Optional[str] = None) -> Document:
    fmt = fmt or format_of(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as e:
        raise SubtitleFileError(f"The file {path} does not exist.") from e
    except OSError as e:
        raise SubtitleFileError(f"Cannot read {path}: {e.strerror or e}.") from e
    return loads(decode_text(data), fmt)
