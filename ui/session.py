"""The open work: the media, the subtitle document, its undo stack, whether it is
saved, autosave and recovery, and the files it is read from and written to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QThread, QTimer, Signal
from PySide6.QtGui import QUndoStack

from subtitler.core import formats, project
from subtitler.core.document import Document
from subtitler.core.edits import Edit
from subtitler.errors import Cancelled, SubtitlerError
from subtitler.pipeline import MediaInfo, find_speech, probe_media, read_samples
from ui.undo import EditCommand

AUTOSAVE_MS = 5000


class AudioLoader(QThread):
    """Decodes a file's audio for the waveform (hours of video take seconds) off the
    UI thread, then finds its speech, so that a transcription started later need not;
    stops early when interrupted (the window closing)."""

    loaded = Signal(object, object)  # (path, audio track), samples
    speechFound = Signal(object, object)  # (path, audio track), speech mask (per 10 ms)

    def __init__(self, path: str, info: MediaInfo, parent=None, track: int = 0):
        super().__init__(parent)
        self.path, self.info, self.track = path, info, track

    def run(self) -> None:
        source = (self.path, self.track)
        try:
            samples = read_samples(
                self.path, info=self.info, cancel=self.isInterruptionRequested, track=self.track
            )
        except SubtitlerError:
            return  # the file was probed already; the waveform just stays empty
        self.loaded.emit(source, samples)
        try:
            self.speechFound.emit(source, find_speech(samples, cancel=self.isInterruptionRequested))
        except Cancelled:
            return


class Session(QObject):
    documentReplaced = Signal(object)  # the new Document
    audioLoaded = Signal(object)  # the open media's samples
    message = Signal(str)  # for the status bar
    error = Signal(str)  # for a dialog

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = Document()
        self.undo_stack = QUndoStack(self)
        self.saved_revision = self.autosaved_revision = self.doc.revision
        self.media_path: Optional[str] = None
        self.media: Optional[MediaInfo] = None
        self.samples = None  # the open file's audio once decoded, shared by waveform and transcription
        self.speech = None  # its speech mask once found (after the audio), for transcription
        self.audio_track = 0  # which of the file's audio streams: the waveform's and the transcription's
        self.loaders: list[AudioLoader] = []
        self.timer = QTimer(self, interval=AUTOSAVE_MS, timeout=self.autosave)
        self.timer.start()

    @property
    def media_duration(self) -> Optional[int]:
        return int(self.media.duration * 1000) or None if self.media else None

    @property
    def dirty(self) -> bool:
        return self.doc.revision != self.saved_revision and len(self.doc) > 0

    def push(self, edit: Edit) -> None:
        self.undo_stack.push(EditCommand(edit))

    def set_document(self, doc: Document) -> None:
        """Make ``doc`` the open document (it keeps the open media's facts)."""
        doc.media_path, doc.media_duration = self.media_path, self.media_duration
        doc.video_size = doc.video_size or (self.media.video_size if self.media else None)
        self.doc = doc
        self.undo_stack.clear()
        self.saved_revision = self.autosaved_revision = doc.revision
        self.documentReplaced.emit(doc)

    def open_media(self, path: str) -> bool:
        try:
            info = probe_media(os.fspath(path))
        except SubtitlerError as e:
            self.error.emit(str(e))
            return False
        self.media_path, self.media = os.fspath(path), info
        self.set_document(Document())
        self.choose_audio_track(0)
        return True

    def choose_audio_track(self, track: int) -> None:
        """Read the open file's audio stream ``track`` (from 0) for the waveform and the
        next transcription; what a loader still brings of another track is dropped."""
        self.audio_track, self.samples, self.speech = track, None, None
        loader = AudioLoader(self.media_path, self.media, self, track)
        loader.loaded.connect(self._audio_loaded)
        loader.speechFound.connect(self._speech_found)
        self.loaders.append(loader)
        loader.start()

    def _audio_loaded(self, source: tuple, samples) -> None:
        if source == (self.media_path, self.audio_track):
            self.samples = samples
            self.audioLoaded.emit(samples)

    def _speech_found(self, source: tuple, speech) -> None:
        if source == (self.media_path, self.audio_track):
            self.speech = speech

    def close(self) -> None:
        self.timer.stop()
        for loader in self.loaders:
            loader.requestInterruption()
            loader.wait()

    def read(self, path: str, encoding: Optional[str] = None, skip_bad: bool = False) -> list[int]:
        """Import a subtitle file; returns the lines of SRT blocks skipped. Raises
        ``SubtitlerError`` (the window asks about an unclear encoding or a bad block)."""
        loaded, skipped = formats.read_file(path, encoding=encoding, skip_bad=skip_bad)
        self.set_document(loaded)
        note = f" (skipped the block at line {', '.join(map(str, skipped))})" if skipped else ""
        self.message.emit(f"Imported {len(loaded)} subtitles from {Path(path).name}{note}")
        return skipped

    def export_to(self, path: str) -> bool:
        """Write the subtitles; the format follows the extension."""
        try:
            formats.save(self.doc, path)
        except SubtitlerError as e:
            self.error.emit(str(e))
            return False
        self.message.emit(f"Exported {len(self.doc)} subtitles to {path}")
        return True

    def save_project(self, path=None) -> Optional[Path]:
        try:
            saved = project.save_project(self.doc, path)
        except SubtitlerError as e:
            self.error.emit(str(e))
            return None
        self.saved_revision = self.doc.revision
        project.discard_autosave(self.doc.media_path)
        self.message.emit(f"Saved {saved}")
        return saved

    def autosave(self) -> None:
        if self.doc.revision != self.autosaved_revision and len(self.doc):
            try:
                project.autosave(self.doc)
                self.autosaved_revision = self.doc.revision
            except SubtitlerError as e:
                self.message.emit(f"Autosave failed: {e}")

    def recovery(self) -> Optional[Path]:
        """An autosave of the open media newer than its project, if any."""
        return project.recovery_for(self.media_path) if self.media_path else None

    def recover(self, auto_path) -> None:
        self.set_document(project.load_project(auto_path))
        self.saved_revision = -1  # recovered edits are unsaved
        self.message.emit("Recovered unsaved edits.")
