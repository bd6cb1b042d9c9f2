"""The window's file work: opening media, importing subtitles (asking about an
unclear encoding or a broken block), exporting, the project, recovery, recent
files, and drag and drop. A part of ``MainWindow``."""

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


class FilesMixin:
    def open_media(self, path: str) -> bool:
        """Open a video or audio file; returns False (with a message) if it can't be used."""
        path = os.fspath(path)
        if self.transcription.running:
            self.show_error("Wait for the transcription to finish or cancel it first.")
            return False
        if not self.session.open_media(path):
            return False
        self.waveform.set_audio(np.zeros(0, np.float32), duration_ms=self.media_duration or 0)
        self.mediaLabel.setText(f"{Path(path).name} — {format_ms(self.media_duration)}")
        self.setWindowTitle(f"{Path(path).name} — subtitler")
        self.player.set_source(path, self.session.media.has_video)
        self._remember_recent(path)
        self._set_running(False)
        self.statusBar().showMessage(f"Opened {Path(path).name}. Click Transcribe.")
        self._offer_recovery()
        return True

    def import_subtitles(self, path: str, encoding: Optional[str] = None, skip_bad: bool = False) -> bool:
        """Read a subtitle file into the editor. When its encoding is unclear, or an SRT
        block has no time line, ask (without blocking) and try again with the answer."""
        try:
            self.session.read(path, encoding, skip_bad)
        except EncodingUnclear as e:
            dialog = QInputDialog(self, objectName="encodingDialog")
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
                self,
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
            self.show_error(str(e))
            return False
        return True

    def _ask(self, dialog) -> None:
        self._prompt = dialog
        dialog.open()

    def export_to(self, path: str) -> bool:
        if not self.session.export_to(path):
            return False
        self.settings.setValue("exportDir", str(Path(path).parent))
        self.settings.setValue("exportFormat", formats.format_of(path))
        return True

    def save_project(self) -> None:
        path = None
        if not self.media_path:
            path, _ = QFileDialog.getSaveFileName(self, "Save Project", "", "Project (*.json)")
            if not path:
                return
        self.session.save_project(path)

    def autosave(self) -> None:
        self.session.autosave()

    def recover(self, auto_path) -> None:
        self.session.recover(auto_path)

    def _offer_recovery(self) -> None:
        auto = self.session.recovery()
        if auto is None:
            return
        box = QMessageBox(
            QMessageBox.Question,
            "Recover unsaved edits?",
            f"subtitler found unsaved edits of {Path(self.media_path).name} from an earlier session. "
            "Recover them?",
            QMessageBox.Yes | QMessageBox.No,
            self,
            objectName="recoveryBox",
        )
        box.finished.connect(
            lambda r: self.recover(auto) if box.clickedButton() == box.button(QMessageBox.Yes) else None
        )
        self._ask(box)

    def _open_dialog(self):
        path, _ = QFileDialog.getOpenFileName(
            self, "Open Media", self.settings.value("openDir", ""), MEDIA_FILTER
        )
        if path:
            self.settings.setValue("openDir", str(Path(path).parent))
            self.open_media(path)

    def _import_dialog(self):
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Import Subtitles",
            self.settings.value("exportDir", ""),
            formats.dialog_filter(for_reading=True),
        )
        if path:
            self.import_subtitles(path)

    def _import_with_encoding_dialog(self):
        """Import with the text encoding chosen first (it overrides detection)."""
        name, ok = QInputDialog.getItem(
            self, "Import Subtitles", "Text encoding of the file:", ENCODINGS, 0, False
        )
        if ok:
            path, _ = QFileDialog.getOpenFileName(
                self,
                "Import Subtitles",
                self.settings.value("exportDir", ""),
                formats.dialog_filter(for_reading=True),
            )
            if path:
                self.import_subtitles(path, encoding=name)

    def _export_dialog(self):
        stem = Path(self.media_path).stem if self.media_path else "subtitles"
        fmt = self.settings.value("exportFormat", "srt")  # the last folder and format used
        start = str(Path(self.settings.value("exportDir", str(Path.home()))) / f"{stem}.{fmt}")
        filters = formats.dialog_filter(for_reading=False)
        chosen = next((f for f in filters.split(";;") if f"*.{fmt}" in f), "")
        path, _ = QFileDialog.getSaveFileName(self, "Export Subtitles", start, filters, chosen)
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
