"""Plain text (.txt, write only) and our JSON (.json): the document as it is, words,
per-cue extras and format headers included."""

from __future__ import annotations

import json

import subtitler.core.formats.markup as markup
from subtitler.core.document import Cue, Document, Word
from subtitler.errors import SubtitleFileError


def write_txt(doc: Document) -> str:
    return "".join(markup.plain(s.text).replace("\n", " ") + "\n" for s in doc.cues)


def document_to_dict(doc: Document) -> dict:
    data = {
        "media": doc.media_path,
        "model": doc.model,
        "language": doc.language,
        "segments": [
            {
                "start": s.start,
                "end": s.end,
                "text": s.text,
                **(
                    {
                        "words": [
                            {"start": w.start, "end": w.end, "text": w.text, "probability": w.probability}
                            for w in s.words
                        ]
                    }
                    if s.words
                    else {}
                ),
                **({"extra": s.extra} if s.extra else {}),
            }
            for s in doc.cues
        ],
    }
    if doc.header:
        data["header"] = doc.header
    if doc.video_size:
        data["video_size"] = list(doc.video_size)
    return data


def document_from_dict(data: dict) -> Document:
    try:
        segs = [
            Cue(
                int(s["start"]),
                int(s["end"]),
                str(s["text"]),
                [
                    Word(int(w["start"]), int(w["end"]), str(w["text"]), float(w.get("probability", 1.0)))
                    for w in s.get("words", [])
                ],
                dict(s.get("extra", {})),
            )
            for s in data["segments"]
        ]
    except (KeyError, TypeError, ValueError) as e:
        raise SubtitleFileError(
            f"The JSON file is not a subtitle document (missing or bad field {e})."
        ) from e
    doc = Document(segs, data.get("media"), data.get("model"), data.get("language"))
    doc.header = dict(data.get("header") or {})
    if data.get("video_size"):
        doc.video_size = tuple(data["video_size"])
    return doc


def write_json(doc: Document) -> str:
    return json.dumps(document_to_dict(doc), ensure_ascii=False, indent=2) + "\n"


def read_json(text: str) -> Document:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SubtitleFileError(f"Malformed JSON at line {e.lineno}: {e.msg}.", e.lineno) from e
    if not isinstance(data, dict):
        raise SubtitleFileError("The JSON file is not a subtitle document.")
    return document_from_dict(data)
