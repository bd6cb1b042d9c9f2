"""A cue's text and the markup of each format.

In the document a cue's text is plain characters, lines split by "\\n", with
``<i>``, ``<b>``, ``<u>`` for styles; markup a format has of its own stays in it as
it came (VTT's ``<v Speaker>``, ``<c.class>`` and timestamps; ASS override blocks
such as ``{\\an8}``), so a file converted back to its own format keeps it. Each
writer keeps what its format can hold and drops the rest.
"""

from __future__ import annotations

import html
import re

STYLE_TAG = re.compile(r"</?[ibu]>")
FONT_TAG = re.compile(r"</?font(?:\s[^>]*)?>", re.I)
# WebVTT's cue tags: classes, voice, language, ruby, and timestamps.
VTT_TAG = re.compile(
    r"</?(?:[ibu]|c|v|lang|ruby|rt)(?:\.[^\s>.]+)*(?:[ \t][^>\n]*)?>|<(?:\d+:)?\d{2}:\d{2}\.\d{3}>"
)
ASS_BLOCK = re.compile(r"\{\\[^{}]*\}")  # an override block: starts with a backslash


def clean_lines(text: str) -> str:
    """No blank line inside a cue (a blank line ends one in SRT and VTT), no trailing
    spaces, no leading or trailing empty lines."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line.strip()).strip("\n")


def plain(text: str) -> str:
    """The words alone: every tag and override block removed."""
    return clean_lines(ASS_BLOCK.sub("", FONT_TAG.sub("", VTT_TAG.sub("", text))))


# ----------------------------------------------------------------------------- SRT


def to_srt(text: str) -> str:
    """What SRT holds: the styles and <font>; VTT-only tags and ASS overrides go. A
    "-->" in the text would read as a time line, so it loses a dash."""
    kept = ASS_BLOCK.sub("", re.sub(VTT_TAG, lambda m: m[0] if STYLE_TAG.fullmatch(m[0]) else "", text))
    return clean_lines(kept.replace("-->", "->"))


# ----------------------------------------------------------------------------- WebVTT


def to_vtt(text: str) -> str:
    """A cue payload: tags kept, other "<", ">" and "&" escaped (so no "-->" either)."""
    text = ASS_BLOCK.sub("", FONT_TAG.sub("", text))
    parts = VTT_TAG.split(text)
    tags = VTT_TAG.findall(text)
    out = [html.escape(parts[0], quote=False)]
    for tag, part in zip(tags, parts[1:]):
        out += [tag, html.escape(part, quote=False)]
    return clean_lines("".join(out))


def from_vtt(payload: str) -> str:
    """A cue payload to text: tags kept, character references decoded."""
    parts = VTT_TAG.split(payload)
    tags = VTT_TAG.findall(payload)
    out = [html.unescape(parts[0])]
    for tag, part in zip(tags, parts[1:]):
        out += [tag, html.unescape(part)]
    return "".join(out)


# ----------------------------------------------------------------------------- ASS

_ASS_STYLE = re.compile(r"\\([ibu])([01])(?![0-9])")
_ASS_BACKSLASH = re.compile(r"\\(?=[Nnh])")  # outside blocks only \N, \n and \h mean something


def from_ass(text: str) -> str:
    """ASS event text to cue text: \\N and \\n are line breaks, \\h a no-break
    space; {\\i1}/{\\i0} (and \\b, \\u) become <i>/</i>; other overrides stay."""

    def block(m: re.Match) -> str:
        inner = m[0][1:-1]
        styles = "".join(f"<{'' if on == '1' else '/'}{tag}>" for tag, on in _ASS_STYLE.findall(inner))
        rest = _ASS_STYLE.sub("", inner)
        return ("{" + rest + "}" if rest.strip("\\ ") else "") + styles

    out, last = [], 0
    for m in ASS_BLOCK.finditer(text):
        out.append(text[last : m.start()].replace("\\N", "\n").replace("\\n", "\n").replace("\\h", "\u00a0"))
        out.append(block(m))
        last = m.end()
    out.append(text[last:].replace("\\N", "\n").replace("\\n", "\n").replace("\\h", "\u00a0"))
    return "".join(out)


def to_ass(text: str) -> str:
    """Cue text to ASS event text: styles as overrides, line breaks as \\N; VTT-only
    tags and <font> go. A backslash that would read as \\N, \\n or \\h is shown as ⧵."""
    text = clean_lines(
        FONT_TAG.sub("", re.sub(VTT_TAG, lambda m: m[0] if STYLE_TAG.fullmatch(m[0]) else "", text))
    )
    out, last = [], 0
    for m in ASS_BLOCK.finditer(text):
        out += [_ASS_BACKSLASH.sub("\u29f5", text[last : m.start()]), m[0]]
        last = m.end()
    out.append(_ASS_BACKSLASH.sub("\u29f5", text[last:]))
    text = "".join(out)
    text = re.sub(r"<(/?)([ibu])>", lambda m: "{\\" + m[2] + ("0" if m[1] else "1") + "}", text)
    return text.replace("\n", "\\N")
