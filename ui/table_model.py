"""QAbstractTableModel over the core Document; inline edits become undoable commands.

The document announces each change before and after it, so rows are inserted and
removed inside Qt's begin/end calls; findings are rechecked and ``dataChanged`` sent
for the changed rows and their neighbour only."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from subtitler.core.checks import Findings, cps
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
        self.findings = Findings(doc.segments, "default")
        doc.subscribe(self._changed)

    @property
    def profile(self):
        return self.findings.profile

    def set_document(self, doc: Document) -> None:
        self.beginResetModel()
        self.doc.unsubscribe(self._changed)
        self.doc = doc
        doc.subscribe(self._changed)
        self.findings.recheck_all(doc.segments)
        self.endResetModel()

    def set_profile(self, name: str) -> None:
        self.findings = Findings(self.doc.segments, name)
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, len(COLUMNS) - 1))

    def _changed(self, kind, first, old, new):
        """``old`` rows at ``first`` become ``new`` ones: the first min(old, new) change,
        the rest are inserted or removed at the end of the range."""
        if kind == "about_to_reset":
            self.beginResetModel()
        elif kind == "reset":
            self.findings.recheck_all(self.doc.segments)
            self.endResetModel()
        elif kind == "about_to_replace":
            if old > new:
                self.beginRemoveRows(QModelIndex(), first + new, first + old - 1)
            elif new > old:
                self.beginInsertRows(QModelIndex(), first + old, first + new - 1)
        elif kind == "replaced":
            if old > new:
                self.endRemoveRows()
            elif new > old:
                self.endInsertRows()
            rows = self.findings.replaced(self.doc.segments, first, old, new)
            if len(rows):
                self.dataChanged.emit(self.index(rows[0], 0), self.index(rows[-1], len(COLUMNS) - 1))
            if old != new and first + new < len(self.doc):  # the numbers of the rows after it moved
                self.dataChanged.emit(self.index(first + new, 0), self.index(len(self.doc) - 1, 0),
                                      [Qt.DisplayRole])

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
        found = self.findings[index.row()] if role in (Qt.BackgroundRole, Qt.ToolTipRole) else None
        if role == Qt.BackgroundRole and found:
            kinds = {f.kind for f in found}
            return QBrush(ERROR if kinds & SERIOUS else WARN)
        if role == Qt.ToolTipRole and found:
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
