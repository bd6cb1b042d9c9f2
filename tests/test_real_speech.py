"""Real recordings (../shared/realspeech/) through the default pipeline: readable cues
on a two-speaker meeting, and the quiet-speech gain never worse than no gain."""

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import word_errors

from subtitler import pipeline
from subtitler.core.checks import check
from subtitler.core.profiles import get_profile

REAL = Path(__file__).resolve().parents[2] / "shared" / "realspeech"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realspeech is not here"),
]


def rttm(path: Path) -> list[tuple[float, float]]:
    rows = [line.split() for line in path.read_text().splitlines() if line.startswith("SPEAKER")]
    return [(float(r[3]), float(r[3]) + float(r[4])) for r in rows]


def test_a_meeting_gets_readable_cues_near_its_speech(model):
    doc = pipeline.transcribe_media(str(REAL / "meeting_ami.wav"), pipeline.Settings(), model=model)
    cues = list(doc)
    p = get_profile("default")
    assert len(cues) >= 8
    assert min(c.duration for c in cues) >= p.min_duration * 2 / 3
    findings = check(cues, p, doc.media_duration)  # the last cue ends with the recording
    assert all(f.unavoidable for f in findings if f.kind in ("too_short", "cps"))
    keys = [" ".join(re.findall(r"\w+", c.text.lower())) for c in cues]
    assert not any(a == b == c for a, b, c in zip(keys, keys[1:], keys[2:]))
    # Shown outside the hand-labelled turns (0.3 s grace): at most a second.
    speech = [(a - 0.3, b + 0.3) for a, b in rttm(REAL / "meeting_ami.rttm")]
    mask = np.zeros(32_000, bool)  # 10-ms frames
    for a, b in speech:
        mask[int(a * 100) : int(b * 100)] = True
    shown = np.zeros_like(mask)
    for c in cues:
        shown[c.start // 10 : c.end // 10] = True
    assert (shown & ~mask).sum() / 100 <= 1.0
    # The labelled speech without a cue: at most 2%, the profile's 83-ms gap between two
    # chained cues shown as the subtitle it joins (8.7% when cues chained across a second).
    labelled = np.zeros_like(mask)
    for a, b in rttm(REAL / "meeting_ami.rttm"):
        labelled[int(a * 100) : int(b * 100)] = True
    for c, d in zip(cues, cues[1:]):
        if d.start - c.end <= p.min_gap:
            shown[c.end // 10 : d.start // 10] = True
    assert (labelled & ~shown).sum() / labelled.sum() <= 0.02


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def test_the_quiet_speech_gain_never_decodes_worse_than_no_gain(model):
    """A far, quiet first line (26 dB under the rest) over room tone, then a louder
    reader: with the gain, no more word errors than with it off."""
    from subtitler.engine.audio import load_audio
    from subtitler.engine.transcribe import transcribe
    from subtitler.engine.types import TranscribeOptions

    def at(x, dbfs):
        return x * (10 ** (dbfs / 20) / np.sqrt(np.mean(x**2)))

    quiet, loud = load_audio(str(REAL / "read_en.wav")), load_audio(str(REAL / "audiobook_en.wav"))
    rng = np.random.default_rng(1)
    pause = np.zeros(8000, np.float32)
    clip = np.concatenate([pause, at(quiet, -46), pause, at(loud, -20), pause]).astype(np.float32)
    clip += (rng.standard_normal(clip.size) * 10 ** (-62 / 20)).astype(np.float32)
    ref = words((REAL / "read_en.ref.txt").read_text() + " " + (REAL / "audiobook_en.ref.txt").read_text())

    def wrong(level):
        segs = transcribe(model, clip, TranscribeOptions(word_timestamps=True, level_speech=level))
        return word_errors(ref, [w for s in segs for w in words(s.text)])

    raised, plain = wrong(True), wrong(False)
    assert raised <= plain, (raised, plain)
    assert raised <= len(ref) * 0.15


@pytest.mark.parametrize("clip", ["audiobook_en", "three_speakers_en", "read_en"])
def test_int8_decoding_steps_give_the_float32_subtitles(model, clip):
    """The int8 compute type against float32 on real English speech: at most one word
    error more against the reference, and the words both wrote timed alike: 95% within
    20 ms (one of these clips' 82 words moves 70 ms), none by more than 100 ms."""
    from subtitler.engine.backends import backend_for
    from subtitler.engine.cpu.backend import CpuBackend

    if not isinstance(backend_for(model, "int8"), CpuBackend):
        pytest.skip("the C decoding step does not run here")
    ref = words((REAL / f"{clip}.ref.txt").read_text())
    runs = {}
    for compute in ("float32", "int8"):
        doc = pipeline.transcribe_media(
            str(REAL / f"{clip}.wav"), pipeline.Settings(compute_type=compute), model=model
        )
        runs[compute] = [(words(w.text), w.start, w.end) for c in doc for w in c.words]
    errors = {k: word_errors(ref, [t for w in v for t in w[0]]) for k, v in runs.items()}
    assert errors["int8"] <= errors["float32"] + 1, errors
    same = [(a, b) for a, b in zip(runs["float32"], runs["int8"]) if a[0] == b[0]]
    assert len(same) >= 0.9 * len(runs["float32"])
    shifts = [max(abs(a[1] - b[1]), abs(a[2] - b[2])) for a, b in same]
    assert sum(d <= 20 for d in shifts) >= 0.95 * len(shifts) and max(shifts) <= 100, shifts


def test_the_last_words_are_kept_when_the_window_before_stops_short(model):
    """``quiet_first_line`` (benchmarks/real_cases.py, real voices): the first window's
    decode stops before the last sentence, "In this regard", and the 2.5-s window left,
    mostly padding, gets Whisper's no-speech verdict. With speech detected there and the
    segment begun before, the sentence is kept."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from real_cases import quiet_first_line

    case = quiet_first_line()
    doc = pipeline.transcribe_media(
        None, pipeline.Settings(), model=model, audio=pipeline.Audio(case.samples, None)
    )
    last = list(doc)[-1]
    assert "regard" in last.text.lower(), [c.text for c in doc]
    assert last.start >= 22_500 and last.end <= case.speech[-1][1] * 1000 + 500


def test_a_quiet_line_at_the_music_s_level_is_kept(model):
    """A real voice 26 dB under the readers after it, level with a music bed
    (benchmarks/real_conditions.py): the speech detector must hear it, or the speech
    guard drops the line Whisper read right. Silero v6.2 gave it 0.03-0.40 and the line
    was lost; the v6.0 weights we run hear it."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from real_conditions import quiet_first_line

    case = quiet_first_line("three_speakers_en", -42, "music")
    doc = pipeline.transcribe_media(
        None, pipeline.Settings(), model=model, audio=pipeline.Audio(case.samples, None)
    )
    text = " ".join(c.text for c in doc)
    assert "meditating" in text.lower(), text
    ref = re.findall(r"[\w']+", case.reference.lower())
    assert word_errors(ref, re.findall(r"[\w']+", text.lower())) <= 12, text
    assert doc[0].start >= case.speech[0][0] * 1000 - 500  # nothing over the music before it
