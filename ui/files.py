"""The window's file work: opening media, importing subtitles (asking about an
unclear encoding or a broken block), exporting, the project, recovery, recent
files, and drag and drop. Composed into ``MainWindow``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from subtitler.core import formats
from subtitler.core.formats.encoding import CANDIDATES
from subtitler.core.timecode import format_ms
from subtitler.errors import EncodingUnclear, MissingTimeLine, SubtitlerError

MEDIA_FILTER = (
    "Media (*.mp4 *.mkv *.mov *.avi *.webm *.m4v *.mp3 *.wav *.flac *.m4a *.ogg *.opus *.aac);;All files (*)"
)
ENCODINGS = ["utf-8", *CANDIDATES]  # what the import prompt offers: the ones detection chooses from


class Files:
    """The window's file work, composed into it (``window.files``): it holds the open prompt
    and reaches the window's parts through ``window``."""

    def __init__(self, window):
        self.w = window
        self._prompt = None  # the open question (encoding, a broken block, recovery), kept alive

    def open_media(self, path: str) -> bool:
        """Open a video or audio file; returns False (with a message) if it can't be used."""
        path = os.fspath(path)
        if self.w.transcription.running:
            self.w.show_error("Wait for the transcription to finish or cancel it first.")
            return False
        if not self.w.session.open_media(path):
            return False
        self.w.waveform.set_audio(np.zeros(0, np.float32), duration_ms=self.w.media_duration or 0)
        self.w.show_audio_tracks(self.w.session.media.audio_tracks)
        self.w.mediaLabel.setText(f"{Path(path).name} — {format_ms(self.w.media_duration)}")
        self.w.setWindowTitle(f"{Path(path).name} — subtitler")
        self.w.player.set_source(path, self.w.session.media.has_video)
        self._remember_recent(path)
        self.w.update_actions()
        self.w.statusBar().showMessage(f"Opened {Path(path).name}. Click Transcribe.")
        self.offer_recovery()
        return True

    def import_subtitles(self, path: str, encoding: Optional[str] = None, skip_bad: bool = False) -> bool:
        """Read a subtitle file into the editor. When its encoding is unclear, or an SRT
        block has no time line, ask (without blocking) and try again with the answer."""
        try:
            self.w.session.read(path, encoding, skip_bad)
        except EncodingUnclear as e:
            dialog = QInputDialog(self.w, objectName="encodingDialog")
            dialog.setWindowTitle("Text encoding")
            dialog.setLabelText(f"{e}\nWhich encoding is {Path(path).name} in?")
            dialog.setComboBoxItems(list(e.candidates) + [c for c in ENCODINGS if c not in e.candidates])
            dialog.textValueSelected.connect(lambda name: self.import_subtitles(path, encoding=name))
            self._ask(dialog)
            return False
        except MissingTimeLine as e:
            box = QMessageBox(
                QMessageBox.Question,
                "Import subtitles",
                f"{e}\n\nSkip that block and import the rest?",
                QMessageBox.Yes | QMessageBox.No,
                self.w,
                objectName="skipBlockBox",
            )
            box.finished.connect(
                lambda r: (
                    self.import_subtitles(path, encoding, skip_bad=True)
                    if box.clickedButton() == box.button(QMessageBox.Yes)
                    else None
                )
            )
            self._ask(box)
            return False
        except SubtitlerError as e:
            self.w.show_error(str(e))
            return False
        return True

    def _ask(self, dialog) -> None:
        self._prompt = dialog
        dialog.open()

    def export_to(self, path: str) -> bool:
        if not self.w.session.export_to(path):
            return False
        self.w.settings.setValue("exportDir", str(Path(path).parent))
        self.w.settings.setValue("exportFormat", formats.format_of(path))
        return True

    def save_project(self) -> None:
        path = None
        if not self.w.media_path:
            path, _ = QFileDialog.getSaveFileName(self.w, "Save Project", "", "Project (*.json)")
            if not path:
                return
        self.w.session.save_project(path)

    def autosave(self) -> None:
        self.w.session.autosave()

    def recover(self, auto_path) -> None:
        self.w.session.recover(auto_path)

    def offer_recovery(self) -> None:
        auto = self.w.session.recovery()
        if auto is None:
            return
        box = QMessageBox(
            QMessageBox.Question,
            "Recover unsaved edits?",
            f"subtitler found unsaved edits of {Path(self.w.media_path).name} from an earlier session. "
            "Recover them?",
            QMessageBox.Yes | QMessageBox.No,
            self.w,
            objectName="recoveryBox",
        )
        box.finished.connect(
            lambda r: self.recover(auto) if box.clickedButton() == box.button(QMessageBox.Yes) else None
        )
        self._ask(box)

    def open_dialog(self):
        path, _ = QFileDialog.getOpenFileName(
            self.w, "Open Media", self.w.settings.value("openDir", ""), MEDIA_FILTER
        )
        if path:
            self.w.settings.setValue("openDir", str(Path(path).parent))
            self.open_media(path)

    def import_dialog(self):
        path, _ = QFileDialog.getOpenFileName(
            self.w,
            "Import Subtitles",
            self.w.settings.value("exportDir", ""),
            formats.dialog_filter(for_reading=True),
        )
        if path:
            self.import_subtitles(path)

    def import_with_encoding_dialog(self):
        """Import with the text encoding chosen first (it overrides detection)."""
        name, ok = QInputDialog.getItem(
            self.w, "Import Subtitles", "Text encoding of the file:", ENCODINGS, 0, False
        )
        if ok:
            path, _ = QFileDialog.getOpenFileName(
                self.w,
                "Import Subtitles",
                self.w.settings.value("exportDir", ""),
                formats.dialog_filter(for_reading=True),
            )
            if path:
                self.import_subtitles(path, encoding=name)

    def export_dialog(self):
        stem = Path(self.w.media_path).stem if self.w.media_path else "subtitles"
        fmt = self.w.settings.value("exportFormat", "srt")  # the last folder and format used
        start = str(Path(self.w.settings.value("exportDir", str(Path.home()))) / f"{stem}.{fmt}")
        filters = formats.dialog_filter(for_reading=False)
        chosen = next((f for f in filters.split(";;") if f"*.{fmt}" in f), "")
        path, _ = QFileDialog.getSaveFileName(self.w, "Export Subtitles", start, filters, chosen)
        if path:
            self.export_to(path)

    def _remember_recent(self, path: str) -> None:
        recent = [p for p in (self.w.settings.value("recent", []) or []) if p != path]
        self.w.settings.setValue("recent", ([path] + recent)[:10])
        self.fill_recent()

    def fill_recent(self) -> None:
        self.w.recentMenu.clear()
        for p in self.w.settings.value("recent", []) or []:
            self.w.recentMenu.addAction(Path(p).name, lambda p=p: self.open_media(p)).setToolTip(p)

    def drag_enter(self, e):
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def drop(self, e):
        for url in e.mimeData().urls():
            path = url.toLocalFile()
            if Path(path).suffix.lower().lstrip(".") in formats.READABLE:
                self.import_subtitles(path)
            else:
                self.open_media(path)
            break
