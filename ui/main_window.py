"""The main window: open media, transcribe on a worker thread, edit in the table,
watch the video with the current cue over it, retime on the waveform, export."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

import threading

from PySide6.QtCore import QObject, QSettings, Qt, QThread, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QGraphicsScene, QGraphicsTextItem,
                               QGraphicsView, QHeaderView, QInputDialog, QLabel, QMainWindow, QMenu,
                               QMessageBox, QProgressBar, QSplitter, QTableView, QToolBar)

from subtitler.core import formats

from subtitler.core import project
from subtitler.engine.audio import load_audio, probe
from subtitler.core.cues import has_letter, segment_from_decoded, wrap_lines
from subtitler.core.document import Document
from subtitler.core.edits import Delete, Edit, Merge, ReplaceText, SetTimes, Shift, SnapToNeighbours, Split, insert_after
from subtitler.errors import EditError, EncodingUnclear, MissingTimeLine, SubtitlerError
from subtitler.core.profiles import PROFILES
from subtitler.core.timecode import format_ms, seconds_to_ms
from subtitler.engine.whisper.languages import LANGUAGES
from subtitler.pipeline import Settings

from ui.table_model import COL_TEXT, SegmentTableModel
from ui.undo import EditCommand
from ui.waveform import WaveformView
from ui.worker import TranscribeWorker

MEDIA_FILTER = "Media (*.mp4 *.mkv *.mov *.avi *.webm *.m4v *.mp3 *.wav *.flac *.m4a *.ogg *.opus *.aac);;All files (*)"
ENCODINGS = ["utf-8", "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1256", "gb18030", "big5", "cp932",
             "euc_kr", "iso8859_15", "koi8_r"]
MODELS = ["tiny.en", "base", "tiny", "base.en", "small", "small.en", "medium", "large-v3", "large-v3-turbo"]


def _multimedia():
    try:
        from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
        from PySide6.QtMultimediaWidgets import QGraphicsVideoItem
        return QMediaPlayer, QAudioOutput, QGraphicsVideoItem
    except ImportError:  # PySide6-Essentials only: no playback, everything else works
        return None


class AudioLoader(QObject):
    """Decodes a file's audio for the waveform on a plain thread (hours of video
    take seconds), then hands the samples to the UI thread by signal."""

    loaded = Signal(str, object)  # path, samples

    def load(self, path: str, info=None) -> None:
        def work():
            try:
                samples = load_audio(path, info=info)  # the window probed it already
            except SubtitlerError:
                return  # the file was probed already; the waveform just stays empty
            try:
                self.loaded.emit(path, samples)
            except RuntimeError:
                pass  # the window closed while the audio was decoding

        threading.Thread(target=work, daemon=True).start()


class MainWindow(QMainWindow):
    transcription_finished = Signal(str)  # "done" | "cancelled" | "failed"

    def __init__(self):
        super().__init__()
        self.setWindowTitle("subtitler")
        self.resize(1280, 800)
        self.setAcceptDrops(True)
        self.settings = QSettings("subtitler", "subtitler")
        self.doc = Document()
        self.undo_stack = QUndoStack(self)
        self.saved_revision = self.doc.revision
        self.autosaved_revision = self.doc.revision
        self.media_path: Optional[str] = None
        self.media_duration: Optional[int] = None
        self.samples = None  # the open file's audio once decoded, shared by waveform and worker
        self.model_cache: dict = {}
        self.thread: Optional[QThread] = None
        self.worker: Optional[TranscribeWorker] = None
        self.last_error: Optional[str] = None
        self.confirm_close = True
        self._error_box: Optional[QMessageBox] = None
        self._build_actions()
        self._build_widgets()
        self._build_menus()
        self._set_running(False)
        self.autosave_timer = QTimer(self, interval=5000, timeout=self.autosave)
        self.autosave_timer.start()
        self.statusBar().showMessage("Open a video or audio file (File → Open, or drop it here), then click Transcribe.")

    # ------------------------------------------------------------------ building
    def _action(self, name, text, slot, shortcut=None, tip=None):
        a = QAction(text, self)
        a.setObjectName(name)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _build_actions(self):
        A = self._action
        self.openAction = A("openAction", "&Open Media…", self._open_dialog, QKeySequence.Open)
        self.importAction = A("importAction", "&Import Subtitles…", self._import_dialog, "Ctrl+I")
        self.exportAction = A("exportAction", "&Export Subtitles…", self._export_dialog, "Ctrl+E")
        self.saveAction = A("saveAction", "&Save Project", self.save_project, QKeySequence.Save)
        self.transcribeAction = A("transcribeAction", "Transcribe", self.transcribe, "Ctrl+R",
                                  "Transcribe the audio of the open file")
        self.cancelAction = A("cancelAction", "Cancel", self.cancel, "Esc", "Stop; keep what is done")
        self.undoAction = self.undo_stack.createUndoAction(self, "&Undo")
        self.undoAction.setObjectName("undoAction")
        self.undoAction.setShortcut(QKeySequence.Undo)
        self.redoAction = self.undo_stack.createRedoAction(self, "&Redo")
        self.redoAction.setObjectName("redoAction")
        self.redoAction.setShortcut(QKeySequence.Redo)
        self.addActions([self.undoAction, self.redoAction])
        self.splitAction = A("splitAction", "Split at Cursor", self.split_current, "Ctrl+B")
        self.mergeAction = A("mergeAction", "Merge with Next", self.merge_current, "Ctrl+M")
        self.insertAction = A("insertAction", "Insert After", self.insert_current, "Ctrl+Return")
        self.deleteAction = A("deleteAction", "Delete", self.delete_selected, "Ctrl+Delete")
        self.shiftAction = A("shiftAction", "Shift Times…", self._shift_dialog, "Ctrl+Shift+T")
        self.snapAction = A("snapAction", "Snap to Neighbours", self.snap_current, "Ctrl+Shift+N")
        self.setStartAction = A("setStartAction", "Set Start from Playhead", lambda: self.set_from_playhead("start"), "Ctrl+[")
        self.setEndAction = A("setEndAction", "Set End from Playhead", lambda: self.set_from_playhead("end"), "Ctrl+]")
        self.findAction = A("findReplaceAction", "Find and Replace…", self._replace_dialog, QKeySequence.Replace)
        self.playAction = A("playAction", "Play/Pause", self.toggle_play, "Ctrl+Space")
        self.zoomInAction = A("zoomInAction", "Zoom In", lambda: self.waveform.zoom(0.5), "Ctrl+=")
        self.zoomOutAction = A("zoomOutAction", "Zoom Out", lambda: self.waveform.zoom(2.0), "Ctrl+-")

    def _build_widgets(self):
        tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        self.addToolBar(tb)
        tb.addAction(self.openAction)
        tb.addSeparator()
        tb.addWidget(QLabel(" Model "))
        self.modelCombo = QComboBox(objectName="modelCombo", editable=True)
        self.modelCombo.addItems(self._model_choices())
        self.modelCombo.setCurrentText(self.settings.value("model", self.modelCombo.itemText(0)))
        self.modelCombo.setToolTip("Bundled and downloaded models; or type a Hugging Face repo or a folder")
        tb.addWidget(self.modelCombo)
        tb.addWidget(QLabel(" Language "))
        self.languageCombo = QComboBox(objectName="languageCombo")
        self.languageCombo.addItem("Auto-detect", None)
        for code, name in LANGUAGES.items():
            self.languageCombo.addItem(name.title(), code)
        saved_language = self.settings.value("language", None)
        if saved_language:
            self.languageCombo.setCurrentIndex(max(0, self.languageCombo.findData(saved_language)))
        self.languageCombo.currentIndexChanged.connect(
            lambda _: self.settings.setValue("language", self.languageCombo.currentData() or ""))
        tb.addWidget(self.languageCombo)
        self.taskCombo = QComboBox(objectName="taskCombo")
        self.taskCombo.addItem("Transcribe", "transcribe")
        self.taskCombo.addItem("Translate to English", "translate")
        tb.addWidget(self.taskCombo)
        tb.addAction(self.transcribeAction)
        tb.addAction(self.cancelAction)
        tb.addSeparator()
        tb.addWidget(QLabel(" Reading profile "))
        self.profileCombo = QComboBox(objectName="profileCombo")
        self.profileCombo.addItems([p.title() for p in PROFILES])
        self.profileCombo.setCurrentText(str(self.settings.value("profile", "default")).title())
        self.profileCombo.currentTextChanged.connect(self._profile_changed)
        tb.addWidget(self.profileCombo)
        tb.addSeparator()
        tb.addActions([self.undoAction, self.redoAction, self.exportAction])

        self.model = SegmentTableModel(self.doc, self.push, self.show_error)
        self.model.set_profile(self.profileCombo.currentText().lower())
        self.table = QTableView(objectName="segmentTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed
                                   | QAbstractItemView.AnyKeyPressed)
        self.table.horizontalHeader().setSectionResizeMode(COL_TEXT, QHeaderView.Stretch)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        self.table.setContextMenuPolicy(Qt.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._table_menu)
        self.table.clicked.connect(lambda idx: self.seek(self.doc[idx.row()].start))
        for c, w in enumerate([40, 100, 100, 70, 50]):
            self.table.setColumnWidth(c, w)

        self.scene = QGraphicsScene(self)
        self.videoView = QGraphicsView(self.scene, objectName="videoView")
        self.videoView.setMinimumSize(360, 220)
        self.videoView.setBackgroundBrush(Qt.black)
        self.videoView.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.videoView.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.overlay = QGraphicsTextItem()
        self.overlay.setDefaultTextColor(Qt.white)
        font = self.overlay.font()
        font.setPointSize(16)
        font.setBold(True)
        self.overlay.setFont(font)
        self.overlay.setZValue(10)
        self.player = None
        mm = _multimedia()
        if mm:
            QMediaPlayer, QAudioOutput, QGraphicsVideoItem = mm
            self.videoItem = QGraphicsVideoItem()
            self.videoItem.setSize(self.videoView.size())
            self.scene.addItem(self.videoItem)
            self.player = QMediaPlayer(self)
            self.audio_out = QAudioOutput(self)
            self.player.setAudioOutput(self.audio_out)
            self.player.setVideoOutput(self.videoItem)
            self.player.positionChanged.connect(self._position_changed)
        self.scene.addItem(self.overlay)

        self.audio_loader = AudioLoader(self)
        self.audio_loader.loaded.connect(self._audio_loaded)
        self.waveform = WaveformView(self.push, self.show_error)
        self.waveform.set_document(self.doc)
        self.waveform.seekRequested.connect(self.seek)

        left = QSplitter(Qt.Vertical)
        left.addWidget(self.videoView)
        self.mediaLabel = QLabel("No media open", objectName="mediaLabel")
        left.addWidget(self.mediaLabel)
        top = QSplitter(Qt.Horizontal)
        top.addWidget(left)
        top.addWidget(self.table)
        top.setSizes([480, 800])
        main = QSplitter(Qt.Vertical)
        main.addWidget(top)
        main.addWidget(self.waveform)
        main.setSizes([600, 160])
        self.setCentralWidget(main)

        self.progressBar = QProgressBar(objectName="progressBar")
        self.progressBar.setMaximumWidth(320)
        self.progressBar.setFormat("%p%")
        self.statusBar().addPermanentWidget(self.progressBar)

    def _build_menus(self):
        m = self.menuBar()
        f = m.addMenu("&File")
        f.addActions([self.openAction, self.importAction])
        self.recentMenu = f.addMenu("Open &Recent")
        self._fill_recent()
        f.addSeparator()
        f.addActions([self.saveAction, self.exportAction])
        f.addSeparator()
        f.addAction(self._action("quitAction", "&Quit", self.close, QKeySequence.Quit))
        e = m.addMenu("&Edit")
        e.addActions([self.undoAction, self.redoAction])
        e.addSeparator()
        e.addActions([self.splitAction, self.mergeAction, self.insertAction, self.deleteAction, self.shiftAction,
                      self.snapAction, self.setStartAction, self.setEndAction, self.findAction])
        v = m.addMenu("&Playback")
        v.addActions([self.playAction, self.zoomInAction, self.zoomOutAction])
        t = m.addMenu("&Transcribe")
        t.addActions([self.transcribeAction, self.cancelAction])

    def _model_choices(self) -> list[str]:
        """Installed offline models first, then downloaded ones, then the rest of the hub list."""
        from subtitler.engine.whisper.load import downloaded_models, offline_models

        local = offline_models() + [m for m in downloaded_models() if m not in offline_models()]
        return local + [m for m in MODELS if m not in local]

    # ------------------------------------------------------------------ errors and state
    def show_error(self, message: str) -> None:
        """A clear message in a dialog that does not block, and in the status bar."""
        self.last_error = message
        self.statusBar().showMessage(message, 10000)
        if self._error_box is not None:
            self._error_box.close()
        self._error_box = QMessageBox(QMessageBox.Warning, "subtitler", message, QMessageBox.Ok, self)
        self._error_box.setObjectName("errorBox")
        self._error_box.open()

    def push(self, edit: Edit) -> None:
        self.undo_stack.push(EditCommand(edit))

    def _set_running(self, running: bool) -> None:
        self.transcribeAction.setEnabled(not running and self.media_path is not None)
        self.cancelAction.setEnabled(running)
        self.openAction.setEnabled(not running)
        self.importAction.setEnabled(not running)
        for w in (self.modelCombo, self.languageCombo, self.taskCombo):
            w.setEnabled(not running)

    @property
    def dirty(self) -> bool:
        return self.doc.revision != self.saved_revision and len(self.doc) > 0

    # ------------------------------------------------------------------ files
    def open_media(self, path: str) -> bool:
        """Open a video or audio file; returns False (with a message) if it can't be used."""
        path = os.fspath(path)
        if self.thread is not None:
            self.show_error("Wait for the transcription to finish or cancel it first.")
            return False
        try:
            info = probe(path)
        except SubtitlerError as e:
            self.show_error(str(e))
            return False
        self.media_path = path
        self.samples = None
        self.media_duration = int(info.duration * 1000) or None
        self._set_document(Document(media_path=path, media_duration=self.media_duration))
        self.doc.video_size = info.video_size  # an .ass export is sized for it
        self.waveform.set_audio(np.zeros(0, np.float32), duration_ms=self.media_duration or 0)
        self.audio_loader.load(path, info)
        self.mediaLabel.setText(f"{Path(path).name} — {format_ms(self.media_duration)}")
        self.setWindowTitle(f"{Path(path).name} — subtitler")
        if self.player is not None:
            self.player.setSource(QUrl.fromLocalFile(os.path.abspath(path)))
        self._remember_recent(path)
        self._set_running(False)
        self.statusBar().showMessage(f"Opened {Path(path).name}. Click Transcribe.")
        self._offer_recovery(path)
        return True

    def _audio_loaded(self, path: str, samples) -> None:
        if path == self.media_path:
            self.samples = samples
            self.waveform.set_audio(samples)

    def _set_document(self, doc: Document) -> None:
        self.doc = doc
        self.model.set_document(doc)
        self.waveform.set_document(doc)
        self.undo_stack.clear()
        self.saved_revision = self.autosaved_revision = doc.revision

    def _offer_recovery(self, path: str) -> None:
        auto = project.recovery_for(path)
        if auto is None:
            return
        box = QMessageBox(QMessageBox.Question, "Recover unsaved edits?",
                          f"subtitler found unsaved edits of {Path(path).name} from an earlier session. Recover them?",
                          QMessageBox.Yes | QMessageBox.No, self)
        box.setObjectName("recoveryBox")
        box.finished.connect(lambda r: self.recover(auto) if box.clickedButton() == box.button(QMessageBox.Yes) else None)
        self._recovery_box = box
        box.open()

    def recover(self, auto_path) -> None:
        recovered = project.load_project(auto_path)
        recovered.media_path, recovered.media_duration = self.media_path, self.media_duration
        self._set_document(recovered)
        self.saved_revision = -1  # recovered edits are unsaved
        self.statusBar().showMessage("Recovered unsaved edits.")

    def export_to(self, path: str) -> bool:
        """Write the subtitles; the format follows the extension."""
        try:
            formats.save(self.doc, path)
        except SubtitlerError as e:
            self.show_error(str(e))
            return False
        self.settings.setValue("exportDir", str(Path(path).parent))
        self.statusBar().showMessage(f"Exported {len(self.doc)} subtitles to {path}")
        return True

    def import_subtitles(self, path: str, encoding: Optional[str] = None, skip_bad: bool = False) -> bool:
        """Read a subtitle file into the editor. When its encoding is unclear, or an SRT
        block has no time line, ask (without blocking) and try again with the answer."""
        try:
            loaded, skipped = formats.read_file(path, encoding=encoding, skip_bad=skip_bad)
        except EncodingUnclear as e:
            self._ask_encoding(path, str(e), e.candidates)
            return False
        except MissingTimeLine as e:
            self._offer_skip(path, encoding, str(e))
            return False
        except SubtitlerError as e:
            self.show_error(str(e))
            return False
        loaded.media_path, loaded.media_duration = self.media_path, self.media_duration
        loaded.video_size = loaded.video_size or self.doc.video_size
        self._set_document(loaded)
        note = f" (skipped the block at line {', '.join(map(str, skipped))})" if skipped else ""
        self.statusBar().showMessage(f"Imported {len(loaded)} subtitles from {Path(path).name}{note}")
        return True

    def _ask_encoding(self, path: str, message: str, candidates) -> None:
        dialog = QInputDialog(self, objectName="encodingDialog")
        dialog.setWindowTitle("Text encoding")
        dialog.setLabelText(f"{message}\nWhich encoding is {Path(path).name} in?")
        dialog.setComboBoxItems(list(candidates) + [c for c in ENCODINGS if c not in candidates])
        dialog.textValueSelected.connect(lambda name: self.import_subtitles(path, encoding=name))
        self._prompt = dialog
        dialog.open()

    def _offer_skip(self, path: str, encoding, message: str) -> None:
        box = QMessageBox(QMessageBox.Question, "Import subtitles", f"{message}\n\nSkip that block and import the rest?",
                          QMessageBox.Yes | QMessageBox.No, self)
        box.setObjectName("skipBlockBox")
        box.finished.connect(lambda r: self.import_subtitles(path, encoding, skip_bad=True)
                             if box.clickedButton() == box.button(QMessageBox.Yes) else None)
        self._prompt = box
        box.open()

    def save_project(self) -> None:
        try:
            path = project.save_project(self.doc, None if self.media_path else self._ask_project_path())
        except SubtitlerError as e:
            self.show_error(str(e))
            return
        self.saved_revision = self.doc.revision
        project.discard_autosave(self.doc.media_path)
        self.statusBar().showMessage(f"Saved {path}")

    def _ask_project_path(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save Project", "", "Project (*.json)")
        if not path:
            raise SubtitlerError("Not saved.")
        return path

    def autosave(self) -> None:
        if self.doc.revision != self.autosaved_revision and len(self.doc):
            try:
                project.autosave(self.doc)
                self.autosaved_revision = self.doc.revision
            except SubtitlerError as e:
                self.statusBar().showMessage(f"Autosave failed: {e}", 5000)

    def _open_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open Media", self.settings.value("openDir", ""), MEDIA_FILTER)
        if path:
            self.settings.setValue("openDir", str(Path(path).parent))
            self.open_media(path)

    def _import_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Import Subtitles", self.settings.value("exportDir", ""),
                                              formats.dialog_filter(for_reading=True))
        if path:
            self.import_subtitles(path)

    def _export_dialog(self):
        stem = Path(self.media_path).stem if self.media_path else "subtitles"
        start = str(Path(self.settings.value("exportDir", str(Path.home()))) / f"{stem}.srt")
        path, _ = QFileDialog.getSaveFileName(self, "Export Subtitles", start,
                                              formats.dialog_filter(for_reading=False))
        if path:
            self.export_to(path)

    def _remember_recent(self, path: str) -> None:
        recent = [p for p in (self.settings.value("recent", []) or []) if p != path]
        self.settings.setValue("recent", ([path] + recent)[:10])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recentMenu.clear()
        for p in self.settings.value("recent", []) or []:
            self.recentMenu.addAction(Path(p).name, lambda p=p: self.open_media(p)).setToolTip(p)

    def dragEnterEvent(self, e):
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e):
        for url in e.mimeData().urls():
            path = url.toLocalFile()
            if Path(path).suffix.lower().lstrip(".") in formats.READABLE:
                self.import_subtitles(path)
            else:
                self.open_media(path)
            break

    # ------------------------------------------------------------------ transcription
    def transcribe(self) -> None:
        if self.media_path is None or self.thread is not None:
            return
        if len(self.doc) and self.dirty:
            self.autosave()
        model_name = self.modelCombo.currentText().strip()
        self.settings.setValue("model", model_name)
        video_size = self.doc.video_size
        self._set_document(Document(media_path=self.media_path, model=model_name,
                                    media_duration=self.media_duration))
        self.doc.video_size = video_size
        self.progressBar.setValue(0)
        self.thread = QThread(self)
        self.worker = TranscribeWorker(self.media_path, self.settings_for(model_name), self.model_cache, self.samples)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.segment.connect(self._on_segment)
        self.worker.progress.connect(self._on_progress)
        self.worker.download.connect(self._on_download)
        self.worker.status.connect(lambda m: self.statusBar().showMessage(m))
        self.worker.finished.connect(self._on_finished)
        self._set_running(True)
        self.thread.start()

    def settings_for(self, model_name: str) -> Settings:
        """The pipeline settings the window's boxes stand for (the CLI's flags, the same defaults)."""
        return Settings(model=model_name, language=self.languageCombo.currentData(), task=self.taskCombo.currentData(),
                        profile=self.model.profile.name)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.statusBar().showMessage("Cancelling after the current window…")

    def _on_segment(self, seg) -> None:
        s = segment_from_decoded(seg)
        s.text = wrap_lines(s.text, self.model.profile)  # live rows wrapped like the final cues
        if s.words:
            s.start, s.end = s.words[0].start, s.words[-1].end
        if s.end > s.start and has_letter(s.text):
            self.doc.append(s)
            self.table.scrollToBottom()

    def _on_download(self, done: int, total: int) -> None:
        self.progressBar.setValue(int(100 * done / total) if total else 0)
        self.progressBar.setFormat("Downloading model: %p%")

    def _on_progress(self, done: float, total: float, eta) -> None:
        self.progressBar.setValue(int(100 * done / total) if total else 0)
        left = f", about {int(eta) // 60}:{int(eta) % 60:02d} left" if eta is not None and done < total else ""
        self.progressBar.setFormat(f"%p%{left}")
        self.statusBar().showMessage(f"Transcribing… {format_ms(seconds_to_ms(done), hours=False)} of "
                                     f"{format_ms(seconds_to_ms(total), hours=False)}{left}")

    def _on_finished(self, status: str, message: str) -> None:
        worker, thread = self.worker, self.thread
        self.worker = self.thread = None
        thread.quit()
        thread.wait()
        worker.deleteLater()
        if worker.document is not None and len(worker.document) and status in ("done", "cancelled"):
            # The pipeline's cues replace the live rows in one step.
            self.doc.language = worker.document.language
            self.doc.set_segments(worker.document.segments)
        self._set_running(False)
        if status == "done":
            self.progressBar.setValue(100)
            self.progressBar.setFormat("%p%")
            self.statusBar().showMessage(f"Done: {len(self.doc)} subtitles. Edit them, then Export.")
        elif status == "cancelled":
            self.statusBar().showMessage(message)
        else:
            self.show_error(message)
        self.autosave()
        self.transcription_finished.emit(status)

    # ------------------------------------------------------------------ editing
    def current_row(self) -> Optional[int]:
        idx = self.table.currentIndex()
        return idx.row() if idx.isValid() else None

    def selected_rows(self) -> list[int]:
        return sorted({i.row() for i in self.table.selectionModel().selectedRows()}) or (
            [self.current_row()] if self.current_row() is not None else [])

    def _try(self, make) -> bool:
        try:
            self.push(make())
            return True
        except EditError as e:
            self.show_error(str(e))
            return False

    def split_current(self, pos: Optional[int] = None) -> bool:
        row = self.current_row()
        if row is None:
            return False
        editor = self.table.indexWidget(self.table.currentIndex())
        if pos is None:
            pos = editor.cursorPosition() if editor is not None and hasattr(editor, "cursorPosition") \
                else len(self.doc[row].text) // 2
        return self._try(lambda: Split(self.doc, row, pos))

    def merge_current(self) -> bool:
        rows = self.selected_rows()
        return bool(rows) and self._try(lambda: Merge(self.doc, rows[0]))

    def insert_current(self) -> bool:
        return self._try(lambda: insert_after(self.doc, self.current_row()))

    def delete_selected(self) -> bool:
        rows = self.selected_rows()
        if not rows:
            return False
        return self._try(lambda: Delete(self.doc, rows[0], rows[-1] - rows[0] + 1))

    def shift(self, delta_ms: int, scope: str = "all") -> bool:
        rows = self.selected_rows()
        if scope == "all" or not rows:
            return self._try(lambda: Shift(self.doc, delta_ms))
        if scope == "selected":
            return self._try(lambda: Shift(self.doc, delta_ms, rows[0], rows[-1] - rows[0] + 1))
        return self._try(lambda: Shift(self.doc, delta_ms, rows[0]))

    def _shift_dialog(self):
        ms, ok = QInputDialog.getInt(self, "Shift Times", "Milliseconds (negative moves earlier):", 0, -3_600_000,
                                     3_600_000, 100)
        if ok and ms:
            scope, ok = QInputDialog.getItem(self, "Shift Times", "Which subtitles:",
                                             ["all", "selected", "from here on"], 0, False)
            if ok:
                self.shift(ms, scope)

    def snap_current(self) -> bool:
        row = self.current_row()
        return row is not None and self._try(lambda: SnapToNeighbours(self.doc, row))

    def set_from_playhead(self, which: str) -> bool:
        row = self.current_row()
        return row is not None and self._try(lambda: SetTimes(self.doc, row, **{which: self.waveform.playhead}))

    def find_replace(self, find: str, replace: str) -> int:
        try:
            edit = ReplaceText(self.doc, find, replace)
        except EditError as e:
            self.show_error(str(e))
            return 0
        self.push(edit)
        return edit.count

    def _replace_dialog(self):
        find, ok = QInputDialog.getText(self, "Find and Replace", "Find:")
        if ok and find:
            repl, ok = QInputDialog.getText(self, "Find and Replace", f"Replace '{find}' with:")
            if ok:
                n = self.find_replace(find, repl)
                if n:
                    self.statusBar().showMessage(f"Replaced {n} occurrence(s).")

    def _table_menu(self, pos):
        menu = QMenu(self)
        menu.addActions([self.splitAction, self.mergeAction, self.insertAction, self.deleteAction])
        menu.addSeparator()
        menu.addActions([self.setStartAction, self.setEndAction, self.snapAction, self.shiftAction])
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _profile_changed(self, text: str) -> None:
        self.settings.setValue("profile", text.lower())
        self.model.set_profile(text.lower())

    # ------------------------------------------------------------------ playback
    def seek(self, ms: int) -> None:
        self.waveform.set_playhead(ms)
        if self.player is not None:
            self.player.setPosition(ms)
        self._show_cue(ms)

    def toggle_play(self) -> None:
        if self.player is None:
            return
        if self.player.playbackState() == self.player.PlaybackState.PlayingState:
            self.player.pause()
        else:
            self.player.play()

    def _position_changed(self, ms: int) -> None:
        self.waveform.set_playhead(ms)
        self._show_cue(ms)

    def _show_cue(self, ms: int) -> None:
        i = self.doc.index_at(ms)
        self.overlay.setPlainText(self.doc[i].text if i is not None else "")
        vp = self.videoView.viewport().rect()
        self.overlay.setTextWidth(vp.width() * 0.9)
        option = self.overlay.document().defaultTextOption()
        option.setAlignment(Qt.AlignHCenter)
        self.overlay.document().setDefaultTextOption(option)
        br = self.overlay.boundingRect()
        # Bottom centre of what the view shows, in scene coordinates.
        self.overlay.setPos(self.videoView.mapToScene(int((vp.width() - br.width()) / 2),
                                                      int(max(0, vp.height() - br.height() - 16))))
        if self.player is not None and self.player.playbackState() == self.player.PlaybackState.PlayingState:
            self.follow(ms)

    def follow(self, ms: int) -> None:
        """During playback: select the row shown at ``ms`` and keep it in view."""
        i = self.doc.index_at(ms)
        if i is not None and i != self.current_row():
            self.table.selectRow(i)
            self.table.scrollTo(self.model.index(i, 0))

    def resizeEvent(self, e):
        super().resizeEvent(e)
        if self.player is not None:
            self.videoItem.setSize(self.videoView.viewport().size())
            self.scene.setSceneRect(0, 0, self.videoView.viewport().width(), self.videoView.viewport().height())

    # ------------------------------------------------------------------ closing
    def closeEvent(self, e):
        if self.confirm_close and self.dirty:
            answer = QMessageBox.question(self, "Unsaved changes",
                                          "Save the project before closing? Unsaved edits also stay in the autosave.",
                                          QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel)
            if answer == QMessageBox.Cancel:
                e.ignore()
                return
            if answer == QMessageBox.Save:
                self.save_project()
        if self.worker is not None:
            self.worker.cancel()
        if self.thread is not None:  # cancel is polled every few tokens, so this is short
            self.thread.quit()
            self.thread.wait()
        if self.player is not None:
            self.player.stop()
        self.autosave_timer.stop()
        super().closeEvent(e)
