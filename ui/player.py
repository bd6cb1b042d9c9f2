"""The video preview with the current cue over the picture, and its transport: play
and pause, a position slider that scrubs, the time, steps of a second or a frame,
playback speed, and a loop over the selected cue.

The picture is shown whole, letterboxed with its aspect ratio, whatever size the view
is given (the video item follows the view's own resizes, so a moved splitter is
followed too), and the cue overlay sits on the picture, not on the bars.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from PySide6.QtCore import QByteArray, QObject, QRectF, QSizeF, Qt, QUrl, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsScene,
    QGraphicsTextItem,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QSlider,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from subtitler.core.timecode import format_ms

log = logging.getLogger(__name__)

SPEEDS = (0.5, 1.0, 1.5, 2.0)
AUDIO_OUTPUT_QML = b"import QtMultimedia\nAudioOutput {}\n"  # what ``audio_output`` has QML make
FRAME_MS = 40  # one frame at 25 fps when the file does not say


def multimedia():
    """QtMultimedia's classes, or None with PySide6-Essentials only (no playback then)."""
    try:
        from PySide6.QtMultimedia import QMediaPlayer
        from PySide6.QtMultimediaWidgets import QGraphicsVideoItem

        return QMediaPlayer, QGraphicsVideoItem
    except ImportError:
        return None


def audio_output(parent: QObject):
    """A QAudioOutput made in C++ by Qt's QML engine rather than by Python. Qt's playback
    threads call the output's virtual methods while they tear a renderer down (a track
    switch, a new file); on an output made by Python each such call waits for the GIL,
    which the GUI thread holds through a blocking call such as QMediaPlayer.stop(): the
    window hung for good. Python's own output only when QML cannot make one."""
    from PySide6.QtMultimedia import QAudioOutput

    try:
        from PySide6.QtQml import QQmlComponent, QQmlEngine
    except ImportError:
        return QAudioOutput(parent)
    engine = QQmlEngine()
    engine.setParent(parent)  # so that ``parent`` owns it (passed to the constructor, Python would)
    component = QQmlComponent(engine)
    component.setData(QByteArray(AUDIO_OUTPUT_QML), QUrl())
    output = component.create()
    if not isinstance(output, QAudioOutput):
        log.warning("QML made no audio output (%s); using Python's", component.errorString().strip())
        engine.deleteLater()
        return QAudioOutput(parent)
    output.setParent(engine)  # the engine, a child of ``parent``, outlives it
    return output


class VideoView(QGraphicsView):
    """A graphics view whose video item and overlay follow its own size."""

    resized = Signal()

    def resizeEvent(self, e):
        super().resizeEvent(e)
        self.resized.emit()


class Player(QWidget):
    positionChanged = Signal(int)  # ms, while playing or scrubbing

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scene = QGraphicsScene(self)
        self.view = VideoView(self.scene, objectName="videoView")
        self.view.setMinimumSize(360, 200)
        self.view.setBackgroundBrush(Qt.black)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.view.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.view.resized.connect(self._fit)
        self.overlay = QGraphicsTextItem()
        self.overlay.setDefaultTextColor(Qt.white)
        font = QFont(self.overlay.font())
        font.setPointSize(16)
        font.setBold(True)
        self.overlay.setFont(font)
        self.overlay.setZValue(10)
        self.player = self.video = None
        self.loop: Optional[tuple[int, int]] = None  # (start, end) ms of the looped cue
        self.frame_ms = FRAME_MS
        mm = multimedia()
        if mm:
            QMediaPlayer, QGraphicsVideoItem = mm
            self.video = QGraphicsVideoItem()
            self.video.setAspectRatioMode(Qt.KeepAspectRatio)
            self.video.nativeSizeChanged.connect(lambda _: self._fit())
            self.scene.addItem(self.video)
            self.player = QMediaPlayer(self)
            self.audio = audio_output(self)
            self.player.setAudioOutput(self.audio)
            self.player.setVideoOutput(self.video)
            self.player.positionChanged.connect(self._position)
            self.player.durationChanged.connect(self._duration)
            self.player.playbackStateChanged.connect(self._state)
            self.player.mediaStatusChanged.connect(self._status)
        self.scene.addItem(self.overlay)
        self._build_transport()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.transport)
        self._first_frame = False

    def _build_transport(self) -> None:
        self.transport = QWidget(objectName="transport")
        rows = QVBoxLayout(self.transport)
        rows.setContentsMargins(4, 2, 4, 2)
        rows.setSpacing(0)
        self.slider = QSlider(Qt.Horizontal, objectName="positionSlider")
        self.slider.setToolTip("Drag to scrub")
        self.slider.sliderMoved.connect(self.seek)
        rows.addWidget(self.slider)
        row = QHBoxLayout()
        rows.addLayout(row)

        def button(name, text, tip, slot, icon=None):
            b = QToolButton(objectName=name, text=text, toolTip=tip, autoRaise=True)
            if icon is not None:
                b.setIcon(self.style().standardIcon(icon))
            b.clicked.connect(slot)
            row.addWidget(b)
            return b

        button("backSecond", "−1s", "Back one second", lambda: self.step(-1000))
        button(
            "backFrame", "", "Back one frame", lambda: self.step(-self.frame_ms), QStyle.SP_MediaSeekBackward
        )
        self.playButton = button(
            "playButton", "", "Play / pause (Ctrl+Space)", self.toggle_play, QStyle.SP_MediaPlay
        )
        button(
            "forwardFrame",
            "",
            "Forward one frame",
            lambda: self.step(self.frame_ms),
            QStyle.SP_MediaSeekForward,
        )
        button("forwardSecond", "+1s", "Forward one second", lambda: self.step(1000))
        row.addStretch(1)
        self.timeLabel = QLabel("00:00:00.000 / 00:00:00.000", objectName="timeLabel")
        row.addWidget(self.timeLabel)
        self.speedCombo = QComboBox(objectName="speedCombo", toolTip="Playback speed")
        for s in SPEEDS:
            self.speedCombo.addItem(f"{s:g}×", s)
        self.speedCombo.setCurrentIndex(SPEEDS.index(1.0))
        self.speedCombo.currentIndexChanged.connect(
            lambda i: self.player and self.player.setPlaybackRate(SPEEDS[i])
        )
        row.addWidget(self.speedCombo)
        self.loopButton = button(
            "loopButton", "Loop", "Play the selected subtitle over and over", lambda: None
        )
        self.loopButton.setCheckable(True)
        self.transport.setEnabled(self.player is not None)

    # ------------------------------------------------------------------ media
    def set_source(self, path: str, has_video: bool = True) -> None:
        if self.player is None:
            return
        self._first_frame = has_video
        self.player.setSource(QUrl.fromLocalFile(os.path.abspath(path)))

    def set_audio_track(self, track: int) -> None:
        """Play the file's audio stream ``track`` (from 0), the one being subtitled."""
        if self.player is not None and 0 <= track < len(self.player.audioTracks()):
            self.player.setActiveAudioTrack(track)

    def _status(self, status) -> None:
        """Show the first frame as soon as the media is loaded (paused at 0)."""
        if self._first_frame and status == self.player.MediaStatus.LoadedMedia:
            self._first_frame = False
            self.audio.setMuted(True)
            self.player.play()
            self.player.pause()
            self.player.setPosition(0)
            self.audio.setMuted(False)

    @property
    def playing(self) -> bool:
        return (
            self.player is not None and self.player.playbackState() == self.player.PlaybackState.PlayingState
        )

    def toggle_play(self) -> None:
        if self.player is None:
            return
        if self.playing:
            self.player.pause()
        else:
            self.player.play()

    def position(self) -> int:
        return self.player.position() if self.player is not None else 0

    def seek(self, ms: int) -> None:
        ms = max(0, int(ms))
        if self.player is not None:
            self.player.setPosition(ms)
        self._show_time(ms)
        self.positionChanged.emit(ms)

    def step(self, delta_ms: int) -> None:
        self.seek(self.position() + delta_ms)

    def set_loop(self, start: int, end: int) -> None:
        """The cue that the loop button repeats."""
        self.loop = (start, end)

    def _position(self, ms: int) -> None:
        if self.loopButton.isChecked() and self.loop and self.playing and ms >= self.loop[1]:
            self.player.setPosition(self.loop[0])
            return
        if not self.slider.isSliderDown():
            self.slider.setValue(ms)
        self._show_time(ms)
        self.positionChanged.emit(ms)

    def _duration(self, ms: int) -> None:
        self.slider.setRange(0, max(0, ms))
        self._show_time(self.position())

    def _state(self, _state) -> None:
        self.playButton.setIcon(
            self.style().standardIcon(QStyle.SP_MediaPause if self.playing else QStyle.SP_MediaPlay)
        )

    def _show_time(self, ms: int) -> None:
        total = self.player.duration() if self.player is not None else 0
        self.timeLabel.setText(f"{format_ms(ms)} / {format_ms(total)}")

    def stop(self) -> None:
        self._first_frame = False
        if self.playing:
            self.player.stop()

    # ------------------------------------------------------------------ picture and overlay
    def picture_rect(self) -> QRectF:
        """Where the picture is drawn in the view (inside the letterbox), in scene units."""
        vp = self.view.viewport().rect()
        if self.video is None or self.video.nativeSize().isEmpty():
            return QRectF(0, 0, vp.width(), vp.height())
        native = self.video.nativeSize()
        scale = min(vp.width() / native.width(), vp.height() / native.height())
        w, h = native.width() * scale, native.height() * scale
        return QRectF((vp.width() - w) / 2, (vp.height() - h) / 2, w, h)

    def _fit(self) -> None:
        vp = self.view.viewport().rect()
        self.scene.setSceneRect(0, 0, vp.width(), vp.height())
        if self.video is not None:
            self.video.setPos(0, 0)
            self.video.setSize(QSizeF(vp.width(), vp.height()))  # KeepAspectRatio letterboxes inside it
        self._place_overlay()

    def show_text(self, text: str) -> None:
        self.overlay.setPlainText(text)
        self._place_overlay()

    def _place_overlay(self) -> None:
        pic = self.picture_rect()
        self.overlay.setTextWidth(pic.width() * 0.9)
        option = self.overlay.document().defaultTextOption()
        option.setAlignment(Qt.AlignHCenter)
        self.overlay.document().setDefaultTextOption(option)
        br = self.overlay.boundingRect()
        self.overlay.setPos(
            pic.x() + (pic.width() - br.width()) / 2,
            max(pic.y(), pic.bottom() - br.height() - pic.height() * 0.04),
        )
