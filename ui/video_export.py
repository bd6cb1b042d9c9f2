"""File → Export Video…: the document as it is now, put into the open video as a soft
subtitle track or burned into the picture (``subtitler.video``), on a thread, with
progress, an ETA and Cancel. A cancelled or failed export leaves no file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QInputDialog, QProgressDialog

from subtitler import video
from subtitler.core.document import Document
from subtitler.errors import Cancelled, SubtitlerError

MODES = {
    "mux": "A subtitle track viewers can switch (MKV or MP4, the picture copied as it is)",
    "burn": "Burned into the picture (MP4, re-encoded)",
}


class ExportWorker(QThread):
    progressed = Signal(float, object)  # fraction done, ETA in seconds (or None)
    done = Signal(str)  # "done" | "cancelled" | "failed: message"

    def __init__(self, mode: str, media: str, doc: Document, out: str, parent=None):
        super().__init__(parent)
        self.mode, self.media, self.doc, self.out = mode, media, doc, out

    def run(self) -> None:
        def progress(p):
            self.progressed.emit(p.fraction, p.eta)

        export = video.mux if self.mode == "mux" else video.burn
        try:
            export(
                self.media,
                self.doc,
                self.out,
                overwrite=True,
                progress=progress,
                cancel=self.isInterruptionRequested,
            )
        except Cancelled:
            self.done.emit("cancelled")
        except SubtitlerError as e:
            self.done.emit(f"failed: {e}")
        else:
            self.done.emit("done")


class VideoExport(QObject):
    """Owns the Export Video action, its dialog and the export thread."""

    finished = Signal(str)  # "done" | "cancelled" | "failed"

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.worker: Optional[ExportWorker] = None
        self.progress: Optional[QProgressDialog] = None
        self.action = QAction("Export &Video…", window, objectName="exportVideoAction")
        self.action.setToolTip("Put the subtitles into the video: a switchable track, or burned in")
        self.action.triggered.connect(lambda *_: self.ask())

    @property
    def running(self) -> bool:
        return self.worker is not None

    def ask(self) -> None:
        w = self.window
        labels = list(MODES.values())
        saved = w.settings.value("videoExportMode", "mux")
        choice, ok = QInputDialog.getItem(
            w, "Export Video", "Subtitles:", labels, list(MODES).index(saved) if saved in MODES else 0, False
        )
        if not ok:
            return
        mode = list(MODES)[labels.index(choice)]
        stem = Path(w.media_path).stem
        folder = Path(w.settings.value("exportDir", str(Path(w.media_path).parent)))
        suffix = ".mkv" if mode == "mux" else ".mp4"
        filters = "Matroska (*.mkv);;MP4 (*.mp4)" if mode == "mux" else "MP4 (*.mp4)"
        path, _ = QFileDialog.getSaveFileName(
            w, "Export Video", str(folder / f"{stem}.subtitled{suffix}"), filters
        )
        if path:
            w.settings.setValue("videoExportMode", mode)
            w.settings.setValue("exportDir", str(Path(path).parent))
            self.start(path, mode)

    def start(self, out: str, mode: str) -> None:
        """Export the document as it is now (no save needed first) into ``out``."""
        w = self.window
        doc = w.doc
        snapshot = Document(
            [s.copy() for s in doc.cues], doc.media_path, doc.model, doc.language, doc.media_duration
        )
        self.worker = ExportWorker(mode, w.media_path, snapshot, out, self)
        self.progress = QProgressDialog(
            f"Writing {Path(out).name}…", "Cancel", 0, 1000, w, objectName="videoExportProgress"
        )
        self.progress.setWindowTitle("Export Video")
        self.progress.setMinimumDuration(0)
        self.progress.canceled.connect(self.cancel)
        self.worker.progressed.connect(self._progressed)
        self.worker.done.connect(self._done)
        w.update_actions()
        self.worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.requestInterruption()

    def _progressed(self, fraction: float, eta) -> None:
        if self.progress is not None:
            self.progress.setValue(int(fraction * 1000))
            if eta is not None:
                self.progress.setLabelText(f"Writing… {fraction:.0%}, about {eta:.0f} s left")

    def _done(self, outcome: str) -> None:
        self.worker.wait()
        self.worker = None
        if self.progress is not None:
            self.progress.canceled.disconnect(self.cancel)
            self.progress.close()
            self.progress = None
        w = self.window
        w.update_actions()
        if outcome.startswith("failed: "):
            w.show_error(outcome.removeprefix("failed: "))
            outcome = "failed"
        else:
            w.statusBar().showMessage(
                "Video written." if outcome == "done" else "Export cancelled: no file written.", 8000
            )
        self.finished.emit(outcome)
