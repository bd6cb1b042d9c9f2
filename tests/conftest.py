from subtitler.engine import runtime

runtime.prepare()  # first: the fast BLAS must load before anything imports mlx

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = Path(__file__).parent / "data"
JFK = DATA / "jfk.flac"
LS = DATA / "ls_test.flac"
JFK_TEXT = (
    "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
)


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Word edits (substitutions, insertions, deletions) from ``ref`` to ``hyp``."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)]


def write_silence(path, seconds: float = 3.0):
    """A 16-kHz mono WAV of digital silence at ``path``."""
    import wave

    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(b"\0\0" * int(16000 * seconds))
    return path


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    """Autosaves and settings of a test go to its own folder: the window's QSettings too,
    which otherwise went to the user's own file (~/.config/subtitler), changing what the
    app remembers, and were shared by test runs side by side."""
    monkeypatch.setenv("SUBTITLER_DATA_DIR", str(tmp_path / "appdata"))
    if "PySide6.QtCore" in sys.modules:  # the window's tests (engine tests need no Qt)
        from PySide6.QtCore import QSettings

        for kind in (QSettings.NativeFormat, QSettings.IniFormat):
            QSettings.setPath(kind, QSettings.UserScope, str(tmp_path / "config"))


@pytest.fixture(scope="session")
def ffmpeg():
    from subtitler.engine.audio import ffmpeg_exe

    return ffmpeg_exe()


@pytest.fixture(scope="session")
def model():
    from subtitler.engine.whisper.load import load_model

    return load_model("tiny.en")


@pytest.fixture(scope="session")
def portable_kernels(tmp_path_factory):
    """The C kernels built as for a CPU other than x86 (Apple silicon, ARM Linux): the
    plain C paths only (``SUBTITLER_PORTABLE``), with setup.py's flags, loaded like the
    installed build. Skipped where there is no C compiler."""
    import shutil
    import sysconfig

    from subtitler.engine.kernels import native

    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if not shutil.which(compiler):
        pytest.skip("no C compiler")
    csrc = Path(__file__).resolve().parents[1] / "subtitler" / "engine" / "kernels" / "csrc"
    out = tmp_path_factory.mktemp("portable") / "_kernels_portable.so"
    subprocess.run(
        [
            compiler,
            "-O3",
            "-fopenmp-simd",
            "-fno-trapping-math",
            "-fno-math-errno",
            "-pthread",
            "-fPIC",
            "-shared",
            "-DSUBTITLER_PORTABLE",
            f"-I{sysconfig.get_paths()['include']}",
            *(str(csrc / f) for f in ("kernels.c", "decoder.c", "blocks.c")),
            "-o",
            str(out),
            "-lm",
        ],
        check=True,
        capture_output=True,
    )
    return native.load(str(out))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory, ffmpeg):
    """Real media made with ffmpeg: jfk wrapped in an mp4, a video with no audio, etc."""
    d = tmp_path_factory.mktemp("media")
    run = lambda *a: subprocess.run([ffmpeg, "-y", "-hide_banner", "-loglevel", "error", *a], check=True)
    run(
        "-f",
        "lavfi",
        "-i",
        "color=c=navy:s=320x240:r=10",
        "-i",
        str(JFK),
        "-shortest",
        "-c:v",
        "libx264" if _has_encoder(ffmpeg, "libx264") else "mpeg4",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(d / "jfk.mp4"),
    )
    run(
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=160x120:r=10",
        "-t",
        "2",
        "-c:v",
        "libx264" if _has_encoder(ffmpeg, "libx264") else "mpeg4",
        "-pix_fmt",
        "yuv420p",
        str(d / "silent_video.mp4"),
    )
    # Two audio tracks, a tone first and the speech second (a dub, a second microphone).
    run(
        "-f", "lavfi", "-i", "color=c=black:s=160x120:d=11", "-f", "lavfi", "-i", "sine=f=440:d=11",
        "-i", str(JFK), "-map", "0:v", "-map", "1:a", "-map", "2:a", "-metadata:s:a:1", "language=eng",
        "-metadata:s:a:1", "title=Speech", "-c:v", "libx264" if _has_encoder(ffmpeg, "libx264") else "mpeg4",
        "-c:a", "aac", "-shortest", str(d / "two tracks.mkv"),
    )  # fmt: skip
    data = (d / "jfk.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (d / "notes.mp4").write_text("This is a text file, not a video.\n" * 20)
    (d / "empty.wav").write_bytes(b"")
    return d


def _has_encoder(ffmpeg, name):
    out = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return f" {name} " in out
