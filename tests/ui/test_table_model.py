"""The table model keeps Qt's model contract through every kind of change."""

from PySide6.QtGui import QUndoStack
from PySide6.QtTest import QAbstractItemModelTester

from subtitler.core.document import Cue, Document
from subtitler.core.edits import Delete, Insert, Merge, SetTimes, Shift, Split, insert_after
from ui.table_model import COL_TEXT, CueTableModel
from ui.undo import EditCommand


def test_model_tester_finds_nothing_through_edits_undo_and_redo(qtbot):
    doc = Document([Cue(i * 1000, i * 1000 + 800, f"cue number {i}") for i in range(20)])
    stack = QUndoStack()
    errors = []
    model = CueTableModel(doc, lambda e: stack.push(EditCommand(e)), errors.append)
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    removed, inserted = [], []
    model.rowsAboutToBeRemoved.connect(lambda p, a, b: removed.append((a, b, len(doc))))
    model.rowsAboutToBeInserted.connect(lambda p, a, b: inserted.append((a, b, len(doc))))
    push = model.push
    push(Insert(doc, 3, Cue(3850, 3900, "new")))
    push(Split(doc, 5, 4))
    push(Merge(doc, 0))
    push(Delete(doc, 10, 3))
    push(insert_after(doc, len(doc) - 1))
    push(SetTimes(doc, 2, end=doc[2].end + 150))
    push(Shift(doc, 250))
    assert model.setData(model.index(1, COL_TEXT), "edited")
    n = len(doc)
    for _ in range(stack.count()):
        stack.undo()
    assert len(doc) == 20 and doc[0].text == "cue number 0"
    for _ in range(stack.count()):
        stack.redo()
    assert len(doc) == n
    # Rows are announced before they go and before they come: the document still had
    # its old length when Qt was told.
    assert removed and all(b < total for a, b, total in removed)
    assert inserted and all(a <= total for a, b, total in inserted)
    doc.set_cues(doc.cues[:5])
    assert model.rowCount() == 5 and not errors
