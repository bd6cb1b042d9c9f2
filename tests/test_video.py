"""Subtitles into a video: a soft track (mux) and burned in (burn), checked with ffmpeg."""

import os
import re
import stat
import subprocess

import numpy as np
import pytest

from subtitler import cli, video
from subtitler.core import formats
from subtitler.core.document import Cue, Document
from subtitler.engine.audio import load_audio, probe_any

CUES = [Cue(1000, 3000, "Hello there."), Cue(6000, 8000, "A second line\nin two rows.")]


@pytest.fixture
def subs(tmp_path):
    path = tmp_path / "subs.srt"
    formats.save(Document(CUES), path)
    return path


def streams(ffmpeg, path) -> str:
    return subprocess.run([ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def md5(ffmpeg, path, kind) -> str:
    out = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-map", f"0:{kind}", "-c", "copy", "-f", "md5", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.parametrize("ext, codec", [(".mkv", "subrip"), (".mp4", "mov_text")])
def test_mux_adds_one_tagged_track_and_copies_picture_and_sound(
    tmp_path, ffmpeg, media_dir, subs, ext, codec
):
    out = tmp_path / f"out{ext}"
    assert cli.main(["mux", str(media_dir / "jfk.mp4"), str(subs), "-o", str(out), "--language", "en"]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # as any program's, not a temporary file's 0600
    dump = streams(ffmpeg, out)
    subtitle_streams = re.findall(r"Stream #0:\d+(?:\[\w+\])?\((\w+)\): Subtitle: (\w+)", dump)
    assert subtitle_streams == [("eng", codec)], dump
    for kind in ("v", "a"):  # bit-identical picture and sound
        assert md5(ffmpeg, out, kind) == md5(ffmpeg, media_dir / "jfk.mp4", kind)
    back = tmp_path / "back.srt"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(out), "-map", "0:s:0", str(back)], check=True)
    got = formats.load(back).cues
    assert [s.text for s in got] == [c.text for c in CUES]
    assert all(
        abs(a.start - b.start) <= 100 and abs(a.end - b.end) <= 100 for a, b in zip(got, CUES)
    )  # a frame


def frame(ffmpeg, path, t) -> np.ndarray:
    raw = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-ss",
            str(t),
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(240, 320, 3).astype(np.int16)


def test_burn_draws_in_the_bottom_third_only_while_a_cue_shows(tmp_path, ffmpeg, media_dir, subs):
    src, out = media_dir / "jfk.mp4", tmp_path / "burned.mp4"
    assert cli.main(["burn", str(src), str(subs), "-o", str(out)]) == 0
    during = np.abs(frame(ffmpeg, out, 2.0) - frame(ffmpeg, src, 2.0)).max(axis=2)
    assert during[160:].max() > 100  # the text, in the bottom third
    assert during[:160].max() <= 12  # the rest as it was, within the encoder's loss
    between = np.abs(frame(ffmpeg, out, 4.5) - frame(ffmpeg, src, 4.5)).max(axis=2)
    assert between.max() <= 12
    assert abs(probe_any(str(out)).duration - probe_any(str(src)).duration) < 0.15


def test_names_with_colons_quotes_commas_and_brackets(tmp_path, ffmpeg, media_dir, subs, monkeypatch):
    """A file named like a protocol ("take:2"), or with a quote, comma or brackets (which the
    burn filter's graph reads as syntax), is read, muxed and burned like any other, given
    relative or absolute: all three used to fail ("not a media file", "Invalid argument")."""
    monkeypatch.chdir(tmp_path)
    video, sub = "take:2's, [a].mp4", "subs:2's, [a].srt"
    (tmp_path / video).write_bytes((media_dir / "jfk.mp4").read_bytes())
    (tmp_path / sub).write_bytes(subs.read_bytes())
    assert probe_any(video).duration > 10 and load_audio(video).size > 10 * 16000
    assert cli.main(["mux", video, sub, "-o", "muxed:1's, [b].mkv"]) == 0
    assert "Subtitle: subrip" in streams(ffmpeg, f"file:{tmp_path}/muxed:1's, [b].mkv")
    assert cli.main(["burn", video, str(tmp_path / sub), "-o", "burned:1's, [b].mp4"]) == 0
    burned, src = f"file:{tmp_path}/burned:1's, [b].mp4", media_dir / "jfk.mp4"
    assert np.abs(frame(ffmpeg, burned, 2.0) - frame(ffmpeg, src, 2.0)).max(axis=2)[160:].max() > 100


def test_bad_inputs_get_one_line_and_leave_nothing(tmp_path, media_dir, subs, capsys):
    existing = tmp_path / "exists.mkv"
    existing.write_bytes(b"keep me")
    cases = [
        (["mux", str(media_dir / "silent_video.mp4"), str(subs), "-o", str(existing)], "exists already"),
        (
            [
                "mux",
                str(media_dir / "jfk.flac" if (media_dir / "jfk.flac").exists() else media_dir / "empty.wav"),
                str(subs),
                "-o",
                str(tmp_path / "a.mkv"),
            ],
            "",
        ),
        (
            ["burn", str(media_dir / "notes.mp4"), str(subs), "-o", str(tmp_path / "b.mp4")],
            "not a media file",
        ),
        (
            ["mux", str(media_dir / "jfk.mp4"), str(subs), "-o", str(tmp_path / "nofolder" / "c.mkv")],
            "not writable",
        ),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.mkv", "subs.srt"]


def test_no_video_stream_is_refused(tmp_path, subs):
    from subtitler.engine.audio import ffmpeg_exe

    audio_only = tmp_path / "tone.m4a"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=d=1", str(audio_only)], check=True
    )
    with pytest.raises(video.MediaError, match="no video stream"):
        video.mux(str(audio_only), str(subs), str(tmp_path / "x.mkv"))


def test_a_cancelled_burn_leaves_no_file(tmp_path, media_dir, subs):
    out = tmp_path / "cancelled.mp4"
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(video.Cancelled):
        video.burn(str(media_dir / "jfk.mp4"), str(subs), str(out), cancel=cancel)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["subs.srt"]


def test_language_tags():
    assert video.language_tag("en") == "eng" and video.language_tag("fr") == "fre"
    assert video.language_tag("de") == "ger" and video.language_tag("xx") is None
    assert video.language_tag(None) is None


def test_mux_tags_the_language_the_transcription_saved(tmp_path, ffmpeg, media_dir):
    """Our JSON keeps the transcription's language: mux tags the track with it unasked."""
    doc = Document(list(CUES), language="fr")
    saved = tmp_path / "subs.json"
    formats.save(doc, saved)
    out = tmp_path / "out.mkv"
    assert cli.main(["mux", str(media_dir / "jfk.mp4"), str(saved), "-o", str(out)]) == 0
    assert re.findall(r"Stream #0:\d+(?:\[\w+\])?\((\w+)\): Subtitle", streams(ffmpeg, out)) == ["fre"]
