"""Transcription in the window: a worker on a QThread that runs the one pipeline
(``subtitler.pipeline.transcribe_media``) and streams its segments by signal, and
the controller that starts, cancels and finishes it."""

from __future__ import annotations

import traceback
from typing import Optional

from PySide6.QtCore import QObject, QThread, Signal, Slot

from subtitler import pipeline
from subtitler.core.cues import cue_from_decoded, has_letter, wrap_lines
from subtitler.core.timecode import format_ms, seconds_to_ms
from subtitler.errors import Cancelled, SubtitlerError, TranscriptionCancelled


class TranscribeWorker(QObject):
    status = Signal(str)
    segment = Signal(object)  # subtitler.engine.types.DecodedSegment
    progress = Signal(float, float, object)  # seconds done, total, eta seconds or None
    download = Signal(int, int)  # bytes done, total
    finished = Signal(str, str)  # "done" | "cancelled" | "failed", message

    def __init__(self, media_path: str, settings, model_cache: dict, samples=None, speech=None):
        super().__init__()
        self.media_path = media_path
        self.samples = samples  # the audio, if the window has decoded it already
        self.speech = speech  # and its speech mask, if found already
        self.settings = settings  # subtitler.pipeline.Settings
        self.model_name = settings.model
        self.model_cache = model_cache  # shared between runs: loading is slow
        self._cancel = False
        self.document = None  # the subtitles when finished: all of them, or those before a cancel

    def _downloaded(self, p) -> None:
        """Download progress (a ``Progress`` in bytes); raising here stops the download."""
        if self._cancel:
            raise Cancelled()
        self.download.emit(int(p.done), int(p.total))
        self.status.emit(f"Downloading {self.model_name}: {p.done / 1e6:.0f} of {p.total / 1e6:.0f} MB")

    def cancel(self) -> None:
        self._cancel = True

    def cancelled(self) -> bool:
        return self._cancel

    @Slot()
    def run(self) -> None:
        try:
            # A model is loaded for its compute type (int8 lets its float32 weights go).
            key = (self.model_name, self.settings.compute())
            model = self.model_cache.get(key)
            if model is None:
                self.model_cache.clear()  # one model in memory at a time: switching frees the last one
                self.status.emit(f"Loading model {self.model_name}…")
                model = pipeline.load_model(
                    self.model_name, progress=self._downloaded, compute_type=self.settings.compute()
                )
                self.model_cache[key] = model
            self.status.emit("Transcribing…")
            with pipeline.WarningsKept() as warnings:
                self.document = pipeline.transcribe_media(
                    self.media_path,
                    self.settings,
                    model=model,
                    audio=None if self.samples is None else pipeline.Audio(self.samples, self.speech),
                    on_segment=self.segment.emit,
                    progress=lambda p: self.progress.emit(p.done, p.total, p.eta),
                    cancel=self.cancelled,
                )
            self.finished.emit("done", " ".join(warnings.messages))
        except TranscriptionCancelled as e:
            self.document = e.document
            self.finished.emit("cancelled", str(e))
        except Cancelled:
            self.document = None
            self.finished.emit("cancelled", "Cancelled: the subtitles decoded so far are kept.")
        except SubtitlerError as e:
            self.finished.emit("failed", str(e))
        except Exception as e:  # a bug: still a message, never a dead window
            traceback.print_exc()
            self.finished.emit("failed", f"Transcription failed unexpectedly ({e.__class__.__name__}: {e}).")


class TranscriptionController(QObject):
    """Runs one transcription at a time on a QThread and relays what it reports."""

    segment = Signal(object)  # DecodedSegment, as decoded
    progress = Signal(float, float, object)  # seconds done, total, eta seconds or None
    download = Signal(int, int)  # bytes done, total
    status = Signal(str)
    finished = Signal(str, str, object)  # "done" | "cancelled" | "failed", message, Document or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model_cache: dict = {}  # (name, compute type) -> the model, kept between runs (one at a time)
        self.thread: Optional[QThread] = None
        self.worker: Optional[TranscribeWorker] = None

    @property
    def running(self) -> bool:
        return self.thread is not None

    def start(self, media_path: str, settings, samples=None, speech=None) -> None:
        if self.running:
            return
        self.thread = QThread(self)
        self.worker = TranscribeWorker(media_path, settings, self.model_cache, samples, speech)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.segment.connect(self.segment)
        self.worker.progress.connect(self.progress)
        self.worker.download.connect(self.download)
        self.worker.status.connect(self.status)
        self.worker.finished.connect(self._finished)
        self.thread.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def stop(self) -> None:
        """Cancel and wait (cancel is polled every few tokens, so this is short)."""
        self.cancel()
        if self.thread is not None:
            self.thread.quit()
            self.thread.wait()

    def _finished(self, status: str, message: str) -> None:
        worker, thread = self.worker, self.thread
        self.worker = self.thread = None
        thread.quit()
        thread.wait()
        worker.deleteLater()
        self.finished.emit(status, message, worker.document)


MODELS = ["tiny.en", "base", "tiny", "base.en", "small", "small.en", "medium", "large-v3", "large-v3-turbo"]


def model_choices() -> list[str]:
    """The model picker's list: installed offline models, then downloaded ones, then the hub's."""
    from subtitler.pipeline import local_models

    local = local_models()
    return local + [m for m in MODELS if m not in local]


class TranscriptionPanel:
    """The window's side of a transcription, composed into it (``window.transcribing``):
    start and cancel, the live rows, progress and the outcome. It reaches the window's
    parts through ``window``, and listens to the window's ``TranscriptionController``."""

    def __init__(self, window):
        self.w = window
        t = window.transcription
        t.segment.connect(self.on_segment)
        t.progress.connect(self.on_progress)
        t.download.connect(self.on_download)
        t.status.connect(lambda text: window.statusBar().showMessage(text))
        t.finished.connect(self.on_finished)

    def transcribe(self) -> None:
        if self.w.media_path is None or self.w.transcription.running:
            return
        if len(self.w.doc) and self.w.session.dirty:
            self.w.autosave()
        model_name = self.w.modelCombo.currentText().strip()
        self.w.settings.setValue("model", model_name)
        self.w.session.set_document(type(self.w.doc)(model=model_name))
        self.w.progressBar.setValue(0)
        self.w.transcription.start(
            self.w.media_path, self.settings_for(model_name), self.w.session.samples, self.w.session.speech
        )
        self.w._set_running(True)

    def settings_for(self, model_name: str):
        """The pipeline settings the window's boxes stand for (the CLI's flags, the same defaults)."""
        return pipeline.Settings(
            model=model_name,
            language=None if self.w.english_only() else self.w.languageCombo.currentData(),  # .en: English
            task=self.w.taskCombo.currentData(),
            profile=self.w.table_model.profile.name,
            compute_type=self.w.computeCombo.currentData(),
            audio_track=self.w.session.audio_track,
        )

    def _no_speech(self) -> str:
        tracks = len(self.w.session.media.audio_tracks) if self.w.session.media else 1
        if tracks > 1:
            return (
                f"Done: no speech was found in audio track {self.w.session.audio_track + 1} of {tracks}, "
                "so there are no subtitles. Choose another track under the video."
            )
        return "Done: no speech was found in this file, so there are no subtitles."

    def cancel(self) -> None:
        if self.w.transcription.running:
            self.w.transcription.cancel()
            self.w.statusBar().showMessage("Cancelling after the current window…")

    def on_segment(self, seg) -> None:
        s = cue_from_decoded(seg)
        s.text = wrap_lines(s.text, self.w.table_model.profile)  # live rows wrapped like the final cues
        if s.words:
            s.start, s.end = s.words[0].start, s.words[-1].end
        if s.end > s.start and has_letter(s.text):
            self.w.doc.append(s)
            self.w.table.scrollToBottom()

    def on_download(self, done: int, total: int) -> None:
        self.w.progressBar.setValue(int(100 * done / total) if total else 0)
        self.w.progressBar.setFormat("Downloading model: %p%")

    def on_progress(self, done: float, total: float, eta) -> None:
        self.w.progressBar.setValue(int(100 * done / total) if total else 0)
        left = (
            f", about {int(eta) // 60}:{int(eta) % 60:02d} left" if eta is not None and done < total else ""
        )
        self.w.progressBar.setFormat(f"%p%{left}")
        self.w.statusBar().showMessage(
            f"Transcribing… {format_ms(seconds_to_ms(done), hours=False)} of "
            f"{format_ms(seconds_to_ms(total), hours=False)}{left} · rows are read-only until it is done"
        )

    def on_finished(self, status: str, message: str, document) -> None:
        if document is not None and len(document) and status in ("done", "cancelled"):
            self.w.doc.language = document.language  # the pipeline's cues replace the live rows in one step
            self.w.doc.set_cues(document.cues)
        self.w._set_running(False)
        if status == "done":
            self.w.progressBar.setValue(100)
            self.w.progressBar.setFormat("%p%")
            self.w.statusBar().showMessage(
                f"Done: {len(self.w.doc)} subtitles. Edit them, then Export."
                if len(self.w.doc)
                else self._no_speech()
            )
            if message:  # the engine's warnings about the run (an English-only model on other speech)
                self.w.show_notice(message)
        elif status == "cancelled":
            self.w.statusBar().showMessage(message)
        else:
            self.w.show_error(message)
        self.w.autosave()
        self.w.transcription_finished.emit(status)
