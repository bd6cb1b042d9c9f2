"""WebVTT (.vtt), through ``webvtt-py`` (0.6+), which reads per the W3C spec: the
header line with its text, header metadata (YouTube's ``Kind:``/``Language:``),
STYLE, REGION and NOTE blocks, cue identifiers and settings, and keeps each as
written, so a VTT file converted to VTT comes back the same. Cue payloads keep
their tags (``<v Speaker>``, ``<c.class>``, timestamps) in the cue's text.

What the document keeps: ``doc.header["vtt"]`` (the header line's text, metadata,
styles, regions, comments) and each cue's ``extra["vtt"]`` (id, settings, notes).
"""

from __future__ import annotations

import webvtt
from webvtt.errors import MalformedFileError
from webvtt.models import Region, Style

import subtitler.core.formats.markup as markup
from subtitler.core.document import Cue, Document
from subtitler.core.formats.subrip import times
from subtitler.core.timecode import format_ms, parse_ms
from subtitler.errors import SubtitleFileError


def read(text: str) -> Document:
    if not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise SubtitleFileError("Malformed WebVTT at line 1: the file must start with WEBVTT.", 1)
    try:
        vtt = webvtt.from_string(text)
    except MalformedFileError as e:
        raise SubtitleFileError(f"Malformed WebVTT: {e}.") from e
    cues = []
    for c in vtt.captions:
        extra = {
            k: v
            for k, v in (
                ("id", c.identifier),
                ("settings", str(c.settings) if c.settings else ""),
                ("notes", list(c.comments)),
            )
            if v
        }
        cues.append(
            Cue(
                parse_ms(c.start),
                parse_ms(c.end),
                markup.from_vtt("\n".join(c.lines)),
                extra={"vtt": extra} if extra else {},
            )
        )
    doc = Document(cues)
    header = {
        "title": vtt.header_text or "",
        "metadata": list(vtt.metadata),
        "styles": [s.text for s in vtt.styles],
        "regions": [str(r) for r in vtt.regions],
        "header_comments": list(vtt.header_comments),
        "footer_comments": list(vtt.footer_comments),
    }
    doc.header["vtt"] = {k: v for k, v in header.items() if v}
    return doc


def write(doc: Document) -> str:
    header = doc.header.get("vtt", {})
    captions = []
    for s in doc.cues:
        start, end = times(s)
        extra = s.extra.get("vtt", {})
        payload = markup.to_vtt(s.text)
        caption = webvtt.Caption(
            format_ms(start),
            format_ms(end),
            payload.split("\n") if payload else [],
            identifier=_clean_id(extra.get("id")),
            settings=extra.get("settings") or None,
        )
        caption.comments = [n for n in extra.get("notes", []) if "-->" not in n]
        captions.append(caption)
    vtt = webvtt.WebVTT(
        captions=captions,
        styles=[Style(t) for t in header.get("styles", [])],
        regions=[Region.from_string(t) for t in header.get("regions", [])],
        header_text=header.get("title") or None,
        metadata=header.get("metadata") or None,
        header_comments=header.get("header_comments"),
        footer_comments=header.get("footer_comments"),
    )
    return vtt.content


def _clean_id(identifier):
    """A cue id cannot hold "-->" or a line break."""
    if not identifier:
        return None
    return identifier.replace("-->", "->").replace("\n", " ").strip() or None
