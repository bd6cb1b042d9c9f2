"""Batches: in this process, in worker processes and on a local Ray runtime, with a
bad file among good ones, resumable, and a worker killed mid-task."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import srt
from conftest import JFK, JFK_TEXT, LS, normalize, write_silence

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, media_dir):
    """Three real clips and one file that is not media."""
    d = tmp_path_factory.mktemp("batch")
    for src, name in ((JFK, "one.flac"), (LS, "two.flac"), (media_dir / "jfk.mp4", "three.mp4")):
        (d / name).write_bytes(Path(src).read_bytes())
    (d / "four.mp4").write_text("This is not a video.\n" * 10)
    return [str(d / n) for n in ("one.flac", "two.flac", "three.mp4", "four.mp4")]


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "subtitler", "transcribe", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=600,
    )


def read(out: Path) -> dict:
    return {p.name: p.read_text() for p in sorted(out.glob("*.srt"))}


def check_outputs(out: Path, r) -> dict:
    files = read(out)
    assert sorted(files) == ["one.srt", "three.srt", "two.srt"]
    assert normalize(" ".join(s.content for s in srt.parse(files["one.srt"]))) == JFK_TEXT
    assert normalize(" ".join(s.content for s in srt.parse(files["three.srt"]))) == JFK_TEXT
    assert "burden" in files["two.srt"]
    assert r.returncode == 1
    assert [l for l in r.stderr.splitlines() if l.startswith("error:")] == [
        "error: four.mp4 is not a media file ffmpeg can read."
    ]
    assert r.stderr.strip().splitlines()[-1] == "3 written, 0 skipped, 1 failed"
    return files


@pytest.mark.slow
def test_jobs_and_ray_give_the_same_files_and_resume(tmp_path, inputs):
    one = cli(*inputs, "-o", str(tmp_path / "one"), "-q")
    files = check_outputs(tmp_path / "one", one)
    two = cli(*inputs, "-o", str(tmp_path / "two"), "--jobs", "2", "-q")
    assert check_outputs(tmp_path / "two", two) == files
    pytest.importorskip("ray")
    ray = cli(*inputs, "-o", str(tmp_path / "ray"), "--ray", "-q")
    assert check_outputs(tmp_path / "ray", ray) == files
    # A rerun skips what is up to date, says so, and leaves the files alone.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "one").glob("*.srt")}
    again = cli(*inputs, "-o", str(tmp_path / "one"), "--skip-existing", "-q")
    skipped = [l for l in again.stderr.splitlines() if l.startswith("skipped (up to date):")]
    assert len(skipped) == 3 and all(Path(i).name in " ".join(skipped) for i in inputs[:3])
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "one").glob("*.srt")} == stamps
    assert again.stderr.strip().splitlines()[-1] == "0 written, 3 skipped, 1 failed"


def test_colliding_outputs_are_refused_before_anything_runs(tmp_path):
    a, b = tmp_path / "talk.mp4", tmp_path / "talk.mkv"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    r = cli(str(a), str(b), "-o", str(tmp_path / "out"))
    assert (
        r.returncode == 2
        and "would both be written to" in r.stderr
        and "--keep-extension-in-name" in r.stderr
    )
    assert not (tmp_path / "out").exists()
    from subtitler import batch

    jobs, _ = batch.plan([str(a), str(b)], str(tmp_path / "out"), "srt", keep_extension=True)
    assert [j.output.name for j in jobs] == ["talk.mp4.srt", "talk.mkv.srt"]


def test_ray_without_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    from subtitler.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert main(["transcribe", str(JFK), "-o", str(tmp_path), "--ray"]) == 2
    assert 'pip install "subtitler[cluster]"' in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing was transcribed


@pytest.mark.parametrize(
    "args, said",
    [
        (
            ["--language", "klingon", "-o", "out.srt"],
            "error: Unknown language 'klingon': give a code such as en",
        ),
        (["-o", "out.xyz"], "error: Unknown subtitle format '.xyz'"),
    ],
)
def test_a_bad_language_or_format_is_said_before_any_work(tmp_path, monkeypatch, capsys, args, said):
    """Refused at once in one line (they used to fail after the transcription, with a
    traceback), nothing loaded or written."""
    from subtitler import pipeline
    from subtitler.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline, "load_model_reading", lambda *a, **k: pytest.fail("a model was loaded"))
    assert main(["transcribe", str(JFK), *args]) == 2
    assert capsys.readouterr().err.startswith(said)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_replaced_and_its_file_retried(tmp_path, inputs):
    """The first worker to take two.flac is killed (SIGKILL, as the OOM killer does):
    the file is tried once more in a new worker; a file that kills its worker twice
    is reported as failed, and the others are written."""
    from subtitler import batch
    from subtitler.pipeline import Settings

    kills = {"two.flac": 1, "three.mp4": 2}  # how many of its attempts to kill

    def on_start(job, pid):
        name = Path(job.input).name
        if kills.get(name, 0) >= job.attempts:
            os.kill(pid, signal.SIGKILL)

    jobs, _ = batch.plan(inputs[:3], str(tmp_path), "srt")
    report = batch.Report()
    batch.run_processes(
        jobs, Settings(model="tiny.en"), "srt", 2, report, lambda job: None, on_start=on_start
    )
    assert sorted(j.output.name for j in report.written) == ["one.srt", "two.srt"]
    assert "burden" in (tmp_path / "two.srt").read_text()
    assert [(Path(j.input).name, j.attempts) for j, _ in report.failed] == [("three.mp4", 2)]
    assert "stopped" in report.failed[0][1]


def test_the_batch_line_counts_files_and_media_with_an_eta(monkeypatch):
    """After each file: files and seconds done of the batch, and the time left at the speed so far."""
    from subtitler import batch

    clock = iter([100.0, 105.0, 120.0])
    monkeypatch.setattr(batch.time, "perf_counter", lambda: next(clock))
    jobs = [batch.Job("a.mp4", Path("a.srt"), 10.0), batch.Job("b.mp4", Path("b.srt"), 30.0)]
    lines = []
    report = batch.BatchReport(jobs, lines.append)
    report.done(jobs[0])  # 10 of 40 s in 5 s: 30 s more take 15
    report.done(jobs[1])
    assert lines == [
        "[1/2 files, 10/40 s of media, about 15 s left] a.mp4",
        "[2/2 files, 40/40 s of media] b.mp4",
    ]


def test_a_file_without_speech_is_said_so(tmp_path):
    """A file with no speech gets an empty subtitle file and a line that says why, not
    the same line as a file with subtitles."""
    quiet = write_silence(tmp_path / "quiet.wav")
    (tmp_path / "jfk.flac").write_bytes(Path(JFK).read_bytes())
    r = cli(str(quiet), str(tmp_path / "jfk.flac"), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert any(l.endswith("quiet.srt (no speech found: no subtitles)") for l in lines), lines
    assert any(l.endswith("jfk.srt") for l in lines), lines
    assert (tmp_path / "out" / "quiet.srt").read_text() == ""


def test_the_audio_track_is_chosen_and_a_silent_first_track_says_so(tmp_path, media_dir):
    """A video whose first audio track is a tone and whose second is the speech (a dub,
    a second microphone): by default no speech, said with the way to the other track;
    ``--audio-track 2`` transcribes the speech; a track the file lacks is refused."""
    video = media_dir / "two tracks.mkv"
    from subtitler.engine.audio import probe

    assert probe(str(video)).audio_tracks == ("aac, mono", "eng, Speech: aac, stereo")
    r = cli(str(video), "-o", str(tmp_path / "first.srt"))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1].endswith(
        "first.srt (no speech found in audio track 1 of 2: no subtitles; --audio-track N reads another)"
    ), r.stderr
    r = cli(str(video), "--audio-track", "2", "-o", str(tmp_path / "second.srt"))
    assert r.returncode == 0, r.stderr
    text = normalize(" ".join(s.content for s in srt.parse((tmp_path / "second.srt").read_text())))
    assert text == JFK_TEXT
    r = cli(str(video), "--audio-track", "3", "-o", str(tmp_path / "third.srt"))
    assert r.returncode == 1 and "has 2 audio tracks: there is no track 3." in r.stderr, r.stderr
    assert not (tmp_path / "third.srt").exists()
