"""Project files and autosave.

A project is the document as JSON (``<media>.subtitler.json`` beside the media
by default). Autosaves go to the app's data folder, keyed by the media path;
reopening a media file whose autosave is newer than its project offers recovery.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

from subtitler.core import formats
from subtitler.core.document import Document


def data_dir() -> Path:
    base = (
        os.environ.get("SUBTITLER_DATA_DIR")
        or os.environ.get("XDG_DATA_HOME")
        or Path.home() / ".local" / "share"
    )
    d = Path(base) / "subtitler" if not os.environ.get("SUBTITLER_DATA_DIR") else Path(base)
    d.mkdir(parents=True, exist_ok=True)
    return d


def project_path(media_path: str) -> Path:
    return Path(str(media_path) + ".subtitler.json")


def autosave_path(media_path: Optional[str]) -> Path:
    key = hashlib.sha1(os.path.abspath(media_path or "untitled").encode()).hexdigest()[:16]
    d = data_dir() / "autosave"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{Path(media_path or 'untitled').name}.{key}.json"


def save_project(doc: Document, path=None) -> Path:
    path = Path(path) if path else project_path(doc.media_path or "untitled")
    formats.atomic_write(path, formats.to_json(doc))
    return path


def load_project(path) -> Document:
    return formats.load(path, "json")


def autosave(doc: Document) -> Path:
    path = autosave_path(doc.media_path)
    formats.atomic_write(path, formats.to_json(doc))
    return path


def recovery_for(media_path: str) -> Optional[Path]:
    """The autosave of ``media_path`` if it is newer than its saved project."""
    auto = autosave_path(media_path)
    if not auto.exists():
        return None
    saved = project_path(media_path)
    if saved.exists() and saved.stat().st_mtime >= auto.stat().st_mtime:
        return None
    return auto


def discard_autosave(media_path: Optional[str]) -> None:
    try:
        autosave_path(media_path).unlink()
    except FileNotFoundError:
        pass
