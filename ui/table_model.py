"""QAbstractTableModel over the core Document; inline edits become undoable commands.

The document announces each change before and after it, so rows are inserted and
removed inside Qt's begin/end calls; findings are rechecked and ``dataChanged`` sent
for the changed rows and their neighbour only."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from subtitler.core.checks import Findings, cps
from subtitler.core.document import Document
from subtitler.core.edits import Edit, EditText, SetTimes
from subtitler.core.timecode import format_ms, parse_ms
from subtitler.errors import EditError

COLUMNS = ["#", "Start", "End", "Duration", "CPS", "Text"]
COL_START, COL_END, COL_TEXT = 1, 2, 5
WARN = QColor(255, 224, 178)
ERROR = QColor(255, 205, 210)
SERIOUS = {"overlap", "too_long", "line_count"}
_DISPLAY, _EDIT, _BACKGROUND, _TOOLTIP, _ALIGN = (
    int(r.value)
    for r in (Qt.DisplayRole, Qt.EditRole, Qt.BackgroundRole, Qt.ToolTipRole, Qt.TextAlignmentRole)
)
_RIGHT = int((Qt.AlignRight | Qt.AlignVCenter).value)
_WARN_BRUSH, _ERROR_BRUSH = QBrush(WARN), QBrush(ERROR)
_SELECTABLE = Qt.ItemIsEnabled | Qt.ItemIsSelectable
_EDITABLE = _SELECTABLE | Qt.ItemIsEditable
_CELLS = [  # the text of each column but the last, from (row, cue)
    lambda i, s: str(i + 1),
    lambda i, s: format_ms(s.start),
    lambda i, s: format_ms(s.end),
    lambda i, s: f"{s.duration / 1000:.3f}",
    lambda i, s: f"{cps(s):.1f}",
]


READ_ONLY = "The rows are read-only while transcribing: edit them when it is done (or after Cancel)."


class CueTableModel(QAbstractTableModel):
    def __init__(self, doc: Document, push: Callable[[Edit], None], on_error: Callable[[str], None]):
        super().__init__()
        self.doc = doc
        self.push = push
        self.on_error = on_error
        self.read_only = False  # while rows stream in from a transcription: they are replaced when it ends
        self.on_refused: Callable[[str], None] = lambda message: None
        self.findings = Findings(doc.cues, "default", doc.media_duration)
        doc.subscribe(self._changed)

    @property
    def profile(self):
        return self.findings.profile

    def set_document(self, doc: Document) -> None:
        self.beginResetModel()
        self.doc.unsubscribe(self._changed)
        self.doc = doc
        doc.subscribe(self._changed)
        self.findings.media_end = doc.media_duration
        self.findings.recheck_all(doc.cues)
        self.endResetModel()

    def set_profile(self, name: str) -> None:
        self.findings = Findings(self.doc.cues, name, self.doc.media_duration)
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, len(COLUMNS) - 1))

    def _changed(self, kind, first, old, new):
        """``old`` rows at ``first`` become ``new`` ones: the first min(old, new) change,
        the rest are inserted or removed at the end of the range."""
        if kind == "about_to_reset":
            self.beginResetModel()
        elif kind == "reset":
            self.findings.recheck_all(self.doc.cues)
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
            rows = self.findings.replaced(self.doc.cues, first, old, new)
            if len(rows):
                self.dataChanged.emit(self.index(rows[0], 0), self.index(rows[-1], len(COLUMNS) - 1))
            if old != new and first + new < len(self.doc):  # the numbers of the rows after it moved
                self.dataChanged.emit(
                    self.index(first + new, 0), self.index(len(self.doc) - 1, 0), [Qt.DisplayRole]
                )

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
        if not index.isValid():
            return Qt.NoItemFlags
        editable = not self.read_only and index.column() in (COL_START, COL_END, COL_TEXT)
        return _EDITABLE if editable else _SELECTABLE

    def data(self, index, role=Qt.DisplayRole):
        # Called for every visible cell and role on each repaint: plain ints for the
        # roles (PySide6's enum comparisons cost microseconds each), one column's text.
        row = index.row()
        if row >= len(self.doc.cues) or row < 0:
            return None
        role = int(role.value) if hasattr(role, "value") else int(role)
        col = index.column()
        if role == _DISPLAY or role == _EDIT:
            s = self.doc.cues[row]
            if col == COL_TEXT:
                return s.text if role == _EDIT else s.text.replace("\n", " ⏎ ")
            return _CELLS[col](row, s)
        if role == _BACKGROUND:
            found = self.findings[row]
            return (_ERROR_BRUSH if any(f.kind in SERIOUS for f in found) else _WARN_BRUSH) if found else None
        if role == _TOOLTIP:
            found = self.findings[row]
            return "\n".join(f.message[0].upper() + f.message[1:] for f in found) if found else None
        if role == _ALIGN and col < COL_TEXT:
            return _RIGHT
        return None

    def setData(self, index, value, role=Qt.EditRole):
        if role != Qt.EditRole or not index.isValid():
            return False
        if self.read_only:
            self.on_refused(READ_ONLY)
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
