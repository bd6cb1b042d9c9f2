"""Subtitles into a video, with ffmpeg: a soft track (``mux``) or burned into the picture (``burn``).

A soft track copies the picture and the sound as they are and adds the subtitles as a
stream a player can switch: SRT or ASS in Matroska, ``mov_text`` in MP4. Burning draws
them with libass (the ffmpeg that ``imageio-ffmpeg`` ships has it, and libx264) in the
reading profile's look, or in an ASS file's own styles. Either way the output is written
to a temporary file beside it and renamed when ffmpeg succeeds, so a cancelled or failed
export leaves nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from subtitler.core import formats
from subtitler.core.document import Document
from subtitler.core.formats.encoding import temporary_beside
from subtitler.engine.audio import MediaInfo, ffmpeg_exe, ffmpeg_path, probe_any
from subtitler.engine.types import Progress
from subtitler.errors import Cancelled, MediaError

SOFT_CODECS = {
    ".mkv": None,
    ".mp4": "mov_text",
    ".m4v": "mov_text",
    ".mov": "mov_text",
}  # None: by subtitle format


@dataclass(frozen=True)
class BurnStyle:
    """How burned-in subtitles look (ignored for an ASS file, which has its own styles)."""

    font_size: float = 0.05  # of the picture's height
    outline: float = 2.0  # pixels at 288 lines (libass scales it with the picture)
    bottom_margin: float = 0.06  # of the picture's height
    font: str = "Sans"

    def force_style(self) -> str:
        """libass's ``force_style`` for SRT input, whose script is 288 lines high."""
        return (
            f"FontName={self.font},FontSize={self.font_size * 288:.1f},Outline={self.outline:g},"
            f"MarginV={round(self.bottom_margin * 288)},BorderStyle=1,Shadow=0"
        )


def language_tag(language: Optional[str]) -> Optional[str]:
    """The ISO 639-2 code a container's language tag holds ("en" -> "eng", "fr" -> "fre"),
    or None when unknown."""
    if not language:
        return None
    import pycountry

    code = language.lower()
    lang = pycountry.languages.get(alpha_2=code) if len(code) == 2 else pycountry.languages.get(alpha_3=code)
    if lang is None:
        return None
    return getattr(lang, "bibliographic", None) or lang.alpha_3


def _check(video: str, out: str, overwrite: bool) -> MediaInfo:
    info = probe_any(video)
    if not info.has_video:
        raise MediaError(f"{os.path.basename(video)} has no video stream to put subtitles on.")
    target = Path(out)
    if target.exists() and not overwrite:
        raise MediaError(f"{out} exists already (use --overwrite to replace it).")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise MediaError(f"Cannot write {out}: the folder {folder} is not writable.")
    return info


def _run(cmd: list[str], out: str, duration: float, progress, cancel) -> None:
    """Run ffmpeg writing to a temporary file beside ``out``, reporting its progress;
    rename it to ``out`` on success, remove it on failure or cancel."""
    target = Path(out)
    part = temporary_beside(target, target.suffix)  # (ffmpeg takes the container from the name)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-y",
            "-progress",
            "pipe:1",
            "-nostats",
            *cmd,
            ffmpeg_path(part),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    try:
        for line in proc.stdout:
            if cancel is not None and cancel():
                proc.kill()
                proc.wait()
                raise Cancelled()
            if line.startswith("out_time_us=") and progress is not None and duration > 0:
                try:
                    done = int(line.split("=", 1)[1]) / 1e6
                except ValueError:
                    continue
                progress(Progress(min(done, duration), duration, time.perf_counter() - started))
        err = proc.stderr.read()
        if cancel is not None and cancel():  # asked while ffmpeg finished: nothing is written
            raise Cancelled()
        if proc.wait() != 0:
            last = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or ["ffmpeg failed"]
            raise MediaError(f"Could not write {target.name}: {last[0]}")
        os.replace(part, out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if os.path.exists(part):
            os.unlink(part)


def _subtitle_file(
    subtitles: str | Document, folder: str, fmt: str, loaded: Optional[Document] = None
) -> str:
    """A subtitle file ffmpeg reads: ``subtitles`` as it is when already ``fmt``, else
    written as ``fmt`` into ``folder`` (our reader handles every format and encoding).
    ``loaded``: the file's document when the caller has read it already."""
    if isinstance(subtitles, str) and formats.format_of(subtitles) == fmt:
        return subtitles
    doc = subtitles if isinstance(subtitles, Document) else loaded or formats.load(subtitles)
    path = os.path.join(folder, f"subtitles.{fmt}")
    formats.save(doc, path, fmt)
    return path


def mux(
    video: str,
    subtitles: str | Document,
    out: str,
    language: Optional[str] = None,
    overwrite: bool = False,
    progress: Optional[Callable[[Progress], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
) -> None:
    """Add ``subtitles`` (a file or a Document) to ``video`` as a soft track in ``out``
    (.mkv, .mp4), copying the picture and the sound without re-encoding."""
    suffix = Path(out).suffix.lower()
    if suffix not in SOFT_CODECS:
        raise MediaError(
            f"A soft subtitle track goes into .mkv or .mp4, not {suffix or 'a file without extension'}."
        )
    info = _check(video, out, overwrite)
    source_fmt = (
        formats.format_of(subtitles) if isinstance(subtitles, str) else "srt"
    )  # a Document is written as SRT
    fmt = "ass" if suffix == ".mkv" and source_fmt in ("ass", "ssa") else "srt"
    codec = SOFT_CODECS[suffix] or fmt
    loaded = None
    if language is None:  # the transcription's, when the subtitles carry it (a Document, our JSON)
        loaded = subtitles if isinstance(subtitles, Document) else formats.load(subtitles)
        language = loaded.language
    tag = language_tag(language)
    with tempfile.TemporaryDirectory() as tmp:
        sub = _subtitle_file(subtitles, tmp, fmt, loaded)
        cmd = ["-i", ffmpeg_path(video), "-i", ffmpeg_path(sub), "-map", "0:v", "-map", "0:a?", "-map", "1:0"]
        cmd += ["-c:v", "copy", "-c:a", "copy", "-c:s", codec]
        if tag:
            cmd += ["-metadata:s:s:0", f"language={tag}"]
        _run(cmd, out, info.duration, progress, cancel)


def _filter_path(path: str) -> str:
    """A path as a filter option's value inside ``-vf``, escaped at both of ffmpeg's levels:
    the option's (backslash, quote, colon), then the filtergraph's (those, brackets, comma,
    semicolon). Quoting alone let a name with a quote or a comma break the graph."""
    if os.sep == "\\":
        path = path.replace("\\", "/")  # Windows: ffmpeg takes forward slashes
    value = path.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\:")
    for c in ("\\", "'", "[", "]", ",", ";"):
        value = value.replace(c, "\\" + c)
    return value


def burn(
    video: str,
    subtitles: str | Document,
    out: str,
    style: BurnStyle = BurnStyle(),
    overwrite: bool = False,
    crf: int = 18,
    progress: Optional[Callable[[Progress], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
) -> None:
    """Draw ``subtitles`` into ``video``'s picture (libass, then libx264), the sound copied."""
    info = _check(video, out, overwrite)
    is_ass = isinstance(subtitles, str) and formats.format_of(subtitles) in ("ass", "ssa")
    with tempfile.TemporaryDirectory() as tmp:
        sub = _subtitle_file(subtitles, tmp, "ass" if is_ass else "srt")
        vf = f"subtitles=filename={_filter_path(os.path.abspath(sub))}"
        if not is_ass:
            vf += f":force_style='{style.force_style()}'"
        cmd = ["-i", ffmpeg_path(video), "-map", "0:v:0", "-map", "0:a?", "-vf", vf]
        cmd += [
            "-c:v",
            "libx264",
            "-crf",
            str(crf),
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "copy",
        ]
        _run(cmd, out, info.duration, progress, cancel)
