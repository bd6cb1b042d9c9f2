"""The player: the transport under the video, and the whole picture with its aspect
ratio whatever the layout. Real videos made with ffmpeg, played offscreen."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from subtitler.core.document import Cue


@pytest.fixture(scope="module")
def videos(tmp_path_factory, ffmpeg):
    """Solid red 16:9 and 4:3 videos with a tone: the picture is red, a letterbox black."""
    d = tmp_path_factory.mktemp("videos")
    for name, size in (("wide", "320x180"), ("square", "320x240")):
        subprocess.run(
            [
                ffmpeg,
                "-y",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                f"color=c=red:s={size}:r=25:d=6",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=6",
                "-shortest",
                "-c:v",
                "mpeg4",
                "-c:a",
                "aac",
                str(d / f"{name}.mp4"),
            ],
            check=True,
        )
    return d


@pytest.fixture
def window(qtbot):
    from ui.main_window import MainWindow

    w = MainWindow()
    w.confirm_close = False
    w.resize(1280, 800)
    qtbot.addWidget(w)
    w.show()
    if w.player.player is None:
        pytest.skip("QtMultimedia is not installed (PySide6-Essentials only)")
    return w


def wait(qtbot, seconds):
    qtbot.wait(int(seconds * 1000))


def red_box(widget):
    """The red picture's box in a grab of ``widget``: (width, height, (x0, x1, y0, y1))."""
    img = widget.grab().toImage()
    img = img.convertToFormat(img.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes())
    a = a.reshape(img.height(), img.bytesPerLine() // 4, 4)[:, : img.width()]
    ys, xs = np.nonzero((a[:, :, 2] > 150) & (a[:, :, 1] < 80) & (a[:, :, 0] < 80))
    return img.width(), img.height(), (xs.min(), xs.max(), ys.min(), ys.max()) if xs.size else None


@pytest.mark.parametrize("name,ratio", [("wide", 16 / 9), ("square", 4 / 3)])
def test_whole_frame_shows_with_its_aspect_ratio_whatever_the_splitter(qtbot, window, videos, name, ratio):
    w = window
    assert w.open_media(str(videos / f"{name}.mp4"))
    qtbot.waitUntil(lambda: red_box(w.player.view)[2] is not None, timeout=10_000)  # the first frame, paused
    assert not w.player.playing
    for sizes in ([760, 520], [420, 860], [900, 380]):
        w.splitter.setSizes(sizes)
        wait(qtbot, 0.3)
        vw, vh, (x0, x1, y0, y1) = red_box(w.player.view)
        pw, ph = x1 - x0 + 1, y1 - y0 + 1
        assert abs(pw / ph - ratio) < 0.03, (sizes, pw, ph)
        # the picture fills the view in one direction (letterbox in the other), and is never cut
        assert (pw >= vw - 4) or (ph >= vh - 4)
        assert x0 >= 0 and y0 >= 0 and x1 < vw and y1 < vh
        # the cue overlay lies on the picture
        w.player.show_text("A subtitle")
        ob = w.player.overlay.sceneBoundingRect()
        assert x0 - 1 <= ob.left() and ob.right() <= x1 + 1 and y0 - 1 <= ob.top() and ob.bottom() <= y1 + 1


def test_play_pause_scrub_and_steps(qtbot, window, videos):
    w = window
    w.open_media(str(videos / "wide.mp4"))
    for i, (a, b) in enumerate([(500, 1500), (2000, 3000), (3500, 4500)]):
        w.doc.append(Cue(a, b, f"cue {i}"))
    play = w.player.playButton
    qtbot.waitUntil(lambda: w.player.player.duration() > 5000, timeout=10_000)
    play.click()
    qtbot.waitUntil(lambda: w.player.playing and w.player.position() > 300, timeout=10_000)
    play.click()
    qtbot.waitUntil(lambda: not w.player.playing, timeout=5000)
    w.player.slider.sliderMoved.emit(2500)  # a scrub
    assert w.player.timeLabel.text() == "00:00:02.500 / 00:00:06.000"
    assert w.current_row() == 1 and w.overlay.toPlainText() == "cue 1"
    assert w.waveform.playhead == 2500
    w.findChild(type(play), "forwardSecond").click()
    assert w.player.timeLabel.text().startswith("00:00:03.500") and w.current_row() == 2
    w.findChild(type(play), "backFrame").click()
    assert w.player.timeLabel.text().startswith("00:00:03.460")
    w.player.speedCombo.setCurrentIndex(3)
    assert w.player.player.playbackRate() == 2.0


def test_loop_plays_the_selected_cue_again(qtbot, window, videos):
    w = window
    w.open_media(str(videos / "wide.mp4"))
    w.doc.append(Cue(1000, 1600, "looped"))
    w.doc.append(Cue(3000, 4000, "never reached"))
    qtbot.waitUntil(lambda: w.player.player.duration() > 5000, timeout=10_000)
    w.table.selectRow(0)
    w.player.loopButton.setChecked(True)
    w.seek(1000)
    w.player.toggle_play()
    seen = []
    w.player.positionChanged.connect(seen.append)
    deadline = time.time() + 3.0
    while time.time() < deadline:
        qtbot.wait(50)
    w.player.toggle_play()
    assert seen and max(seen) < 1900  # never played on past the cue
    assert any(b < a for a, b in zip(seen, seen[1:]))  # and went back to its start


SWITCH_THEN_STOP = """
import sys, time
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication

app = QApplication([])
from ui.player import Player

p = Player()
p.show()
p.set_source(sys.argv[1])
deadline = time.monotonic() + 20
while (p._first_frame or p.player.mediaStatus() != p.player.MediaStatus.LoadedMedia) and time.monotonic() < deadline:
    QCoreApplication.processEvents()
    time.sleep(0.005)
p.player.play()
p.player.pause()
p.set_audio_track(1)
p.player.stop()  # at once, as closing the window right after choosing a track does
print("stopped", p.player.activeAudioTrack())
"""


@pytest.mark.parametrize("attempt", range(3))
def test_stopping_right_after_a_track_switch_does_not_hang(media_dir, attempt):
    """Qt's playback threads call the audio output's virtual methods as a switch tears the
    old renderer down; stop() blocks the GUI thread until they are done. The player must
    come back (it hung forever, in a window's test on CI and 8 runs of 8 here, with an
    output made by Python: each such call waited for the GIL that stop() held)."""
    run = subprocess.run(
        [sys.executable, "-c", SWITCH_THEN_STOP, str(media_dir / "two tracks.mkv")],
        capture_output=True,
        text=True,
        timeout=45,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert run.returncode == 0 and "stopped 1" in run.stdout, run.stderr[-2000:]


def test_the_audio_output_is_made_by_qt_and_by_python_only_when_qml_cannot(qtbot, monkeypatch, caplog):
    """Qt's threads may call the output's virtual methods: it must not be a Python-made
    wrapper (whose calls wait for the GIL). Without QML's module, Python's, said in the log."""
    import shiboken6
    from PySide6.QtMultimedia import QAudioOutput
    from PySide6.QtWidgets import QWidget

    from ui import player

    owner = QWidget()
    qtbot.addWidget(owner)
    made = player.audio_output(owner)
    assert isinstance(made, QAudioOutput) and not shiboken6.createdByPython(made)
    monkeypatch.setattr(player, "AUDIO_OUTPUT_QML", b"import NoSuchModule\nAudioOutput {}\n")
    fallback = player.audio_output(owner)
    assert isinstance(fallback, QAudioOutput) and shiboken6.createdByPython(fallback)
    assert "QML made no audio output" in caplog.text and "NoSuchModule" in caplog.text
    fallback.setVolume(0.5)
    made.setVolume(0.25)
    assert (fallback.volume(), made.volume()) == (0.5, 0.25)
