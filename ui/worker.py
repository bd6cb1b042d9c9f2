"""The transcription worker: a QObject on a QThread that streams segments by signal."""

from __future__ import annotations

import traceback

from PySide6.QtCore import QObject, Signal, Slot

from subtitler.errors import Cancelled, SubtitlerError


class TranscribeWorker(QObject):
    status = Signal(str)
    segment = Signal(object)  # subtitler.transcribe.DecodedSegment
    progress = Signal(float, float, object)  # seconds done, total, eta seconds or None
    download = Signal(int, int)  # bytes done, total
    finished = Signal(str, str)  # "done" | "cancelled" | "failed", message

    def __init__(self, media_path: str, model_name: str, language: str | None, task: str,
                 model_cache: dict, samples=None):
        super().__init__()
        self.media_path = media_path
        self.samples = samples  # the audio, if the window has decoded it already
        self.model_name = model_name
        self.language = language
        self.task = task
        self.model_cache = model_cache  # shared between runs: loading is slow
        self._cancel = False
        self.info = None

    def _downloaded(self, done: int, total: int) -> None:
        """Download progress from huggingface_hub; raising here stops the download."""
        if self._cancel:
            raise Cancelled()
        self.download.emit(done, total)
        self.status.emit(f"Downloading {self.model_name}: {done / 1e6:.0f} of {total / 1e6:.0f} MB")

    def cancel(self) -> None:
        self._cancel = True

    def cancelled(self) -> bool:
        return self._cancel

    @Slot()
    def run(self) -> None:
        try:
            from subtitler.transcribe import TranscribeOptions, TranscriptInfo, transcribe
            from subtitler.whisper import load_model

            model = self.model_cache.get(self.model_name)
            if model is None:
                self.status.emit(f"Loading model {self.model_name}…")
                model = load_model(self.model_name, progress=self._downloaded)
                self.model_cache[self.model_name] = model
            self.status.emit("Transcribing…")
            self.info = TranscriptInfo()
            options = TranscribeOptions(language=self.language, task=self.task, word_timestamps=True)
            source = self.samples if self.samples is not None else self.media_path
            for seg in transcribe(model, source, options,
                                  progress=lambda p: self.progress.emit(p.done, p.total, p.eta),
                                  cancel=self.cancelled, info=self.info):
                self.segment.emit(seg)
                if self._cancel:
                    raise Cancelled()
            self.finished.emit("done", "")
        except Cancelled:
            self.finished.emit("cancelled", "Cancelled: the subtitles decoded so far are kept.")
        except SubtitlerError as e:
            self.finished.emit("failed", str(e))
        except Exception as e:  # a bug: still a message, never a dead window
            traceback.print_exc()
            self.finished.emit("failed", f"Transcription failed unexpectedly ({e.__class__.__name__}: {e}).")
