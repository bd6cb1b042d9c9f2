"""Waveform timeline: audio envelope, cues as regions, the playhead; zoom and scroll;
dragging a cue edge retimes it as one undoable edit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

from subtitler.core.document import Document
from subtitler.core.edits import Edit, SetTimes
from subtitler.errors import EditError
from subtitler.pipeline import waveform_peaks

EDGE_PX = 6


class WaveformView(QWidget):
    seekRequested = Signal(int)  # ms

    def __init__(self, push: Callable[[Edit], None], on_error: Callable[[str], None]):
        super().__init__()
        self.setObjectName("waveformView")
        self.setMinimumHeight(110)
        self.setMouseTracking(True)
        self.push = push
        self.on_error = on_error
        self.doc: Optional[Document] = None
        self.peaks = np.zeros(0, np.float32)  # max |sample| per 10 ms
        self.duration = 0  # ms
        self.view_start = 0  # ms at the left edge
        self.ms_per_px = 20.0
        self.playhead = 0
        self._drag: Optional[tuple[int, str]] = None  # (cue index, "start" | "end")
        self._drag_ms = 0

    def set_document(self, doc: Document) -> None:
        if self.doc is not None:
            self.doc.unsubscribe(self._changed)
        self.doc = doc
        doc.subscribe(self._changed)
        self.update()

    def _changed(self, kind, first, old, new) -> None:
        """Repaint what a change touched: the old and the new cues of the range (and
        the one before, whose number may move), not the whole timeline."""
        if kind in ("reset", "about_to_reset"):
            self.update()
            return
        segs = self.doc.cues[max(0, first - 1) : first + (old if kind == "about_to_replace" else new)]
        if not segs:
            return
        x0, x1 = self.x_of(min(s.start for s in segs)), self.x_of(max(s.end for s in segs))
        if x1 >= 0 and x0 <= self.width():
            self.update(
                int(max(0, x0 - EDGE_PX)),
                0,
                int(min(self.width(), x1 + EDGE_PX) - max(0, x0 - EDGE_PX)) + 1,
                self.height(),
            )

    def set_audio(
        self, samples: np.ndarray, sample_rate: int = 16000, duration_ms: Optional[int] = None
    ) -> None:
        """Show ``samples`` (or, while they load, an empty timeline of ``duration_ms``)."""
        hop = sample_rate // 100
        n = len(samples) // hop
        self.peaks = waveform_peaks(samples, hop) if n else np.zeros(0, np.float32)
        self.duration = int(len(samples) * 1000 / sample_rate) if n else int(duration_ms or 0)
        self.ms_per_px = max(2.0, self.duration / max(1, self.width()))
        self.view_start = 0
        self.update()

    def set_playhead(self, ms: int) -> None:
        self.playhead = ms
        right = self.view_start + self.width() * self.ms_per_px
        if not self.view_start <= ms <= right:  # follow playback
            self.view_start = max(0, int(ms - self.width() * self.ms_per_px * 0.1))
        self.update()

    # coordinates
    def x_of(self, ms: float) -> float:
        return (ms - self.view_start) / self.ms_per_px

    def ms_of(self, x: float) -> int:
        return int(round(self.view_start + x * self.ms_per_px))

    def zoom(self, factor: float, anchor_x: Optional[float] = None) -> None:
        anchor_x = self.width() / 2 if anchor_x is None else anchor_x
        anchor_ms = self.ms_of(anchor_x)
        self.ms_per_px = float(
            np.clip(self.ms_per_px * factor, 0.5, max(2.0, self.duration / max(1, self.width())))
        )
        self.view_start = max(0, int(anchor_ms - anchor_x * self.ms_per_px))
        self.update()

    def scroll_by(self, px: float) -> None:
        self.view_start = max(0, int(self.view_start + px * self.ms_per_px))
        self.update()

    def edge_at(self, x: float) -> Optional[tuple[int, str]]:
        if self.doc is None:
            return None
        best = None
        for i in self.doc.visible(self.ms_of(x - EDGE_PX), self.ms_of(x + EDGE_PX)):
            s = self.doc.cues[i]
            for which, ms in (("start", s.start), ("end", s.end)):
                d = abs(self.x_of(ms) - x)
                if d <= EDGE_PX and (best is None or d < best[0]):
                    best = (d, i, which)
        return (best[1], best[2]) if best else None

    # painting
    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(32, 34, 40))
        h = self.height()
        mid = h / 2
        if self.doc is not None:
            for i in self.doc.visible(self.ms_of(0), self.ms_of(self.width())):
                s = self.doc.cues[i]
                x0, x1 = self.x_of(s.start), self.x_of(s.end)
                if x1 < 0 or x0 > self.width():
                    continue
                p.fillRect(QRectF(x0, 0, x1 - x0, h), QColor(66, 133, 244, 70))
                p.setPen(QPen(QColor(120, 170, 255), 2))
                p.drawLine(QPointF(x0, 0), QPointF(x0, h))
                p.drawLine(QPointF(x1, 0), QPointF(x1, h))
                p.setPen(QColor(220, 230, 255))
                p.drawText(
                    QRectF(x0 + 4, 2, max(0, x1 - x0 - 8), 16),
                    Qt.AlignLeft | Qt.AlignVCenter,
                    f"{i + 1}  {s.text.splitlines()[0] if s.text else ''}",
                )
        if self.peaks.size:
            xs = np.arange(self.width())
            idx = ((self.view_start + xs * self.ms_per_px) / 10).astype(int)
            valid = idx < self.peaks.size
            p.setPen(QColor(130, 220, 160))
            # Plain Python numbers only: numpy scalars handed to Qt constructors trip a
            # reference-count bug in PySide6 (a "deallocating None" crash after a while).
            amps = (self.peaks[idx[valid]] * (mid - 4)).tolist()
            p.drawLines([QLineF(x, mid - a, x, mid + a) for x, a in zip(xs[valid].tolist(), amps)])
        px = self.x_of(self.playhead)
        p.setPen(QPen(QColor(255, 82, 82), 2))
        p.drawLine(QPointF(px, 0), QPointF(px, h))
        p.end()

    # interaction
    def mousePressEvent(self, e):
        x = e.position().x()
        self._drag = self.edge_at(x)
        if self._drag is None:
            self.seekRequested.emit(self.ms_of(x))
        else:
            self._drag_ms = self.ms_of(x)

    def mouseMoveEvent(self, e):
        x = e.position().x()
        if self._drag is not None:
            self._drag_ms = max(0, self.ms_of(x))
            self.update()
        self.setCursor(Qt.SizeHorCursor if self.edge_at(x) or self._drag else Qt.ArrowCursor)

    def mouseReleaseEvent(self, e):
        if self._drag is None or self.doc is None:
            return
        i, which = self._drag
        self._drag = None
        ms = max(0, self.ms_of(e.position().x()))
        try:
            self.push(SetTimes(self.doc, i, **{which: ms}))
        except EditError as err:
            self.on_error(str(err))

    def wheelEvent(self, e):
        if e.modifiers() & Qt.ControlModifier:
            self.zoom(0.8 if e.angleDelta().y() > 0 else 1.25, e.position().x())
        else:
            self.scroll_by(-e.angleDelta().y() / 2)
