"""File → Export Video in the real window: the document as it is now, as a soft track or
burned in, with Cancel leaving no file; and which actions each state enables."""

import re
import subprocess

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton

from subtitler.core import formats
from subtitler.core.document import Cue, Document
from ui.table_model import COL_TEXT


@pytest.fixture
def window(qtbot, media_dir, tmp_path):
    from ui.main_window import MainWindow

    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    w.show()
    assert w.state() == "empty"
    assert w.open_media(str(media_dir / "jfk.mp4"))
    subs = tmp_path / "in.srt"
    formats.save(Document([Cue(1000, 3000, "Hello there."), Cue(6000, 8000, "Second cue.")]), subs)
    assert w.import_subtitles(str(subs))
    return w


def export(qtbot, w, out, mode, cancel=False):
    with qtbot.waitSignal(w.video_export.finished, timeout=60_000) as outcome:
        w.video_export.start(str(out), mode)
        assert w.state() == "exporting"
        assert not w.transcribeAction.isEnabled() and not w.openAction.isEnabled()
        assert not w.video_export.action.isEnabled()
        if cancel:
            button = w.video_export.progress.findChild(QPushButton)
            qtbot.mouseClick(button, Qt.LeftButton)  # the dialog's Cancel button
    assert w.state() == "media" and w.video_export.action.isEnabled()
    return outcome.args[0]


def test_export_video_as_a_track_takes_the_document_as_it_is_now(qtbot, window, tmp_path, ffmpeg):
    index = window.table_model.index(0, COL_TEXT)
    assert window.table_model.setData(index, "Edited, not saved.", Qt.EditRole)
    out = tmp_path / "out.mkv"
    assert export(qtbot, window, out, "mux") == "done"
    back = tmp_path / "back.srt"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(out), "-map", "0:s:0", str(back)], check=True)
    assert [s.text for s in formats.load(back).cues] == ["Edited, not saved.", "Second cue."]


def test_export_video_burned_in(qtbot, window, tmp_path, ffmpeg):
    out = tmp_path / "out.mp4"
    assert export(qtbot, window, out, "burn") == "done"
    dump = subprocess.run([ffmpeg, "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
    assert re.search(r"Video: h264", dump) and "Subtitle" not in dump


@pytest.mark.parametrize("mode, name", [("mux", "c.mkv"), ("burn", "c.mp4")])
def test_cancelled_export_leaves_no_file(qtbot, window, tmp_path, mode, name):
    before = set(tmp_path.iterdir())
    assert export(qtbot, window, tmp_path / name, mode, cancel=True) == "cancelled"
    assert set(tmp_path.iterdir()) == before
    assert "no file written" in window.statusBar().currentMessage()


def test_actions_follow_the_window_state(qtbot, media_dir):
    from ui.main_window import MainWindow

    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    enabled = lambda: {
        a.objectName()
        for a in (w.transcribeAction, w.cancelAction, w.openAction, w.video_export.action)
        if a.isEnabled()
    }
    assert w.state() == "empty" and enabled() == {"openAction"}
    w.open_media(str(media_dir / "jfk.mp4"))
    assert w.state() == "media" and enabled() == {"openAction", "transcribeAction"}  # no cues to export yet
    w.session.set_document(Document([Cue(0, 1000, "Hi.")]))
    assert enabled() == {"openAction", "transcribeAction", "exportVideoAction"}
    w._set_running(True)
    assert w.state() == "transcribing" and enabled() == {"cancelAction"}
    w._set_running(False)
    assert enabled() == {"openAction", "transcribeAction", "exportVideoAction"}


def test_help_lists_the_shortcuts_and_about_says_what_doctor_says(qtbot, window):
    from ui.help import about_html, shortcuts

    rows = dict((name, keys) for keys, name in shortcuts(window))
    assert rows["Transcribe"] == "Ctrl+R" and rows["Export Subtitles"] == "Ctrl+E"
    html = about_html(window)
    assert "ffmpeg" in html and "cpu kernels" in html and window.modelCombo.currentText() in html
    window.help.about_action.trigger()
    box = window.findChild(QMessageBox, "helpBox")
    assert box is not None and box.isVisible() and "subtitler" in box.text()


def test_export_remembers_the_last_folder_and_format(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    assert window.export_to(str(tmp_path / "first.vtt"))
    seen = {}

    def fake_dialog(parent, title, start, filters, chosen=""):
        seen.update(start=start, chosen=chosen)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_dialog)
    window.files.export_dialog()
    assert seen["start"] == str(tmp_path / "jfk.vtt") and "*.vtt" in seen["chosen"]
