"""QAbstractTableModel over the core Document; inline edits become undoable commands."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from subtitler.core.checks import check, cps
from subtitler.core.document import Document
from subtitler.core.edits import Edit, EditText, SetTimes
from subtitler.errors import EditError
from subtitler.core.profiles import get_profile
from subtitler.core.timecode import format_ms, parse_ms

COLUMNS = ["#", "Start", "End", "Duration", "CPS", "Text"]
COL_START, COL_END, COL_TEXT = 1, 2, 5
WARN = QColor(255, 224, 178)
ERROR = QColor(255, 205, 210)
SERIOUS = {"overlap", "too_long", "line_count"}


class SegmentTableModel(QAbstractTableModel):
    def __init__(self, doc: Document, push: Callable[[Edit], None], on_error: Callable[[str], None]):
        super().__init__()
        self.doc = doc
        self.push = push
        self.on_error = on_error
        self.profile = get_profile("default")
        self.findings: dict[int, list] = {}
        doc.subscribe(self._changed)
        self._recheck()

    def set_document(self, doc: Document) -> None:
        self.beginResetModel()
        self.doc.unsubscribe(self._changed)
        self.doc = doc
        doc.subscribe(self._changed)
        self._recheck()
        self.endResetModel()

    def set_profile(self, name: str) -> None:
        self.profile = get_profile(name)
        self._recheck()
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, len(COLUMNS) - 1))

    def _recheck(self) -> None:
        self.findings = {}
        for f in check(self.doc.segments, self.profile):
            self.findings.setdefault(f.index, []).append(f)

    def _changed(self, kind, first, old, new):
        # The core reports a replaced range; map it to row inserts/removals/changes.
        if kind == "reset":
            self.beginResetModel()
            self._recheck()
            self.endResetModel()
            return
        if old > new:
            self.beginRemoveRows(QModelIndex(), first + new, first + old - 1)
            self.endRemoveRows()
        elif new > old:
            self.beginInsertRows(QModelIndex(), first + old, first + new - 1)
            self.endInsertRows()
        self._recheck()
        if self.rowCount():
            lo = max(0, first - 1)
            self.dataChanged.emit(self.index(lo, 0), self.index(self.rowCount() - 1, len(COLUMNS) - 1))

    # Qt API
    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self.doc)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return COLUMNS[section]
        return None

    def flags(self, index):
        f = Qt.ItemIsEnabled | Qt.ItemIsSelectable
        if index.column() in (COL_START, COL_END, COL_TEXT):
            f |= Qt.ItemIsEditable
        return f

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid() or index.row() >= len(self.doc):
            return None
        s = self.doc[index.row()]
        col = index.column()
        if role in (Qt.DisplayRole, Qt.EditRole):
            return [
                str(index.row() + 1), format_ms(s.start), format_ms(s.end),
                f"{s.duration / 1000:.3f}", f"{cps(s):.1f}",
                s.text if role == Qt.EditRole else s.text.replace("\n", " ⏎ "),
            ][col]
        if role == Qt.BackgroundRole and index.row() in self.findings:
            kinds = {f.kind for f in self.findings[index.row()]}
            return QBrush(ERROR if kinds & SERIOUS else WARN)
        if role == Qt.ToolTipRole and index.row() in self.findings:
            return "\n".join(f.message[0].upper() + f.message[1:] for f in self.findings[index.row()])
        if role == Qt.TextAlignmentRole and col < COL_TEXT:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None

    def setData(self, index, value, role=Qt.EditRole):
        if role != Qt.EditRole or not index.isValid():
            return False
        row, col = index.row(), index.column()
        try:
            if col == COL_TEXT:
                if value == self.doc[row].text:
                    return False
                self.push(EditText(self.doc, row, str(value)))
            elif col in (COL_START, COL_END):
                ms = parse_ms(str(value))
                self.push(SetTimes(self.doc, row, **({"start": ms} if col == COL_START else {"end": ms})))
            else:
                return False
        except (EditError, ValueError) as e:
            self.on_error(str(e))
            return False
        return True
