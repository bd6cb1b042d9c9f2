"""The main window: its layout, menus and toolbar, and the wiring between the parts:
the session (``session``), transcription (``transcription``), the player and its
transport (``player``), the table (``table_model``), the waveform and the edit
actions (``editing``)."""

from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.actions import build_actions, build_menus
from ui.editing import Editing
from ui.files import Files
from ui.player import Player
from ui.session import Session
from ui.table_model import COL_TEXT, CueTableModel
from ui.transcription import TranscriptionController, TranscriptionPanel
from ui.video_export import VideoExport
from ui.waveform import WaveformView


class MainWindow(QMainWindow):
    transcription_finished = Signal(str)  # "done" | "cancelled" | "failed"

    def __init__(self):
        super().__init__()
        self.setWindowTitle("subtitler")
        self.resize(1280, 800)
        self.setAcceptDrops(True)
        self.settings = QSettings("subtitler", "subtitler")
        self.session = Session(self)
        self.transcription = TranscriptionController(self)
        self.video_export = VideoExport(self)
        self.files = Files(self)
        self.transcribing = TranscriptionPanel(self)
        self._transcribing = False
        self.last_error: Optional[str] = None
        self.confirm_close = True
        self._error_box = None
        self._build_widgets()
        build_actions(self)
        build_menus(self)
        self._connect()
        self._set_running(False)
        self.statusBar().showMessage(
            "Open a video or audio file (File → Open, or drop it here), then click Transcribe."
        )

    # What the parts hold, by the names the rest of the window (and its tests) use.
    doc = property(lambda self: self.session.doc)
    media_path = property(lambda self: self.session.media_path)
    media_duration = property(lambda self: self.session.media_duration)
    model_cache = property(lambda self: self.transcription.model_cache)
    thread = property(lambda self: self.transcription.thread)
    overlay = property(lambda self: self.player.overlay)

    def push(self, edit) -> None:
        self.session.push(edit)

    # The file work's entry points (``files``), by the window's names.
    def open_media(self, path: str) -> bool:
        return self.files.open_media(path)

    def import_subtitles(self, path: str, encoding=None, skip_bad: bool = False) -> bool:
        return self.files.import_subtitles(path, encoding, skip_bad)

    def export_to(self, path: str) -> bool:
        return self.files.export_to(path)

    def autosave(self) -> None:
        self.files.autosave()

    def transcribe(self) -> None:
        self.transcribing.transcribe()

    def cancel(self) -> None:
        self.transcribing.cancel()

    def dragEnterEvent(self, e):
        self.files.drag_enter(e)

    def dropEvent(self, e):
        self.files.drop(e)

    # ------------------------------------------------------------------ building
    def _build_widgets(self):
        self.table_model = CueTableModel(self.session.doc, self.push, self.show_error)
        self.table_model.on_refused = lambda message: self.statusBar().showMessage(message, 5000)
        self.table = QTableView(objectName="cueTable")
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(
            QAbstractItemView.DoubleClicked
            | QAbstractItemView.EditKeyPressed
            | QAbstractItemView.AnyKeyPressed
        )
        self.table.horizontalHeader().setSectionResizeMode(COL_TEXT, QHeaderView.Stretch)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        self.table.setContextMenuPolicy(Qt.CustomContextMenu)
        for c, w in enumerate([40, 100, 100, 70, 50]):
            self.table.setColumnWidth(c, w)
        self.player = Player(self)
        self.waveform = WaveformView(self.push, self.show_error)
        self.waveform.set_document(self.session.doc)
        self.mediaLabel = QLabel("No media open", objectName="mediaLabel")
        self.editing = Editing(
            self.session,
            self.table,
            lambda: self.waveform.playhead,
            self.show_error,
            self.statusBar().showMessage,
        )
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.player, 1)
        below = QHBoxLayout()
        below.addWidget(self.mediaLabel, 1)
        self.audioTrackLabel = QLabel("Audio track")
        self.audioCombo = QComboBox(
            objectName="audioCombo",
            toolTip="The audio track to show and transcribe: a dub, a commentary, a microphone",
        )
        below.addWidget(self.audioTrackLabel)
        below.addWidget(self.audioCombo)
        column.addLayout(below)
        self.show_audio_tracks(())
        self.splitter = QSplitter(Qt.Horizontal, objectName="mainSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.table)
        self.splitter.setSizes([520, 760])
        main = QSplitter(Qt.Vertical)
        main.addWidget(self.splitter)
        main.addWidget(self.waveform)
        main.setSizes([600, 160])
        self.setCentralWidget(main)
        self.progressBar = QProgressBar(objectName="progressBar", maximumWidth=320)
        self.progressBar.setFormat("%p%")
        self.statusBar().addPermanentWidget(self.progressBar)

    def _connect(self):
        s = self.session
        s.documentReplaced.connect(self._document_replaced)
        rows = self.table_model
        for signal in (rows.rowsInserted, rows.rowsRemoved, rows.modelReset):
            signal.connect(lambda *_: self.update_actions())
        s.audioLoaded.connect(self.waveform.set_audio)
        s.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        s.error.connect(self.show_error)
        self.player.positionChanged.connect(self._position)
        self.waveform.seekRequested.connect(self.seek)
        self.table.clicked.connect(lambda idx: self.seek(self.doc[idx.row()].start))
        self.table.selectionModel().currentRowChanged.connect(self._current_row)
        self.table.customContextMenuRequested.connect(
            lambda pos: self.editing.context_menu(pos, self.edit_actions)
        )
        self.languageCombo.currentIndexChanged.connect(self._language_chosen)
        self.modelCombo.currentTextChanged.connect(self._model_chosen)
        self._language_for_model()
        self.computeCombo.currentIndexChanged.connect(
            lambda _: self.settings.setValue("compute_type", self.computeCombo.currentData())
        )
        self.profileCombo.currentTextChanged.connect(self._profile_changed)
        self.audioCombo.activated.connect(self._audio_track_chosen)

    # ------------------------------------------------------------------ state and errors
    def show_error(self, message: str) -> None:
        """A clear message in a dialog that does not block, and in the status bar."""
        self.last_error = message
        self.statusBar().showMessage(message, 10000)
        self.show_notice(message)

    def show_notice(self, message: str) -> None:
        """``message`` in a dialog that does not block (one at a time): an error, or a
        warning about work that was done (the status bar keeps what was done)."""
        if self._error_box is not None:
            self._error_box.close()
        self._error_box = QMessageBox(
            QMessageBox.Warning, "subtitler", message, QMessageBox.Ok, self, objectName="errorBox"
        )
        self._error_box.open()

    def _set_running(self, running: bool) -> None:
        self._transcribing = running
        self.update_actions()

    def state(self) -> str:
        """What the window is doing: "empty", "media", "transcribing", "exporting"."""
        if self._transcribing:
            return "transcribing"
        if self.video_export.running:
            return "exporting"
        return "media" if self.media_path is not None else "empty"

    def update_actions(self) -> None:
        """The one place that enables the window's actions, from its state."""
        state = self.state()
        idle = state in ("empty", "media")
        has_video = state == "media" and self.session.media is not None and self.session.media.has_video
        self.transcribeAction.setEnabled(state == "media")
        self.cancelAction.setEnabled(state == "transcribing")
        self.video_export.action.setEnabled(has_video and len(self.doc.cues) > 0)
        self.table_model.read_only = state == "transcribing"  # streamed rows are replaced when the run ends
        for a in filter(None, self.edit_actions):  # split, merge, delete... wait for the final cues
            a.setEnabled(idle)
        for w in (
            self.openAction,
            self.importAction,
            self.modelCombo,
            self.languageCombo,
            self.taskCombo,
            self.computeCombo,
            self.audioCombo,
        ):
            w.setEnabled(idle)
        self.languageCombo.setEnabled(idle and not self.english_only())

    def english_only(self) -> bool:
        """Whether the model chosen reads English only (``tiny.en``, ``base.en``...)."""
        return self.modelCombo.currentText().strip().lower().endswith(".en")

    def _model_chosen(self, _name: str) -> None:
        self._language_for_model()
        self.update_actions()

    def _language_chosen(self, _index: int) -> None:
        if not self.english_only():  # not the English an .en model shows
            self.settings.setValue("language", self.languageCombo.currentData() or "")

    def _language_for_model(self) -> None:
        """An English-only model shows English in the Language box (``update_actions`` keeps
        it fixed); a multilingual one the language last chosen. When the model changes."""
        combo, english_only = self.languageCombo, self.english_only()
        wanted = "en" if english_only else (self.settings.value("language", "") or None)
        combo.blockSignals(True)
        combo.setCurrentIndex(max(0, combo.findData(wanted)))
        combo.blockSignals(False)
        combo.setToolTip(
            f"{self.modelCombo.currentText().strip()} reads English only: choose a multilingual model "
            "(base, small, tiny) for other languages."
            if english_only
            else ""
        )

    def _document_replaced(self, doc) -> None:
        self.table_model.set_document(doc)
        self.waveform.set_document(doc)
        self.update_actions()

    def show_audio_tracks(self, tracks) -> None:
        """The open file's audio tracks in the chooser under the video, shown when there
        is a choice (the first is read on opening)."""
        self.audioCombo.clear()
        self.audioCombo.addItems([f"{i + 1}: {label}" for i, label in enumerate(tracks)])
        for w in (self.audioTrackLabel, self.audioCombo):
            w.setVisible(len(tracks) > 1)

    def _audio_track_chosen(self, track: int) -> None:
        if track < 0 or track == self.session.audio_track or self.state() != "media":
            return
        self.session.choose_audio_track(track)
        self.waveform.set_audio(np.zeros(0, np.float32), duration_ms=self.media_duration or 0)
        self.player.set_audio_track(track)
        self.statusBar().showMessage(f"Reading audio track {track + 1}; Transcribe will use it.")

    def _profile_changed(self, text: str) -> None:
        self.settings.setValue("profile", text.lower())
        self.table_model.set_profile(text.lower())

    # ------------------------------------------------------------------ playback
    def seek(self, ms: int) -> None:
        self.player.seek(ms)

    def _position(self, ms: int) -> None:
        """The playhead moved (playing, scrubbing, stepping): the waveform, the overlay
        and the table follow it."""
        self.waveform.set_playhead(ms)
        i = self.doc.index_at(ms)
        self.player.show_text(self.doc[i].text if i is not None else "")
        self.follow(ms)

    def follow(self, ms: int) -> None:
        """Select the row shown at ``ms`` and keep it in view."""
        i = self.doc.index_at(ms)
        if i is not None and i != self.current_row():
            self.table.selectRow(i)
            self.table.scrollTo(self.table_model.index(i, 0))

    def _current_row(self, current, _previous) -> None:
        if current.isValid() and current.row() < len(self.doc):
            s = self.doc[current.row()]
            self.player.set_loop(s.start, s.end)

    # ------------------------------------------------------------------ closing
    def closeEvent(self, e):
        if self.confirm_close and self.session.dirty:
            answer = QMessageBox.question(
                self,
                "Unsaved changes",
                "Save the project before closing? Unsaved edits also stay in the autosave.",
                QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel,
            )
            if answer == QMessageBox.Cancel:
                e.ignore()
                return
            if answer == QMessageBox.Save:
                self.files.save_project()
        self.transcription.stop()
        self.player.stop()
        self.session.close()
        super().closeEvent(e)
