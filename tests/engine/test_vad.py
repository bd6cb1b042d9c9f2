"""Speech detection: the Silero VAD port, speech vs music and laughter, quiet speakers,
and the hallucination guards."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import JFK, LS, normalize, word_errors

from subtitler.engine import guards, level, silero, vad, word_edges
from subtitler.engine.audio import load_audio
from subtitler.engine.types import DecodedSegment, DecodedWord

DATA = Path(__file__).resolve().parent.parent / "data"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.fixture(params=["c", "c avx2", "portable c", "numpy"])
def lstm_path(request, monkeypatch):
    """The detector's paths: the installed C kernels (their AVX-512 recurrence where the
    CPU has it), the same with AVX2 at most, their plain C build (what CPUs other than x86
    run), and NumPy (no kernels)."""
    from subtitler.engine.kernels import native

    lib = native.library()
    if request.param.startswith("c") and lib is None:
        pytest.skip("the C kernels were not built")
    if request.param == "c avx2":
        lib.set_simd_limit(1)
        request.addfinalizer(lambda: lib.set_simd_limit(2))
        if lib.simd_level() != 1:
            pytest.skip("this CPU has no AVX2")
    if request.param == "portable c":
        monkeypatch.setattr(native, "_lib", request.getfixturevalue("portable_kernels"))
    if request.param == "numpy":
        monkeypatch.setattr(native, "_lib", False)
    return request.param


@pytest.mark.parametrize("name,clip", [("jfk", JFK), ("ls_test", LS)])
def test_port_gives_silero_s_own_probabilities(lstm_path, name, clip):
    """Our NumPy/C Silero against what ONNX Runtime computes from Silero's ONNX file."""
    ref = np.array(json.loads((DATA / "silero_reference.json").read_text())[name])
    ours = silero.speech_probabilities(load_audio(str(clip)))
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4


def _wav(tmp_path, name, samples):
    import wave

    path = tmp_path / f"{name}.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["music", "laughter", "silence"])
def test_nothing_is_shown_over_music_laughter_or_silence(tmp_path, model, kind):
    import vad_clips

    from subtitler import pipeline

    samples = {
        "music": lambda: vad_clips.music(20.0),
        "laughter": lambda: np.concatenate(
            [vad_clips.laughter(14), np.zeros(8000, np.float32), vad_clips.laughter(10, 3)]
        ),
        "silence": lambda: np.random.default_rng(0).normal(0, 0.001, 12 * 16000).astype(np.float32),
    }[kind]()
    assert not vad.speech_mask(samples).any()
    doc = pipeline.transcribe_media(_wav(tmp_path, kind, samples), model=model)
    assert len(doc) == 0


# ls_test.flac (LibriSpeech test-clean), as larger Whisper models read it.
LS_TEXT = "Then the good soul openly shouldered the burden she had borne so long in secret and bravely trudged on alone."


def _loud_then_quiet(quiet_db: float) -> np.ndarray:
    loud, quiet = load_audio(str(JFK)), load_audio(str(LS)) * 10 ** (-quiet_db / 20)
    pause = np.zeros(16000, np.float32)
    mixed = np.concatenate([pause, loud, pause, quiet, pause]).astype(np.float32)
    return mixed + np.random.default_rng(1).normal(0, 0.0003, len(mixed)).astype(np.float32)


@pytest.mark.slow
def test_a_quiet_speaker_beside_a_loud_one_keeps_every_word(tmp_path, model):
    """jfk at full level, then ls_test 25 dB quieter in the same file: the speech mask
    covers the quiet speech, the gain raises it to jfk's level, and the quiet sentence
    comes out whole, with no more word errors than when the two are at one level (the
    window is decoded raised and plain, and the surer decode kept)."""
    from subtitler import pipeline

    mixed = _loud_then_quiet(25)
    mask = vad.speech_mask(mixed)
    q0 = (16000 * 2 + len(load_audio(str(JFK)))) // 160
    alone = vad.speech_mask(load_audio(str(LS)))
    assert mask[q0 : q0 + len(alone)][alone].mean() > 0.9  # the quiet speech is speech
    gain_db = 20 * np.log10(level.speech_gain(mixed, mask))
    assert gain_db[: q0 - 50].max() == 0  # jfk and the pauses around it: as they are
    assert 22 < np.median(gain_db[q0 + 100 : q0 + len(alone) - 100]) < 28  # ls_test: up by about 25 dB

    def said(samples, name):
        doc = pipeline.transcribe_media(_wav(tmp_path, name, samples), model=model)
        return normalize(" ".join(s.text for s in doc if s.start >= q0 * 10 - 300))

    truth = normalize(LS_TEXT).split()
    said_quiet, said_level = said(mixed, "mixed").split(), said(_loud_then_quiet(0), "level").split()
    assert len(said_quiet) == len(truth)
    assert word_errors(truth, said_quiet) <= word_errors(truth, said_level) <= 4


@pytest.mark.slow
def test_a_music_intro_is_not_decoded(tmp_path, model):
    """Eight seconds of chords and a beat, then jfk: the first window opens on the speech
    (none is spent on the music), and the words are jfk's as when it is alone."""
    from subtitler import pipeline

    t = np.arange(8 * 16000) / 16000
    chords = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * np.exp(-(t % 0.5) * 4)
    beat = np.sin(2 * np.pi * 60 * t) * np.exp(-(t % 0.5) * 30)
    intro = (0.1 * chords + 0.3 * beat).astype(np.float32)
    from subtitler.engine.transcribe import transcribe
    from subtitler.engine.types import TranscribeOptions

    jfk = load_audio(str(JFK))
    run = transcribe(model, np.concatenate([intro, jfk]), TranscribeOptions(word_timestamps=True))
    segments, info = list(run), run.info
    assert len(info.windows) == 1 and 7.8 < info.windows[0][0] < 8.3  # 0.4 s before jfk's first word
    assert segments[0].start >= 8.0
    alone = pipeline.transcribe_media(JFK, model=model)
    assert normalize(" ".join(s.text for s in segments)) == normalize(" ".join(c.text for c in alone))


def test_regions_follow_the_hysteresis(monkeypatch):
    """A region starts at P >= ON, holds while P >= OFF, ends below OFF (the margin off)."""
    probs = np.array([0.1, 0.4, 0.6, 0.4, 0.36, 0.2, 0.45, 0.5, 0.34, 0.9], np.float32)
    monkeypatch.setattr(silero, "speech_probabilities", lambda samples, cancel=None: probs)
    monkeypatch.setattr(vad, "MARGIN_MS", 0)
    frames = vad.neural_regions(np.zeros(len(probs) * silero.CHUNK, np.float32))
    per_chunk = frames[
        (np.arange(len(probs)) * silero.CHUNK + silero.CHUNK // 2) // vad.FRAME
    ]  # mid-chunk frames
    assert per_chunk.tolist() == [False, False, True, True, True, False, False, True, False, True]


def test_percentile_is_numpys():
    rng = np.random.default_rng(4)
    for n in (1, 2, 7, 1000):
        x = (rng.normal(size=n) * 30 - 40).astype(np.float32)
        for q in (0, 10, 50, 90, 100):
            assert abs(vad.percentile(x, q) - float(np.percentile(x, q))) < 1e-4


def test_speech_at_one_level_gets_no_gain():
    """A recording whose speech sits at one level goes to the recogniser untouched
    (jfk's trailing breath, 17 dB under its phrases, is too short to be raised)."""
    for clip in (JFK, LS):
        samples = load_audio(str(clip))
        assert level.speech_gain(samples, vad.speech_mask(samples)) is None
    assert level.speech_regions(np.array([0, 1, 1, 0, 0, 1] + [0] * 60 + [1, 1], bool)) == [(1, 6), (66, 68)]


def _segment(words):
    ws = [DecodedWord(a, b, t, p) for a, b, t, p in words]
    return DecodedSegment(ws[0].start, ws[-1].end, "".join(w.word for w in ws), words=ws)


def test_word_edges_move_onto_speech():
    """A start in non-speech moves forward to the speech; a start DTW put late inside
    speech moves back to where it begins (across a hole of a few frames, within 0.3 s,
    never into the previous word); an end in non-speech moves back."""
    mask = np.zeros(1000, bool)
    mask[100:200] = mask[300:340] = mask[344:400] = mask[600:700] = True
    early = DecodedWord(0.8, 1.5, " early", 0.9)  # 0.2 s of silence before its speech
    late = DecodedWord(3.5, 3.9, " late", 0.9)  # its speech began at 3.0 s (a 40-ms hole at 3.4)
    words = [early, late]
    assert word_edges.refine_words(words, mask) == 3.9
    assert (early.start, early.end, late.start) == (1.0, 1.5, 3.2)  # back 0.3 s at most
    nudged = DecodedWord(6.2, 6.8, " on", 0.9)
    word_edges.refine_words([nudged], mask, not_before=6.1)
    assert nudged.start == 6.1  # not before the last word's end
    instant = DecodedWord(6.4, 6.4, " The", 0.9)  # DTW gave it no time: it still moves back onto its speech
    word_edges.refine_words([instant], mask)
    assert (instant.start, instant.end) == (6.1, 6.4)
    tail = DecodedWord(6.5, 7.5, " tail", 0.9)
    word_edges.refine_words([tail], mask)
    assert (tail.start, tail.end) == (6.2, 7.0)  # back by the reach; its end onto the speech


def test_word_edges_take_in_the_onset_and_decay():
    """With ``edges`` (the mask with its regions' soft onsets and decays), a word's
    edges go onto those, within its span; DTW's late start walks back onto the onset;
    a word whose span holds only an onset or a decay, no speech, is left as it is."""
    mask = np.zeros(1000, bool)
    mask[100:200] = True
    edges = mask.copy()
    edges[96:205] = True
    word = DecodedWord(0.9, 2.5, " word", 0.9)
    word_edges.refine_words([word], mask, edges=edges)
    assert (word.start, word.end) == (0.96, 2.05)
    late = DecodedWord(1.1, 1.9, " late", 0.9)
    word_edges.refine_words([late], mask, edges=edges)
    assert late.start == 0.96
    tail = DecodedWord(2.01, 2.3, " tail", 0.9)
    word_edges.refine_words([tail], mask, edges=edges)
    assert (tail.start, tail.end) == (2.01, 2.3)
    plain = DecodedWord(0.9, 2.5, " word", 0.9)
    word_edges.refine_words([plain], mask)  # without edges: onto the speech alone
    assert (plain.start, plain.end) == (1.0, 2.0)


def test_edges_grow_speech_onto_its_own_onset_and_decay_only():
    """A tone that rises from -40 dB over 0.1 s, holds, and falls again, then a lone
    blip 25 dB down: the speech grows onto the rise and the fall, each frame it takes
    within EDGE_DB of the loudest sound, at most EDGE_FRAMES out, and not onto the blip."""
    t = np.arange(4 * 16000) / 16000
    db = np.full(t.shape, -200.0)
    db[(t >= 0.9) & (t < 1.0)] = -40 + 400 * (t[(t >= 0.9) & (t < 1.0)] - 0.9)  # the rise
    db[(t >= 1.0) & (t < 2.0)] = 0.0
    db[(t >= 2.0) & (t < 2.1)] = -400 * (t[(t >= 2.0) & (t < 2.1)] - 2.0)  # the fall
    db[(t >= 2.6) & (t < 2.7)] = -25.0  # the blip
    x = (0.5 * 10 ** (db / 20) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    x += np.random.default_rng(3).normal(0, 1e-5, len(x)).astype(np.float32)
    speech = vad.sound_mask(x)
    speech[:50] = speech[350:] = False  # the file's first and last frames: no speech there (the neural pass)
    grown = word_edges.with_edges(x, speech)
    assert len(grown) == len(speech) and not (speech & ~grown).any()
    added = np.flatnonzero(grown & ~speech)
    first, last = np.flatnonzero(speech)[[0, -1]]
    assert added.size and np.all((added < first) | (added > last))
    assert added.min() >= first - word_edges.EDGE_FRAMES and added.max() <= last + word_edges.EDGE_FRAMES
    assert added.min() < first and added.max() > last  # both the onset and the decay
    smooth, local_peak, _ = vad.levels(x)
    assert np.all(smooth[added] > local_peak[added] - word_edges.EDGE_DB)
    assert not grown[250:280].any()  # the blip


@pytest.mark.slow
def test_cues_start_on_the_speech_onset(tmp_path, model):
    """ls_test after a second of near silence: the first cue's first word starts within
    20 ms of where the waveform first rises over 1% of its peak (without the onsets, 36
    ms late), and the cue 120 ms before it (the default profile's lead-in)."""
    from subtitler import pipeline

    pause = np.random.default_rng(0).normal(0, 0.0003, 16000).astype(np.float32)
    x = np.concatenate([pause, load_audio(str(LS)), pause])
    onset = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())[0] / 16000
    doc = pipeline.transcribe_media(_wav(tmp_path, "ls", x), model=model)
    assert abs(doc[0].words[0].start / 1000 - onset) <= 0.02
    assert doc[0].start == doc[0].words[0].start - 120


def test_guards():
    mask = np.zeros(1000, bool)
    mask[200:400] = True  # speech from 2 to 4 s
    lone_over_noise = _segment([(6.0, 6.4, " 2", 0.2)])
    lone_over_speech = _segment([(2.5, 2.9, " Yes.", 0.3)])  # quiet, short, but speech
    confident = _segment([(6.0, 6.4, " Hello", 0.9)])
    assert guards.is_lone_guess(lone_over_noise, mask)
    assert not guards.is_lone_guess(lone_over_speech, mask)
    assert not guards.is_lone_guess(confident, mask)
    sentence = _segment([(2.0, 2.3, " We", 0.3), (2.3, 2.6, " are", 0.3)])
    assert not guards.is_lone_guess(sentence, mask)
    assert guards.is_guess(lone_over_noise, mask, 0.1) and not guards.is_guess(sentence, mask, 0.1)
    assert guards.is_guess(_segment([(7.0, 9.0, " music", 0.9)]), mask, 0.1)  # not over speech at all
    loop = _segment([(2.0, 3.9, " Thank you." * 8, 0.9)])
    assert guards.is_repetition_loop(loop.text) and guards.is_guess(loop, mask, 0.1)
    assert not guards.is_repetition_loop(
        "And so my fellow Americans, ask not what your country can do for you"
    )


def test_blocks_carry_the_state(lstm_path, monkeypatch):
    """Long recordings go through in blocks (bounded memory); the LSTM state and the
    chunk context cross each block's edge, so the probabilities are the same."""
    x = load_audio(str(LS))
    whole = silero.speech_probabilities(x)
    monkeypatch.setattr(silero, "BLOCK", 37)
    assert np.abs(silero.speech_probabilities(x) - whole).max() < 1e-6


def test_speech_found_as_the_audio_arrives_is_the_same(lstm_path):
    """Fed in the blocks a decoder hands over (any sizes: a sample, part of a chunk,
    many chunks), the speech detector gives the probabilities it gives the whole file."""
    x = load_audio(str(LS))
    whole = silero.speech_probabilities(x)
    stream, a = silero.SpeechStream(), 0
    for size in [1, 63, 511, 513, 64, 100_000, 7, 1 << 19]:
        stream.feed(x[a : a + size])
        a += size
    stream.feed(x[a:])
    got = stream.finish()
    assert got.shape == whole.shape == (-(-len(x) // silero.CHUNK),) and whole.max() > 0.9
    assert np.abs(got - whole).max() < 1e-6
    assert len(silero.SpeechStream().finish()) == 0


def test_finding_speech_stops_between_blocks_when_cancelled(monkeypatch):
    """The window finds a file's speech in the background; closing it stops the work
    at the next block, and what was asked for is never half-computed."""
    from subtitler.errors import Cancelled

    x = load_audio(str(LS))
    monkeypatch.setattr(silero, "BLOCK", 37)
    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(Cancelled):
        vad.speech_mask(x, cancel=cancel)
    assert len(polls) == 4  # stopped at the fourth block, of 6.7 s / (37 x 32 ms) = 6
