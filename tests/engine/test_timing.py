"""Timing quality on real audio: cues on speech, nothing over noise, readable lines."""

import numpy as np
import pytest
from conftest import JFK, LS, normalize

from subtitler.core.checks import check
from subtitler.core.cues import build_cues, wrap_lines
from subtitler.core.profiles import get_profile
from subtitler.engine import audio
from subtitler.engine.transcribe import TranscribeOptions, transcribe

SR = audio.SAMPLE_RATE


@pytest.fixture(scope="module")
def noisy_clip():
    """2 s silence, 35 s of loud noise with mains hum, 2 s silence, then jfk, all with a
    faint noise floor: the noise-only stretch ends at 37 s."""
    rng = np.random.default_rng(1)
    jfk = audio.load_audio(str(JFK))
    n = int(35 * SR)
    noise = rng.normal(0, 0.03, n) + 0.02 * np.sin(2 * np.pi * 60 * np.arange(n) / SR)
    x = np.concatenate([np.zeros(2 * SR), noise, np.zeros(2 * SR), jfk]).astype(np.float32)
    x += rng.normal(0, 0.002, x.size).astype(np.float32)
    return x


def test_no_words_over_noise_and_cues_on_speech(model, noisy_clip):
    decoded = list(transcribe(model, noisy_clip, TranscribeOptions(word_timestamps=True)))
    words = [w for s in decoded for w in s.words]
    assert "ask not what your country can do for you" in normalize(" ".join(s.text for s in decoded))
    assert all(w.start >= 37.0 for w in words), [(w.word, w.start) for w in words if w.start < 37]
    cues = build_cues(decoded, "netflix", int(len(noisy_clip) / 16))  # in-times on the speech
    assert cues[0].start >= 39_000  # jfk's first word is at 39.34 s
    assert abs(cues[0].start - 39_340) <= 300
    led = build_cues(decoded, "default", int(len(noisy_clip) / 16))[0]
    assert led.start == cues[0].start - 120  # the default profile leads in by 120 ms


@pytest.mark.parametrize("profile", ["default", "netflix"])
@pytest.mark.parametrize("clip", [JFK, LS])
def test_cues_keep_the_profile(model, clip, profile):
    decoded = list(transcribe(model, str(clip), TranscribeOptions(word_timestamps=True)))
    cues = build_cues(decoded, profile, int(audio.probe(str(clip)).duration * 1000))
    p = get_profile(profile)
    assert normalize(" ".join(c.text for c in cues)) == normalize(" ".join(s.text for s in decoded))
    findings = check(cues, p)
    # Only reading speed may be impossible to meet when the speaker talks fast.
    assert {f.kind for f in findings} <= {"cps"}, findings
    for c in cues:
        # On its words; the outgoing cue gives up at most one minimum gap to the next.
        assert c.start <= c.words[0].start and c.end >= c.words[-1].end - p.min_gap
        assert c.end - c.words[-1].end <= max(300, p.min_duration)  # little time over silence


def test_line_breaks_prefer_punctuation_and_avoid_articles():
    p = get_profile("default")
    text = "When the meeting ended, everybody walked to the station together"
    lines = wrap_lines(text, p).split("\n")
    assert lines[0].endswith("ended,")
    assert all(len(line) <= 42 for line in lines)
    text = "She gave the book to the man who had been waiting outside"
    assert not any(line.split()[-1] in ("the", "a", "to") for line in wrap_lines(text, p).split("\n"))


@pytest.fixture(params=["installed", "portable c"])
def kernels(request, monkeypatch):
    """The installed C kernels (or none), then their plain C build (what CPUs other
    than x86 run)."""
    from subtitler.engine.kernels import native

    if request.param == "portable c":
        monkeypatch.setattr(native, "_lib", request.getfixturevalue("portable_kernels"))
    return request.param


@pytest.mark.parametrize("shape", [(1, 1), (3, 40), (40, 3), (75, 550), (160, 1500)])
def test_dtw_in_c_follows_the_numpy_path(kernels, shape):
    """The C DTW gives the very path of the NumPy one (ties included: a cost with
    repeated values), and the NumPy one stays a valid monotonic path."""
    from subtitler.engine.kernels import native
    from subtitler.engine.whisper.timing import dtw, dtw_numpy

    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    for cost in (rng.normal(size=shape).astype(np.float32), rng.integers(0, 3, shape).astype(np.float32)):
        rows, cols = dtw_numpy(cost)
        assert rows[0] == 0 and cols[0] == 0 and rows[-1] == shape[0] - 1 and cols[-1] == shape[1] - 1
        assert ((np.diff(rows) >= 0) & (np.diff(cols) >= 0) & (np.diff(rows) + np.diff(cols) >= 1)).all()
        if native.library() is not None:
            c_rows, c_cols = dtw(cost)
            assert c_rows.tolist() == rows.tolist() and c_cols.tolist() == cols.tolist()


def test_median_filter_is_the_median(kernels):
    from subtitler.engine.whisper.timing import _median_filter

    x = np.random.default_rng(0).normal(size=(4, 9, 300)).astype(np.float32)
    padded = np.pad(x, [(0, 0), (0, 0), (3, 3)], mode="reflect")
    want = np.median(np.lib.stride_tricks.sliding_window_view(padded, 7, axis=-1), axis=-1)
    assert np.array_equal(_median_filter(x, 7), want)


@pytest.mark.slow
def test_word_times_hold_their_reference(model):
    """Word times of jfk and ls_test within 20 ms of those recorded
    (tests/data/word_times_tiny_en.json): first before word timing got its fast path,
    again when word edges took in the speech's onsets and decays (``word_edges.with_edges``;
    starts up to 80 ms earlier, ends up to 60 ms later)."""
    import json
    from pathlib import Path

    ref = json.loads(
        (Path(__file__).resolve().parent.parent / "data" / "word_times_tiny_en.json").read_text()
    )
    for name, clip in (("jfk", JFK), ("ls_test", LS)):
        words = [
            w
            for s in transcribe(
                model, str(clip), TranscribeOptions(word_timestamps=True, compute_type="float32")
            )
            for w in s.words
        ]
        assert [w.word for w in words] == [r[0] for r in ref[name]]
        assert (
            max(max(abs(w.start - r[1]), abs(w.end - r[2])) for w, r in zip(words, ref[name])) <= 0.02 + 1e-9
        )


def test_a_word_across_two_segments_leaves_every_later_segment_its_own_words():
    """A garbled decode ends one segment on "and" and opens the next on "azine" (no
    space): the aligner makes one word of both. It goes to the first segment; the
    segments after it keep their own words (they were each shifted by one, and the last
    got none)."""
    from subtitler.engine.whisper.timing import WordTiming, words_per_segment

    alignment = [
        WordTiming(" null", [1], 0.0, 0.5, 0.1),
        WordTiming(" treasury", [2], 0.5, 1.0, 0.1),
        WordTiming(" andazine,", [3, 4], 1.0, 1.5, 0.1),
        WordTiming(" the", [5], 1.6, 1.8, 0.1),
        WordTiming(" end.", [6], 2.0, 2.4, 0.1),
    ]
    got = words_per_segment(alignment, [3, 2, 1], offset=10.0)
    assert [[w.word for w in ws] for ws in got] == [[" null", " treasury", " andazine,"], [" the"], [" end."]]
    assert got[2][0].start == pytest.approx(12.0)
    # a segment of nothing but "azine": its text is inside the word before, no words of its own
    got = words_per_segment(alignment, [3, 1, 1, 1], offset=0.0)
    assert [None if ws is None else [w.word for w in ws] for ws in got] == [
        [" null", " treasury", " andazine,"],
        None,
        [" the"],
        [" end."],
    ]
