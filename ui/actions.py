"""The window's actions, toolbar and menus, built onto the window (``MainWindow`` calls
``build_actions`` then ``build_menus``): each action is a named ``QAction`` with its
shortcut, so tests and the Help menu find them by name."""

from __future__ import annotations

from functools import partial

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QToolBar

from subtitler.core.profiles import PROFILES
from subtitler.pipeline import COMPUTE_TYPES, languages
from ui.help import HelpMenu
from ui.transcription import model_choices


def action(w, name, text, slot, shortcut=None, tip=None):
    a = QAction(text, w, objectName=name, toolTip=tip or text)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    a.triggered.connect(lambda *_: slot())
    w.addAction(a)
    return a


def build_actions(w):
    A, E = partial(action, w), w.editing
    w.openAction = A("openAction", "&Open Media…", w.files.open_dialog, QKeySequence.Open)
    w.importAction = A("importAction", "&Import Subtitles…", w.files.import_dialog, "Ctrl+I")
    w.importEncodingAction = A(
        "importEncodingAction",
        "Import Subtitles with &Encoding…",
        w.files.import_with_encoding_dialog,
        "Ctrl+Shift+I",
    )
    w.exportAction = A("exportAction", "&Export Subtitles…", w.files.export_dialog, "Ctrl+E")
    w.saveAction = A("saveAction", "&Save Project", w.files.save_project, QKeySequence.Save)
    w.transcribeAction = A(
        "transcribeAction",
        "Transcribe",
        w.transcribe,
        "Ctrl+R",
        "Transcribe the audio of the open file",
    )
    w.cancelAction = A("cancelAction", "Cancel", w.cancel, "Esc", "Stop; keep what is done")
    stack = w.session.undo_stack
    w.undoAction, w.redoAction = (
        stack.createUndoAction(w, "&Undo"),
        stack.createRedoAction(w, "&Redo"),
    )
    for a, name, keys in (
        (w.undoAction, "undoAction", QKeySequence.Undo),
        (w.redoAction, "redoAction", QKeySequence.Redo),
    ):
        a.setObjectName(name)
        a.setShortcut(keys)
    w.addActions([w.undoAction, w.redoAction])
    w.edit_actions = [
        A("splitAction", "Split at Cursor", E.split_current, "Ctrl+B"),
        A("mergeAction", "Merge with Next", E.merge_current, "Ctrl+M"),
        A("insertAction", "Insert After", E.insert_current, "Ctrl+Return"),
        A("deleteAction", "Delete", E.delete_selected, "Ctrl+Delete"),
        None,
        A("setStartAction", "Set Start from Playhead", lambda: E.set_from_playhead("start"), "Ctrl+["),
        A("setEndAction", "Set End from Playhead", lambda: E.set_from_playhead("end"), "Ctrl+]"),
        A("snapAction", "Snap to Neighbours", E.snap_current, "Ctrl+Shift+N"),
        A("shiftAction", "Shift Times…", E.shift_dialog, "Ctrl+Shift+T"),
        A("findReplaceAction", "Find and Replace…", E.replace_dialog, QKeySequence.Replace),
    ]
    w.playAction = A("playAction", "Play/Pause", w.player.toggle_play, "Ctrl+Space")
    w.zoomInAction = A("zoomInAction", "Zoom In", lambda: w.waveform.zoom(0.5), "Ctrl+=")
    w.zoomOutAction = A("zoomOutAction", "Zoom Out", lambda: w.waveform.zoom(2.0), "Ctrl+-")
    # The edit actions' methods, by the window's own names.
    w.split_current, w.merge_current, w.delete_selected = (
        E.split_current,
        E.merge_current,
        E.delete_selected,
    )
    w.shift, w.find_replace, w.current_row = E.shift, E.find_replace, E.current_row


def build_menus(w):
    tb = QToolBar("Main", objectName="mainToolbar")
    w.addToolBar(tb)
    tb.addAction(w.openAction)
    tb.addSeparator()
    w.modelCombo = QComboBox(
        objectName="modelCombo",
        editable=True,
        toolTip="Bundled and downloaded models; or type a Hugging Face repo or a folder",
    )
    w.modelCombo.addItems(model_choices())
    w.modelCombo.setCurrentText(w.settings.value("model", w.modelCombo.itemText(0)))
    w.languageCombo = QComboBox(objectName="languageCombo")
    w.languageCombo.addItem("Auto-detect", None)
    for code, name in languages().items():
        w.languageCombo.addItem(name.title(), code)
    if saved := w.settings.value("language", None):
        w.languageCombo.setCurrentIndex(max(0, w.languageCombo.findData(saved)))
    w.taskCombo = QComboBox(objectName="taskCombo")
    w.taskCombo.addItem("Transcribe", "transcribe")
    w.taskCombo.addItem("Translate to English", "translate")
    w.computeCombo = QComboBox(
        objectName="computeCombo",
        toolTip="The weights the CPU reads: int8 is faster at the same accuracy where the C kernels run "
        "(Auto picks it there; Help → About says what runs), float32 reads them as published",
    )
    for kind in COMPUTE_TYPES:
        w.computeCombo.addItem(kind.title() if kind == "auto" else kind, kind)
    w.computeCombo.setCurrentIndex(max(0, w.computeCombo.findData(w.settings.value("compute_type", "auto"))))
    w.profileCombo = QComboBox(objectName="profileCombo")
    w.profileCombo.addItems([p.title() for p in PROFILES])
    w.profileCombo.setCurrentText(str(w.settings.value("profile", "default")).title())
    w.table_model.set_profile(w.profileCombo.currentText().lower())
    for label, widget in (
        (" Model ", w.modelCombo),
        (" Language ", w.languageCombo),
        (" Task ", w.taskCombo),
        (" Compute ", w.computeCombo),
    ):
        if label:
            tb.addWidget(QLabel(label))
        tb.addWidget(widget)
    tb.addActions([w.transcribeAction, w.cancelAction])
    tb.addSeparator()
    tb.addWidget(QLabel(" Reading profile "))
    tb.addWidget(w.profileCombo)
    tb.addSeparator()
    tb.addActions([w.undoAction, w.redoAction, w.exportAction])
    m = w.menuBar()
    f = m.addMenu("&File")
    f.addActions([w.openAction, w.importAction, w.importEncodingAction])
    w.recentMenu = f.addMenu("Open &Recent")
    w.files.fill_recent()
    f.addSeparator()
    f.addActions([w.saveAction, w.exportAction, w.video_export.action])
    f.addSeparator()
    f.addAction(action(w, "quitAction", "&Quit", w.close, QKeySequence.Quit))
    e = m.addMenu("&Edit")
    e.addActions([w.undoAction, w.redoAction])
    e.addSeparator()
    for a in w.edit_actions:
        e.addSeparator() if a is None else e.addAction(a)
    m.addMenu("&Playback").addActions([w.playAction, w.zoomInAction, w.zoomOutAction])
    m.addMenu("&Transcribe").addActions([w.transcribeAction, w.cancelAction])
    w.help = HelpMenu(w)
    m.addMenu("&Help").addActions([w.help.shortcuts_action, w.help.about_action])
