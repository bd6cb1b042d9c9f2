"""Media in, a subtitle ``Document`` out: the one place the stages are composed.

    media ─▶ audio (ffmpeg, 16 kHz) ─▶ speech detection ─▶ Whisper in 30-s windows
          ─▶ word timing ─▶ cues under a reading profile ─▶ Document (integer ms)

The CLI, the window's worker and batch workers all call ``transcribe_media`` with
the same ``Settings``, so a file gives the same subtitles wherever it is opened.
With default settings that is word-timed, speech-aware cues in the Default
profile; ``Settings(segments=True)`` gives Whisper's own segments instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from subtitler.core.cues import build_cues, segments_as_cues
from subtitler.core.document import Document
from subtitler.core.timecode import seconds_to_ms
from subtitler.engine.types import DecodedSegment, Progress, TranscribeOptions, TranscriptInfo
from subtitler.errors import Cancelled

DEFAULT_SEED = 0


@dataclass(frozen=True)
class Settings:
    """What a user chooses for a transcription (the CLI's flags, the window's boxes)."""

    model: Optional[str] = None  # a name, a Hugging Face repo or a folder; None: the default model
    language: Optional[str] = None  # None or "auto": detect
    task: str = "transcribe"  # or "translate" (to English)
    beam_size: int = 1
    temperature: Optional[float] = None  # None: 0, falling back to sampling when decoding fails
    profile: str = "default"  # the reading profile cues are made for
    segments: bool = False  # Whisper's raw segments instead of cues
    word_timestamps: bool = False  # with segments: word timings too (cues always have them)
    prompt: Optional[str] = None  # names, spelling, style
    seed: int = DEFAULT_SEED  # for sampling: the same input gives the same output

    def transcribe_options(self) -> TranscribeOptions:
        defaults = TranscribeOptions()
        return TranscribeOptions(
            language=None if self.language in (None, "auto") else self.language, task=self.task,
            beam_size=self.beam_size,
            temperature=defaults.temperature if self.temperature is None else (self.temperature,),
            word_timestamps=self.word_timestamps or not self.segments,
            initial_prompt=self.prompt, seed=self.seed)


def model_name(settings: Settings) -> str:
    """The model the settings ask for, the default one when they name none."""
    from subtitler.engine.whisper.catalog import default_model

    return settings.model or default_model()


def load_model(name: str, progress: Optional[Callable[[int, int], None]] = None):
    """Load a model by name, repo or folder (``progress(done, total)`` during a download)."""
    from subtitler.engine import runtime

    runtime.prepare()  # before MLX is first imported
    from subtitler.engine.whisper.load import load_model as load

    return load(name, progress=progress)


def make_document(decoded: list[DecodedSegment], settings: Settings, info: TranscriptInfo,
                  media_path: Optional[str], model: Optional[str]) -> Document:
    """The subtitle document of what was decoded: cues, or the raw segments."""
    duration = seconds_to_ms(info.duration)
    cues = segments_as_cues(decoded, settings.profile) if settings.segments \
        else build_cues(decoded, settings.profile, duration)
    return Document(cues, media_path, model, info.language, duration)


def transcribe_media(source, settings: Settings = Settings(), *, model=None, samples=None,
                     on_segment: Optional[Callable[[DecodedSegment], None]] = None,
                     progress: Optional[Callable[[Progress], None]] = None,
                     cancel: Optional[Callable[[], bool]] = None) -> Document:
    """Transcribe ``source`` (a media path) into a subtitle ``Document``.

    ``model``: a loaded model (load it once for many files), else ``settings.model``
    is loaded. ``samples``: the file's audio when the caller decoded it already.
    ``on_segment`` sees each segment as it is decoded; ``progress`` gets seconds done.
    ``cancel`` is polled between windows: on cancel, ``Cancelled`` is raised with
    ``.document`` holding the subtitles of what was decoded before it.
    """
    name = model_name(settings)
    if model is None:
        model = load_model(name)
    from subtitler.engine.transcribe import transcribe

    info = TranscriptInfo()
    decoded: list[DecodedSegment] = []
    media_path = None if source is None else str(Path(source))
    try:
        for seg in transcribe(model, samples if samples is not None else source, settings.transcribe_options(),
                              progress=progress, cancel=cancel, info=info):
            decoded.append(seg)
            if on_segment is not None:
                on_segment(seg)
    except Cancelled as e:
        e.document = make_document(decoded, settings, info, media_path, name)
        raise
    return make_document(decoded, settings, info, media_path, name)
