"""The real window, driven offscreen with pytest-qt, with the bundled tiny.en."""

import subprocess
from pathlib import Path

import pytest
import srt
from conftest import JFK, JFK_TEXT, normalize, write_silence
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QProgressBar, QTableView

from subtitler.core import formats
from subtitler.pipeline import Settings
from ui.table_model import COL_TEXT

REALSPEECH = Path(__file__).resolve().parents[3] / "shared" / "realspeech"


@pytest.fixture
def window(qtbot, model):
    from ui.main_window import MainWindow

    w = MainWindow()
    w.confirm_close = False
    w.model_cache[("tiny.en", Settings().compute())] = model  # loaded once for the session
    w.modelCombo.setCurrentText("tiny.en")
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.fixture(scope="session")
def long_mp4(media_dir, ffmpeg):
    """jfk and ls_test, alternating with 14 s of silence, in an mp4 of about 100 s
    (four windows, one utterance each, so no window looks like a repetition loop)."""
    from conftest import LS

    out = media_dir / "long.mp4"
    clips = [JFK, LS, JFK, LS]
    inputs = [a for c in clips for a in ("-i", str(c))]
    pads = ";".join(f"[{i + 1}:a]aresample=16000,apad=pad_dur=14[a{i}]" for i in range(len(clips)))
    graph = pads + ";" + "".join(f"[a{i}]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=0:a=1[a]"
    subprocess.run(
        [
            ffmpeg,
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:s=160x120:r=5",
            *inputs,
            "-filter_complex",
            graph,
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-shortest",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            str(out),
        ],
        check=True,
    )
    return out


def transcribe(qtbot, w, timeout=120_000):
    rows_before_end = []
    w.table_model.rowsInserted.connect(lambda *a: rows_before_end.append(w.thread is not None))
    with qtbot.waitSignal(w.transcription_finished, timeout=timeout) as blocker:
        w.transcribeAction.trigger()
    return blocker.args[0], rows_before_end


def table_text(w):
    return " ".join(w.doc[i].text for i in range(len(w.doc)))


def test_transcribe_fills_the_table_live(qtbot, window, media_dir):
    w = window
    assert not w.transcribeAction.isEnabled()  # nothing open yet
    assert w.open_media(str(media_dir / "jfk.mp4"))
    assert w.transcribeAction.isEnabled()
    status, rows_live = transcribe(qtbot, w)
    assert status == "done"
    table = w.findChild(QTableView, "cueTable")
    assert table.model().rowCount() == len(w.doc) > 0
    assert normalize(table_text(w)) == JFK_TEXT
    assert any(rows_live), "rows should appear while the worker is still running"
    assert w.findChild(QProgressBar, "progressBar").value() == 100


def test_a_file_without_speech_says_so(qtbot, window, tmp_path):
    """Three seconds of silence: the transcription finishes with no rows and the status
    bar says that no speech was found, not "0 subtitles"."""
    quiet = write_silence(tmp_path / "quiet.wav")
    w = window
    assert w.open_media(str(quiet))
    status, _ = transcribe(qtbot, w)
    assert status == "done" and len(w.doc) == 0
    assert "no speech was found" in w.statusBar().currentMessage()


def test_an_english_only_model_fixes_the_language_box_to_english(qtbot, window):
    """tiny.en reads English only: the Language box shows English and cannot be changed;
    a multilingual model gives back the language chosen for it, and what a run asks for."""
    w = window
    lang = w.languageCombo
    w.modelCombo.setCurrentText("base")
    assert lang.isEnabled()
    lang.setCurrentIndex(lang.findData("fr"))
    assert w.transcribing.settings_for("base").language == "fr"
    w.modelCombo.setCurrentText("tiny.en")
    assert not lang.isEnabled() and lang.currentData() == "en" and "English only" in lang.toolTip()
    assert w.transcribing.settings_for("tiny.en").language is None  # English, and the run may still warn
    w.modelCombo.setCurrentText("base")
    assert lang.isEnabled() and lang.currentData() == "fr" and not lang.toolTip()


@pytest.mark.skipif(not (REALSPEECH / "read_de.wav").exists(), reason="../shared/realspeech is not here")
def test_german_speech_with_the_english_only_model_says_what_to_choose(qtbot, window):
    """The default tiny.en on a real German sentence: the run finishes with its rows, and
    a dialog that does not block says the model reads English only and names a
    multilingual one. English speech gets no such dialog."""
    from PySide6.QtWidgets import QMessageBox

    w = window
    assert w.open_media(str(REALSPEECH / "read_de.wav"))
    status, _ = transcribe(qtbot, w)
    box = w.findChild(QMessageBox, "errorBox")
    assert status == "done" and len(w.doc) and w.statusBar().currentMessage().startswith("Done")
    assert box is not None and box.isVisible() and "English only" in box.text() and "base" in box.text()
    box.close()
    assert w.open_media(str(REALSPEECH / "read_en.wav"))
    status, _ = transcribe(qtbot, w)
    assert status == "done" and not w.findChild(QMessageBox, "errorBox").isVisible()


def test_the_audio_track_chooser_reads_and_transcribes_the_chosen_track(qtbot, window, media_dir):
    """A file with two audio tracks shows a chooser under the video; the first (a tone)
    gives no speech and the status bar points at the chooser; choosing the second redraws
    the waveform from it and transcribes its words. One track: no chooser."""
    w = window
    assert w.open_media(str(media_dir / "jfk.mp4"))
    assert w.audioCombo.isHidden()
    assert w.open_media(str(media_dir / "two tracks.mkv"))
    assert not w.audioCombo.isHidden()
    assert [w.audioCombo.itemText(i) for i in range(w.audioCombo.count())] == [
        "1: aac, mono",
        "2: eng, Speech: aac, stereo",
    ]
    status, _ = transcribe(qtbot, w)
    assert status == "done" and len(w.doc) == 0
    assert "no speech was found in audio track 1 of 2" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: w.session.samples is not None, timeout=30_000)
    tone = w.session.samples
    w.audioCombo.setCurrentIndex(1)
    w.audioCombo.activated.emit(1)  # as a user's choice does
    assert w.session.audio_track == 1
    qtbot.waitUntil(lambda: w.session.samples is not None, timeout=30_000)
    assert (
        w.session.samples is not tone
        and abs(float(w.session.samples[:16000].std()) - float(tone[:16000].std())) > 0.01
    )
    status, _ = transcribe(qtbot, w)
    assert status == "done"
    assert normalize(table_text(w)) == JFK_TEXT


def test_speech_found_on_open_is_what_transcribe_reads(qtbot, window, media_dir, monkeypatch):
    """Opening a file finds its speech in the background, after its audio: a
    transcription started after that reads it instead of finding it again."""
    from subtitler.engine import vad

    w = window
    assert w.open_media(str(media_dir / "jfk.mp4"))
    qtbot.waitUntil(lambda: w.session.speech is not None, timeout=30_000)
    assert w.session.speech.any() and len(w.session.speech) == len(w.session.samples) // 160
    found_again = []
    real = vad.speech_mask
    monkeypatch.setattr(vad, "speech_mask", lambda *a, **k: found_again.append(1) or real(*a, **k))
    status, _ = transcribe(qtbot, w)
    assert status == "done" and not found_again
    assert normalize(table_text(w)) == JFK_TEXT


def test_edit_end_time_changes_export_and_undo_restores(qtbot, window, media_dir, tmp_path):
    w = window
    w.open_media(str(media_dir / "jfk.mp4"))
    transcribe(qtbot, w)
    out = tmp_path / "out.srt"
    w.export_to(str(out))
    before = list(srt.parse(out.read_text()))
    idx = w.table_model.index(0, 2)
    new_end = before[0].end.total_seconds() * 1000 - 250
    from subtitler.core.timecode import format_ms

    assert w.table_model.setData(idx, format_ms(int(new_end)))
    assert w.table_model.data(idx) == format_ms(int(new_end))
    w.export_to(str(out))
    edited = list(srt.parse(out.read_text()))
    assert edited[0].end.total_seconds() * 1000 == int(new_end)
    w.undoAction.trigger()
    w.export_to(str(out))
    assert list(srt.parse(out.read_text()))[0].end == before[0].end
    # A bad time is refused with a message and changes nothing.
    assert not w.table_model.setData(idx, "not a time")
    assert "Not a valid time" in w.last_error


def test_split_merge_and_export_read_back(qtbot, window, media_dir, tmp_path):
    w = window
    w.open_media(str(media_dir / "jfk.mp4"))
    transcribe(qtbot, w)
    n = len(w.doc)
    w.table.selectRow(0)
    text = w.doc[0].text
    assert w.split_current(len(text) // 2)
    assert len(w.doc) == n + 1
    w.export_to(str(tmp_path / "a.srt"))
    w.export_to(str(tmp_path / "a.vtt"))
    subs = list(srt.parse((tmp_path / "a.srt").read_text()))
    vtt = formats.load(tmp_path / "a.vtt").cues
    assert len(subs) == len(vtt) == n + 1
    assert [s.content for s in subs] == [s.text for s in vtt]
    assert normalize(" ".join(s.content for s in subs)) == JFK_TEXT
    w.table.selectRow(0)
    assert w.merge_current()
    assert len(w.doc) == n and w.doc[0].text.split() == text.split()
    w.undoAction.trigger()
    w.undoAction.trigger()
    assert len(w.doc) == n and w.doc[0].text == text


def test_cancel_mid_run_keeps_partial_rows(qtbot, window, long_mp4):
    w = window
    w.open_media(str(long_mp4))
    w.table_model.rowsInserted.connect(lambda *a: w.cancel())  # cancel as soon as a row shows
    with qtbot.waitSignal(w.transcription_finished, timeout=120_000) as blocker:
        w.transcribeAction.trigger()
    assert blocker.args == ["cancelled"]
    assert len(w.doc) >= 1
    assert w.doc[-1].end <= 60_000  # stopped within a window: the last ones were never decoded
    assert w.media_duration > 85_000
    assert w.transcribeAction.isEnabled()


def test_bad_file_shows_error_and_next_file_still_works(qtbot, window, media_dir):
    w = window
    assert not w.open_media(str(media_dir / "notes.mp4"))
    assert w.last_error == "notes.mp4 is not a media file ffmpeg can read."
    assert w.findChild(type(w._error_box), "errorBox").isVisible()
    assert w.open_media(str(JFK))
    status, _ = transcribe(qtbot, w)
    assert status == "done" and normalize(table_text(w)) == JFK_TEXT


def test_dragging_a_cue_edge_on_the_waveform_retimes_it(qtbot, window):
    from subtitler.core.document import Cue
    from subtitler.core.edits import Insert

    w = window
    w.open_media(str(JFK))
    w.push(Insert(w.doc, 0, Cue(2000, 4000, "drag me")))
    wave = w.waveform
    wave.resize(1100, 120)
    wave.view_start, wave.ms_per_px = 0, 10.0
    x_end = int(wave.x_of(4000))
    qtbot.mousePress(wave, Qt.LeftButton, pos=QPoint(x_end, 60))
    qtbot.mouseMove(wave, QPoint(x_end + 50, 60))
    qtbot.mouseRelease(wave, Qt.LeftButton, pos=QPoint(x_end + 50, 60))
    assert (w.doc[0].start, w.doc[0].end) == (2000, 4500)
    w.undoAction.trigger()
    assert (w.doc[0].start, w.doc[0].end) == (2000, 4000)


def test_readability_findings_colour_rows(qtbot, window):
    from subtitler.core.document import Cue
    from subtitler.core.edits import Insert

    w = window
    w.open_media(str(JFK))
    w.push(Insert(w.doc, 0, Cue(0, 400, "Far too much text to read in this short a time")))
    w.push(Insert(w.doc, 1, Cue(3000, 5000, "Fine.")))
    assert w.table_model.data(w.table_model.index(0, 5), Qt.BackgroundRole) is not None
    assert "characters per second" in w.table_model.data(w.table_model.index(0, 5), Qt.ToolTipRole)
    assert w.table_model.data(w.table_model.index(1, 5), Qt.BackgroundRole) is None


def test_import_and_autosave_recovery(qtbot, window, tmp_path):
    w = window
    w.open_media(str(JFK))
    p = tmp_path / "in.srt"
    p.write_text("1\n00:00:01,000 --> 00:00:03,000\nImported line\n")
    assert w.import_subtitles(str(p))
    assert w.doc[0].text == "Imported line"
    w.find_replace("Imported", "Recovered")
    w.autosave()
    from ui.main_window import MainWindow

    w2 = MainWindow()
    w2.confirm_close = False
    qtbot.addWidget(w2)
    w2.open_media(str(JFK))
    from PySide6.QtWidgets import QMessageBox

    box = w2.findChild(QMessageBox, "recoveryBox")
    assert box.isVisible()
    qtbot.mouseClick(box.button(box.StandardButton.Yes), Qt.LeftButton)
    assert w2.doc[0].text == "Recovered line"


def test_overlay_follows_the_playhead(qtbot, window):
    from subtitler.core.document import Cue
    from subtitler.core.edits import Insert

    w = window
    w.open_media(str(JFK))
    w.push(Insert(w.doc, 0, Cue(1000, 2000, "first")))
    w.push(Insert(w.doc, 1, Cue(3000, 4000, "second")))
    w.seek(3500)
    assert w.overlay.toPlainText() == "second" and w.waveform.playhead == 3500
    w.follow(1500)
    assert w.current_row() == 0
    w.seek(2500)
    assert w.overlay.toPlainText() == ""
    qtbot.waitUntil(lambda: w.waveform.peaks.size > 1000, timeout=10_000)  # audio arrives off the UI thread


def test_model_download_reports_progress_and_cancels(monkeypatch):
    """The worker's download callback feeds the progress bar and stops on cancel."""
    from subtitler.engine.types import Progress
    from subtitler.errors import Cancelled
    from subtitler.pipeline import Settings
    from ui.transcription import TranscribeWorker

    w = TranscribeWorker("x.mp4", Settings(model="small.en"), {})
    seen = []
    w.download.connect(lambda d, t: seen.append((d, t)))
    w._downloaded(Progress(10, 100, 0.5))
    assert seen == [(10, 100)]
    w.cancel()
    with pytest.raises(Cancelled):
        w._downloaded(Progress(20, 100, 1.0))


def test_closing_mid_run_stops_the_worker(qtbot, model, long_mp4):
    from ui.main_window import MainWindow

    w = MainWindow()
    w.confirm_close = False
    w.model_cache[("tiny.en", Settings().compute())] = model
    w.modelCombo.setCurrentText("tiny.en")
    w.show()
    w.open_media(str(long_mp4))
    w.transcribeAction.trigger()
    qtbot.waitUntil(lambda: len(w.doc) > 0, timeout=60_000)
    thread = w.thread
    assert thread is not None and thread.isRunning()
    w.close()  # cancels, then waits for the worker to return
    assert thread.isFinished()


def test_model_picker_lists_downloaded_models(qtbot, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    from subtitler.engine.whisper.load import repo_for
    from ui.main_window import MainWindow

    repo = repo_for("small.en")
    root = tmp_path / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text("abc")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    items = [w.modelCombo.itemText(i) for i in range(w.modelCombo.count())]
    assert items[0] == "tiny.en" and items.index("small.en") < items.index("small")


def test_dropping_files_opens_media_and_imports_subtitles(qtbot, window, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    def drop(path):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        window.dropEvent(QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))

    drop(JFK)
    assert window.media_path == str(JFK) and window.transcribeAction.isEnabled()
    subs = tmp_path / "dropped.srt"
    subs.write_text("1\n00:00:01,000 --> 00:00:02,000\nDropped in\n")
    drop(subs)
    assert window.media_path == str(JFK) and window.doc[0].text == "Dropped in"


def test_window_and_cli_give_identical_subtitles(qtbot, window, long_mp4, tmp_path):
    """One pipeline: the same file with the same (default) settings gives the same
    SRT from the window as from the command line."""
    import sys

    w = window
    w.profileCombo.setCurrentText("Default")
    w.languageCombo.setCurrentIndex(0)
    w.taskCombo.setCurrentIndex(0)
    assert w.open_media(str(long_mp4))
    status, _ = transcribe(qtbot, w)
    assert status == "done"
    w.export_to(str(tmp_path / "window.srt"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "subtitler",
            "transcribe",
            str(long_mp4),
            "--model",
            "tiny.en",
            "-o",
            str(tmp_path / "cli.srt"),
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    window_srt, cli_srt = (tmp_path / "window.srt").read_text(), (tmp_path / "cli.srt").read_text()
    assert len(list(srt.parse(cli_srt))) >= 4
    assert window_srt == cli_srt


SUBS = Path(__file__).resolve().parent.parent / "data" / "subtitles"


def test_import_and_export_ass(qtbot, window, tmp_path):
    """An Aegisub script imports with every Dialogue line; an edit exports back to
    .ass with its styles and overrides, and to .srt with the overrides dropped."""
    w = window
    assert w.import_subtitles(str(SUBS / "aegisub.ass"))
    assert len(w.doc) == 5 and w.doc[2].text == "{\\an8\\pos(960,80)}NORTH GATE"
    assert w.table_model.setData(w.table_model.index(0, 5), "Where is the <i>map</i>?")
    assert w.export_to(str(tmp_path / "out.ass"))
    script = (tmp_path / "out.ass").read_text()
    assert (
        "Where is the {\\i1}map{\\i0}?" in script
        and "Style: Sign,Georgia,48" in script
        and "[Fonts]" in script
    )
    assert w.export_to(str(tmp_path / "out.srt"))
    assert (
        "NORTH GATE" in (tmp_path / "out.srt").read_text()
        and "\\an8" not in (tmp_path / "out.srt").read_text()
    )


def test_import_asks_for_an_unclear_encoding(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QInputDialog

    w = window
    path = tmp_path / "unclear.srt"
    path.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\n" + bytes(range(0x80, 0x100)) * 2 + b"\n")
    assert not w.import_subtitles(str(path))
    dialog = w.findChild(QInputDialog, "encodingDialog")
    assert dialog is not None and dialog.isVisible()
    dialog.setTextValue("iso8859_15")
    dialog.accept()
    qtbot.waitUntil(lambda: len(w.doc) == 1)
    assert w.doc[0].text == (bytes(range(0x80, 0x100)) * 2).decode("iso8859_15").strip()


def test_import_offers_to_skip_a_block_without_times(qtbot, window):
    from PySide6.QtWidgets import QMessageBox

    w = window
    assert not w.import_subtitles(str(SUBS / "missing_time.srt"))
    box = w.findChild(QMessageBox, "skipBlockBox")
    assert box is not None and "line 5" in box.text()
    box.button(QMessageBox.Yes).click()
    qtbot.waitUntil(lambda: len(w.doc) == 2)
    assert [s.text for s in w.doc] == ["Caption text #1", "Caption text #3"]
    assert "line 5" in w.statusBar().currentMessage()


def test_switching_models_frees_the_previous_one(qtbot, window, model, media_dir):
    """tiny.en -> base -> tiny.en in the picker: one model in memory at a time. Each model
    is gone once the next is loaded (nothing holds it: not the cache, not a backend with
    its int8 copies), and MLX holds no more after the switch back than after the first."""
    import gc
    import weakref

    import mlx.core as mx

    from subtitler.engine import backends
    from subtitler.engine.whisper.load import offline_model_dir

    if offline_model_dir("base") is None:
        pytest.skip("the offline base model is not installed")
    w = window
    w.model_cache.clear()
    w.open_media(str(JFK))
    loaded, used = [], []
    for name in ("tiny.en", "base", "tiny.en"):
        w.modelCombo.setCurrentText(name)
        status, _ = transcribe(qtbot, w)
        assert status == "done" and [k[0] for k in w.model_cache] == [name]
        gc.collect()
        loaded.append(weakref.ref(next(iter(w.model_cache.values()))))
        assert [r() is not None for r in loaded] == [False] * (len(loaded) - 1) + [True]
        assert {key[0] for key in backends._backends} <= {id(loaded[-1]()), id(model)}
        used.append(mx.get_active_memory())
    assert abs(used[2] - used[0]) <= 0.1 * used[0]


def test_an_edit_during_a_run_is_refused_and_nothing_is_lost(qtbot, window, long_mp4, tmp_path):
    """While rows stream in they are read-only (the final cues replace them): an edit is
    refused with a word in the status bar, nothing lands on the undo stack, and the
    cues the run ends with are what the table shows and an export writes."""
    w = window
    w.open_media(str(long_mp4))
    tried = []

    def edit_first_row(*_):
        if tried:
            return
        index = w.table_model.index(0, COL_TEXT)
        tried.append(
            (
                w.table_model.setData(index, "My edit", Qt.EditRole),
                bool(w.table_model.flags(index) & Qt.ItemIsEditable),
                w.findChild(QAction, "splitAction").isEnabled(),
                w.statusBar().currentMessage(),
            )
        )

    w.table_model.rowsInserted.connect(edit_first_row)
    with qtbot.waitSignal(w.transcription_finished, timeout=120_000) as blocker:
        w.transcribeAction.trigger()
    assert blocker.args == ["done"]
    accepted, editable, split_enabled, message = tried[0]
    assert not accepted and not editable and not split_enabled and "read-only" in message
    assert all(s.text != "My edit" for s in w.doc) and w.session.undo_stack.count() == 0
    assert not w.undoAction.isEnabled()
    # After the run the rows take edits again, undoably, and an export writes them.
    assert (
        w.table_model.setData(w.table_model.index(0, COL_TEXT), "My edit", Qt.EditRole)
        and w.undoAction.isEnabled()
    )
    out = tmp_path / "after.srt"
    assert w.export_to(str(out))
    assert [s.text for s in formats.load(out).cues] == [s.text for s in w.doc]
    assert formats.load(out).cues[0].text == "My edit"


def test_the_compute_setting_reaches_the_pipeline_is_kept_and_about_says_what_it_runs(qtbot, window):
    """The Compute box: its choice goes into the run's settings (as the CLI's --compute-type),
    a new window starts with it, and About says what it runs as on this machine."""
    from ui.help import about_html
    from ui.main_window import MainWindow

    w = window
    assert w.computeCombo.currentData() == "auto"  # the CLI's default too
    assert w.transcribing.settings_for("tiny.en").compute_type == "auto"
    w.computeCombo.setCurrentIndex(w.computeCombo.findData("float32"))
    assert w.transcribing.settings_for("tiny.en").compute_type == "float32"
    assert "float32 = float32" in about_html(w)
    again = MainWindow()
    again.confirm_close = False
    qtbot.addWidget(again)
    assert again.computeCombo.currentData() == "float32"
    w.computeCombo.setCurrentIndex(w.computeCombo.findData("auto"))
    assert MainWindow().computeCombo.currentData() == "auto"


@pytest.mark.slow
def test_switching_the_compute_type_reloads_the_model_and_both_give_the_words(qtbot, window):
    """A model loaded for int8 holds no float32 weights: switching the Compute box to
    float32 loads the model again for it (one model kept), and back; each run writes jfk's
    words."""
    w = window
    w.open_media(str(JFK))
    for kind in ("float32", "int8", "auto"):
        w.computeCombo.setCurrentIndex(w.computeCombo.findData("auto" if kind == "auto" else kind))
        status, _ = transcribe(qtbot, w)
        assert status == "done" and normalize(table_text(w)) == JFK_TEXT
        want = Settings(compute_type=kind).compute()
        assert list(w.model_cache) == [("tiny.en", want)]
    w.computeCombo.setCurrentIndex(w.computeCombo.findData("auto"))
