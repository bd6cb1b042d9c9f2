"""Media in, a subtitle ``Document`` out: the one place the stages are composed.

    media ─▶ audio (ffmpeg, 16 kHz) ─▶ speech detection ─▶ Whisper in 30-s windows
          ─▶ word timing ─▶ cues under a reading profile ─▶ Document (integer ms)

The CLI, the window's worker and batch workers all call ``transcribe_media`` with
the same ``Settings``, so a file gives the same subtitles wherever it is opened.
With default settings that is word-timed, speech-aware cues in the Default
profile; ``Settings(segments=True)`` gives Whisper's own segments instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from subtitler.core.cues import build_cues, segments_as_cues
from subtitler.core.document import Document
from subtitler.core.timecode import seconds_to_ms
from subtitler.engine.audio import MediaInfo  # noqa: F401  (what ``probe_media`` returns, for ui/)
from subtitler.engine.backends import COMPUTE_TYPES  # noqa: F401  (the choices, for the CLI and ui/)
from subtitler.engine.types import DecodedSegment, Progress, TranscribeOptions, TranscriptInfo
from subtitler.errors import Cancelled, TranscriptionCancelled

if TYPE_CHECKING:
    import numpy as np

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
    compute_type: str = "auto"  # the weights the CPU's decoding steps read: auto, float32, int8
    audio_track: int = 0  # which of the file's audio streams is transcribed, from 0

    def compute(self) -> str:
        """The compute type these settings run with here: "auto" resolved (int8 where the C
        kernels run and take this many beams, else float32)."""
        from subtitler.engine.backends import resolve_compute_type

        return resolve_compute_type(self.compute_type, self.beam_size)

    def transcribe_options(self) -> TranscribeOptions:
        defaults = TranscribeOptions()
        return TranscribeOptions(
            language=None if self.language in (None, "auto") else self.language,
            task=self.task,
            beam_size=self.beam_size,
            temperature=defaults.temperature if self.temperature is None else (self.temperature,),
            word_timestamps=self.word_timestamps or not self.segments,
            initial_prompt=self.prompt,
            seed=self.seed,
            compute_type=self.compute(),
        )


def model_name(settings: Settings) -> str:
    """The model the settings ask for, the default one when they name none."""
    from subtitler.engine.whisper.catalog import default_model

    return settings.model or default_model()


def load_model(name: str, progress: Optional[Callable[[Progress], None]] = None, compute_type: str = "auto"):
    """Load a model by name, repo or folder (``progress`` sees bytes done during a download),
    with its backend for ``compute_type`` made now (the weights it reads)."""
    from subtitler.engine import runtime

    runtime.prepare()  # before MLX is first imported
    from subtitler.engine.backends import load_for

    return load_for(name, compute_type, progress)


def make_document(
    decoded: list[DecodedSegment],
    settings: Settings,
    info: TranscriptInfo,
    media_path: Optional[str],
    model: Optional[str],
) -> Document:
    """The subtitle document of what was decoded: cues, or the raw segments."""
    duration = seconds_to_ms(info.duration)
    cues = (
        segments_as_cues(decoded, settings.profile)
        if settings.segments
        else build_cues(decoded, settings.profile, duration)
    )
    return Document(cues, media_path, model, info.language, duration)


def prepare_process() -> None:
    """Set up this process for the engine (the fast BLAS, malloc tuning) before anything
    imports MLX: the first call of every entry point."""
    from subtitler.engine import runtime

    runtime.prepare()


def machine_report(compute_type: str = "auto") -> dict[str, str]:
    """What this machine runs the engine with (``subtitler doctor``, the window's About):
    versions, the BLAS, the CPU path, what ``compute_type`` runs as, ffmpeg and the models at hand."""
    import platform

    from subtitler import __version__
    from subtitler.errors import SubtitlerError

    prepare_process()
    import mlx.core as mx

    from subtitler.engine.audio import ffmpeg_exe
    from subtitler.engine.backends import describe_compute_type
    from subtitler.engine.kernels import blas, native
    from subtitler.engine.whisper.catalog import default_model, offline_models

    report = {
        "subtitler": __version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
    }
    report.update(blas.describe())
    report["mlx"] = f"{mx.__version__} on {mx.default_device()}"
    kernels = "C kernels" if native.available() else "MLX only (not built, or SUBTITLER_CPU_KERNELS=0)"
    report["cpu kernels"] = kernels
    try:
        report["ffmpeg"] = ffmpeg_exe()
    except SubtitlerError as e:
        report["ffmpeg"] = str(e)
    report["compute type"] = describe_compute_type(compute_type)
    report["default model"] = default_model()
    report["offline models"] = ", ".join(offline_models()) or "none"
    return report


def probe_media(path: str) -> MediaInfo:
    """What ffmpeg says of a media file (duration, streams); ``MediaError`` when unreadable."""
    from subtitler.engine.audio import probe

    return probe(path)


def read_samples(path: str, info: Optional[MediaInfo] = None, cancel=None, track: int = 0) -> np.ndarray:
    """A media file's audio (its audio stream ``track``, from 0), 16 kHz mono float32,
    for the waveform and the model."""
    from subtitler.engine.audio import load_audio

    return load_audio(path, info=info, cancel=cancel, track=track)


def waveform_peaks(samples: np.ndarray, hop: int) -> np.ndarray:
    """The largest magnitude of each ``hop`` samples, for a waveform (no copy of the audio)."""
    from subtitler.engine.audio import peaks

    return peaks(samples, hop)


def find_speech(samples: np.ndarray, cancel=None) -> np.ndarray:
    """The speech mask (per 10 ms) a transcription of these samples reads."""
    from subtitler.engine.vad import speech_mask

    return speech_mask(samples, cancel=cancel)


def languages() -> dict[str, str]:
    """Whisper's languages: code -> name."""
    from subtitler.engine.whisper.languages import LANGUAGES

    return dict(LANGUAGES)


def local_models() -> list[str]:
    """The models usable without a download: installed offline ones, then those in the cache."""
    from subtitler.engine.whisper.catalog import downloaded_models, offline_models

    offline = offline_models()
    return offline + [m for m in downloaded_models() if m not in offline]


class WarningsKept(logging.Handler):
    """The package logger's warnings on this thread during a ``with`` block, kept for the
    caller to show with the result (the CLI beside the file's name, the window in a
    dialog) and marked ``kept``, so a handler that prints as they come can pass them by."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            record.kept = True
            self.messages.append(record.getMessage())

    def __enter__(self) -> WarningsKept:
        logging.getLogger("subtitler").handlers.insert(0, self)  # first: it marks what it keeps
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger("subtitler").removeHandler(self)


@dataclass
class Audio:
    """A file's audio as the model's stages take it, read before the model is needed."""

    samples: np.ndarray  # 16 kHz mono float32
    speech: Optional[
        np.ndarray
    ]  # its speech mask (per 10 ms, ``vad.speech_mask``), or None: found when needed


def read_audio(source, settings: Settings = Settings(), cancel: Optional[Callable[[], bool]] = None) -> Audio:
    """The stages before the model: the audio through ffmpeg, with speech detection fed
    its blocks as they arrive. They need no model, so a caller can run them while the
    model loads (``load_model_reading``)."""
    from subtitler.engine.audio import load_audio
    from subtitler.engine.silero import SpeechStream
    from subtitler.engine.transcribe import detect_speech, uses_speech

    options = settings.transcribe_options()
    stream = SpeechStream() if uses_speech(options) else None
    samples = load_audio(
        source, cancel=cancel, track=settings.audio_track, on_block=stream.feed if stream else None
    )
    return Audio(samples, detect_speech(samples, options, stream.finish() if stream else None))


def load_model_reading(name: str, source, settings: Settings, cancel=None):
    """``load_model(name)`` with ``read_audio(source)`` on a thread beside it: the model,
    and a function that gives the ``Audio`` (or raises what reading it raised). The
    loading reads files and the reading waits on ffmpeg, so on two cores they share well."""
    from concurrent.futures import ThreadPoolExecutor

    from subtitler.engine import runtime

    runtime.prepare()  # the BLAS the speech detection uses, before MLX
    pool = ThreadPoolExecutor(1, thread_name_prefix="read-audio")
    reading = pool.submit(read_audio, source, settings, cancel)
    pool.shutdown(wait=False)  # its thread ends with the reading, read or not
    return load_model(name, compute_type=settings.compute()), reading.result


def transcribe_media(
    source,
    settings: Settings = Settings(),
    *,
    model=None,
    audio: Optional[Audio] = None,
    on_segment: Optional[Callable[[DecodedSegment], None]] = None,
    progress: Optional[Callable[[Progress], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
) -> Document:
    """Transcribe ``source`` (a media path) into a subtitle ``Document``.

    ``model``: a loaded model (load it once for many files), else ``settings.model``
    is loaded, with the audio read beside it. ``audio``: the file's audio (and its
    speech mask, if found) when the caller has read it already, as ``read_audio`` does.
    ``on_segment`` sees each segment as it is decoded; ``progress`` gets seconds done.
    ``cancel`` is polled between windows: on cancel, ``TranscriptionCancelled`` is raised,
    its ``document`` holding the subtitles of what was decoded before it.
    """
    name = model_name(settings)
    audio_of = None
    if model is None:
        if audio is None and source is not None:
            model, audio_of = load_model_reading(name, source, settings, cancel)
        else:
            model = load_model(name)
    from subtitler.engine.transcribe import transcribe

    decoded: list[DecodedSegment] = []
    run = None
    media_path = None if source is None else str(Path(source))
    try:
        if audio_of is not None:
            audio = audio_of()
        elif audio is None and source is not None:  # a model given: the audio read here, as chosen
            audio = read_audio(source, settings, cancel)
        run = transcribe(
            model,
            audio.samples if audio is not None else source,
            settings.transcribe_options(),
            progress=progress,
            cancel=cancel,
            speech=audio.speech if audio is not None else None,
        )
        for seg in run:
            decoded.append(seg)
            if on_segment is not None:
                on_segment(seg)
    except Cancelled as e:
        info = run.info if run is not None else TranscriptInfo()
        raise TranscriptionCancelled(make_document(decoded, settings, info, media_path, name)) from e
    return make_document(decoded, settings, run.info, media_path, name)
