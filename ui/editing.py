"""The window's edit actions, each a core edit pushed on the undo stack: split, merge,
insert, delete, shift, snap, set times from the playhead, find and replace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from PySide6.QtWidgets import QInputDialog, QMenu, QTableView

from subtitler.core.edits import (
    Delete,
    Merge,
    ReplaceText,
    SetTimes,
    Shift,
    SnapToNeighbours,
    Split,
    insert_after,
)
from subtitler.errors import EditError
from ui.session import Session


class Editing:
    def __init__(
        self,
        session: Session,
        table: QTableView,
        playhead: Callable[[], int],
        show_error: Callable[[str], None],
        status: Callable[[str], None],
    ):
        self.session, self.table, self.playhead = session, table, playhead
        self.show_error, self.status = show_error, status

    @property
    def doc(self):
        return self.session.doc

    def current_row(self) -> Optional[int]:
        idx = self.table.currentIndex()
        return idx.row() if idx.isValid() else None

    def selected_rows(self) -> list[int]:
        return sorted({i.row() for i in self.table.selectionModel().selectedRows()}) or (
            [self.current_row()] if self.current_row() is not None else []
        )

    def _try(self, make) -> bool:
        try:
            self.session.push(make())
            return True
        except EditError as e:
            self.show_error(str(e))
            return False

    def split_current(self, pos: Optional[int] = None) -> bool:
        row = self.current_row()
        if row is None:
            return False
        editor = self.table.indexWidget(self.table.currentIndex())
        if pos is None:
            pos = (
                editor.cursorPosition()
                if editor is not None and hasattr(editor, "cursorPosition")
                else len(self.doc[row].text) // 2
            )
        return self._try(lambda: Split(self.doc, row, pos))

    def merge_current(self) -> bool:
        rows = self.selected_rows()
        return bool(rows) and self._try(lambda: Merge(self.doc, rows[0]))

    def insert_current(self) -> bool:
        return self._try(lambda: insert_after(self.doc, self.current_row()))

    def delete_selected(self) -> bool:
        rows = self.selected_rows()
        return bool(rows) and self._try(lambda: Delete(self.doc, rows[0], rows[-1] - rows[0] + 1))

    def shift(self, delta_ms: int, scope: str = "all") -> bool:
        rows = self.selected_rows()
        if scope == "all" or not rows:
            return self._try(lambda: Shift(self.doc, delta_ms))
        if scope == "selected":
            return self._try(lambda: Shift(self.doc, delta_ms, rows[0], rows[-1] - rows[0] + 1))
        return self._try(lambda: Shift(self.doc, delta_ms, rows[0]))

    def shift_dialog(self) -> None:
        ms, ok = QInputDialog.getInt(
            self.table, "Shift Times", "Milliseconds (negative moves earlier):", 0, -3_600_000, 3_600_000, 100
        )
        if ok and ms:
            scope, ok = QInputDialog.getItem(
                self.table, "Shift Times", "Which subtitles:", ["all", "selected", "from here on"], 0, False
            )
            if ok:
                self.shift(ms, scope)

    def snap_current(self) -> bool:
        row = self.current_row()
        return row is not None and self._try(lambda: SnapToNeighbours(self.doc, row))

    def set_from_playhead(self, which: str) -> bool:
        row = self.current_row()
        return row is not None and self._try(lambda: SetTimes(self.doc, row, **{which: self.playhead()}))

    def find_replace(self, find: str, replace: str) -> int:
        try:
            edit = ReplaceText(self.doc, find, replace)
        except EditError as e:
            self.show_error(str(e))
            return 0
        self.session.push(edit)
        return edit.count

    def replace_dialog(self) -> None:
        find, ok = QInputDialog.getText(self.table, "Find and Replace", "Find:")
        if ok and find:
            repl, ok = QInputDialog.getText(self.table, "Find and Replace", f"Replace '{find}' with:")
            if ok and (n := self.find_replace(find, repl)):
                self.status(f"Replaced {n} occurrence(s).")

    def context_menu(self, pos, actions: list) -> None:
        menu = QMenu(self.table)
        for a in actions:
            menu.addSeparator() if a is None else menu.addAction(a)
        menu.popup(self.table.viewport().mapToGlobal(pos))
