"""Advanced SubStation (.ass) and SubStation Alpha (.ssa), through ``pysubs2``.

Reading keeps every Dialogue event as a cue (its style, layer, actor, margins and
effect in ``extra["ass"]``; override tags in its text) and the rest of the script
(script info, styles, fonts, graphics, Comment events) in ``doc.header["ass"]``,
so ASS converted to ASS keeps them. A document from elsewhere gets a Default style
sized for the video's picture (1920 x 1080 when its size is not known).
"""

from __future__ import annotations

import pysubs2

import subtitler.core.formats.markup as markup
from subtitler.core.document import Cue, Document
from subtitler.core.formats.subrip import times
from subtitler.errors import SubtitleFileError

_EVENT_FIELDS = ("style", "layer", "name", "marginl", "marginr", "marginv", "effect")
_DEFAULTS = {
    "style": "Default",
    "layer": 0,
    "name": "",
    "marginl": 0,
    "marginr": 0,
    "marginv": 0,
    "effect": "",
}


def read(text: str) -> Document:
    try:
        subs = pysubs2.SSAFile.from_string(text)
    except Exception as e:  # pysubs2 raises several kinds for a malformed script
        raise SubtitleFileError(f"Malformed Advanced SubStation file: {e}.") from e
    if subs.format not in ("ass", "ssa"):
        raise SubtitleFileError("This is not an Advanced SubStation (.ass/.ssa) script.")
    cues = []
    for e in subs.events:
        if e.is_comment:
            continue
        extra = {k: getattr(e, k) for k in _EVENT_FIELDS if getattr(e, k) != _DEFAULTS[k]}
        cues.append(Cue(e.start, e.end, markup.from_ass(e.text), extra={"ass": extra} if extra else {}))
    subs.events = [e for e in subs.events if e.is_comment]
    doc = Document(cues)
    doc.header["ass"] = {"script": subs.to_string("ass")}
    return doc


def _new_script(video_size) -> pysubs2.SSAFile:
    width, height = video_size or (1920, 1080)
    subs = pysubs2.SSAFile()
    subs.info.update(
        {"PlayResX": str(width), "PlayResY": str(height), "ScaledBorderAndShadow": "yes", "WrapStyle": "0"}
    )
    scale = height / 1080
    subs.styles["Default"] = pysubs2.SSAStyle(
        fontname="Arial",
        fontsize=round(54 * scale),
        outline=round(2.5 * scale, 1),
        shadow=round(1.0 * scale, 1),
        marginl=round(90 * scale),
        marginr=round(90 * scale),
        marginv=round(50 * scale),
        alignment=pysubs2.Alignment.BOTTOM_CENTER,
    )
    return subs


def write(doc: Document, fmt: str = "ass") -> str:
    kept = doc.header.get("ass")
    subs = pysubs2.SSAFile.from_string(kept["script"]) if kept else _new_script(doc.video_size)
    comments = list(subs.events)
    events = []
    for s in doc.cues:
        start, end = times(s)
        start = round(start, -1)  # ASS holds centiseconds: the cue must still end after it starts
        end = max(round(end, -1), start + 10)
        fields = {**_DEFAULTS, **s.extra.get("ass", {})}
        events.append(pysubs2.SSAEvent(start=start, end=end, text=markup.to_ass(s.text), **fields))
    subs.events = events + comments
    return subs.to_string(fmt)
