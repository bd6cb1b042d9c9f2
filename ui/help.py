"""The Help menu: the keyboard shortcuts (read from the window's own actions, so the list
cannot drift from them) and About (the version, the model and what ``subtitler doctor``
says of this machine)."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox

from subtitler import __version__


def shortcuts(window) -> list[tuple[str, str]]:
    """(keys, what they do) for every window action that has a shortcut."""
    rows = []
    for a in window.findChildren(QAction):
        keys = a.shortcut().toString()
        name = a.text().replace("&", "").rstrip("…").strip()
        if keys and name and (keys, name) not in rows:
            rows.append((keys, name))
    return sorted(rows, key=lambda r: r[1].lower())


def shortcuts_html(window) -> str:
    cells = "".join(f"<tr><td><b>{escape(k)}</b></td><td>{escape(n)}</td></tr>" for k, n in shortcuts(window))
    return f"<table cellspacing='6'>{cells}</table>"


def about_html(window) -> str:
    from subtitler.pipeline import machine_report

    report = machine_report(window.computeCombo.currentData())
    report["model chosen"] = window.modelCombo.currentText()
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in report.items())
    return (
        f"<h3>subtitler {escape(__version__)}</h3><p>Video in, well-timed subtitles out, on this machine."
        f"</p><table cellspacing='4'>{rows}</table>"
    )


class HelpMenu:
    """Builds the Help menu's actions and shows their boxes (not modal)."""

    def __init__(self, window):
        self.window = window
        self.box = None
        self.shortcuts_action = QAction("&Keyboard Shortcuts", window, objectName="shortcutsAction")
        self.shortcuts_action.triggered.connect(
            lambda *_: self._show("Keyboard Shortcuts", shortcuts_html(window))
        )
        self.about_action = QAction("&About subtitler", window, objectName="aboutAction")
        self.about_action.triggered.connect(lambda *_: self._show("About subtitler", about_html(window)))

    def _show(self, title: str, html: str) -> None:
        if self.box is not None:
            self.box.close()
        self.box = QMessageBox(
            QMessageBox.Information, title, html, QMessageBox.Ok, self.window, objectName="helpBox"
        )
        self.box.setTextFormat(Qt.RichText)
        self.box.open()
