"""The transcription worker: a QObject on a QThread that runs the one pipeline
(``subtitler.pipeline.transcribe_media``) and streams its segments by signal."""

from __future__ import annotations

import traceback

from PySide6.QtCore import QObject, Signal, Slot

from subtitler.errors import Cancelled, SubtitlerError


class TranscribeWorker(QObject):
    status = Signal(str)
    segment = Signal(object)  # subtitler.engine.types.DecodedSegment
    progress = Signal(float, float, object)  # seconds done, total, eta seconds or None
    download = Signal(int, int)  # bytes done, total
    finished = Signal(str, str)  # "done" | "cancelled" | "failed", message

    def __init__(self, media_path: str, settings, model_cache: dict, samples=None):
        super().__init__()
        self.media_path = media_path
        self.samples = samples  # the audio, if the window has decoded it already
        self.settings = settings  # subtitler.pipeline.Settings
        self.model_name = settings.model
        self.model_cache = model_cache  # shared between runs: loading is slow
        self._cancel = False
        self.document = None  # the subtitles when finished: all of them, or those before a cancel

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
        from subtitler import pipeline

        try:
            model = self.model_cache.get(self.model_name)
            if model is None:
                self.model_cache.clear()  # one model in memory at a time: switching frees the last one
                self.status.emit(f"Loading model {self.model_name}…")
                model = pipeline.load_model(self.model_name, progress=self._downloaded)
                self.model_cache[self.model_name] = model
            self.status.emit("Transcribing…")
            self.document = pipeline.transcribe_media(
                self.media_path, self.settings, model=model, samples=self.samples,
                on_segment=self.segment.emit, progress=lambda p: self.progress.emit(p.done, p.total, p.eta),
                cancel=self.cancelled)
            self.finished.emit("done", "")
        except Cancelled as e:
            self.document = getattr(e, "document", None)
            self.finished.emit("cancelled", "Cancelled: the subtitles decoded so far are kept.")
        except SubtitlerError as e:
            self.finished.emit("failed", str(e))
        except Exception as e:  # a bug: still a message, never a dead window
            traceback.print_exc()
            self.finished.emit("failed", f"Transcription failed unexpectedly ({e.__class__.__name__}: {e}).")
