"""Core edits on a QUndoStack, unchanged."""

from PySide6.QtGui import QUndoCommand

from subtitler.core.edits import Edit


class EditCommand(QUndoCommand):
    def __init__(self, edit: Edit):
        super().__init__(edit.label)
        self.edit = edit

    def redo(self):
        self.edit.do()

    def undo(self):
        self.edit.undo()
