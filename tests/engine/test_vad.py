"""Speech detection: the Silero VAD port, speech vs music and laughter, quiet speakers,
and the hallucination guards."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from subtitler.engine import silero, vad
from subtitler.engine.audio import load_audio
from subtitler.engine.types import DecodedSegment, DecodedWord

from conftest import JFK, LS, normalize

DATA = Path(__file__).resolve().parent.parent / "data"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.fixture(params=["c", "numpy"])
def lstm_path(request, monkeypatch):
    from subtitler.engine.cpu import native

    if request.param == "c" and native.library() is None:
        pytest.skip("the C kernels were not built")
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

    samples = {"music": lambda: vad_clips.music(20.0),
               "laughter": lambda: np.concatenate([vad_clips.laughter(14), np.zeros(8000, np.float32), vad_clips.laughter(10, 3)]),
               "silence": lambda: np.random.default_rng(0).normal(0, 0.001, 12 * 16000).astype(np.float32)}[kind]()
    assert not vad.speech_mask(samples).any()
    doc = pipeline.transcribe_media(_wav(tmp_path, kind, samples), model=model)
    assert len(doc) == 0


@pytest.mark.slow
def test_a_quiet_speaker_beside_a_loud_one_keeps_every_word(tmp_path, model):
    """jfk at full level, then ls_test 25 dB quieter in the same file: the speech mask
    covers the quiet speech and the transcript keeps its words as well as when alone."""
    from subtitler import pipeline

    loud, quiet = load_audio(str(JFK)), load_audio(str(LS)) * 10 ** (-25 / 20)
    pause = np.zeros(16000, np.float32)
    mixed = np.concatenate([pause, loud, pause, quiet, pause]).astype(np.float32)
    mixed += np.random.default_rng(1).normal(0, 0.0003, len(mixed)).astype(np.float32)
    mask = vad.speech_mask(mixed)
    q0 = (len(pause) * 2 + len(loud)) // 160
    alone = vad.speech_mask(load_audio(str(LS)))
    assert mask[q0 : q0 + len(alone)][alone].mean() > 0.9  # the quiet speech is speech
    doc = pipeline.transcribe_media(_wav(tmp_path, "mixed", mixed), model=model)
    said_quiet = normalize(" ".join(s.text for s in doc if s.start >= q0 * 10 - 300))
    said_alone = normalize(" ".join(s.text for s in pipeline.transcribe_media(LS, model=model)))
    assert said_quiet == said_alone and len(said_alone.split()) > 15


def _segment(words):
    ws = [DecodedWord(a, b, t, p) for a, b, t, p in words]
    return DecodedSegment(ws[0].start, ws[-1].end, "".join(w.word for w in ws), words=ws)


def test_guards():
    mask = np.zeros(1000, bool)
    mask[200:400] = True  # speech from 2 to 4 s
    lone_over_noise = _segment([(6.0, 6.4, " 2", 0.2)])
    lone_over_speech = _segment([(2.5, 2.9, " Yes.", 0.3)])  # quiet, short, but speech
    confident = _segment([(6.0, 6.4, " Hello", 0.9)])
    assert vad.is_lone_guess(lone_over_noise, mask)
    assert not vad.is_lone_guess(lone_over_speech, mask)
    assert not vad.is_lone_guess(confident, mask)
    sentence = _segment([(2.0, 2.3, " We", 0.3), (2.3, 2.6, " are", 0.3)])
    assert not vad.is_lone_guess(sentence, mask)
    assert vad.is_guess(lone_over_noise, mask, 0.1) and not vad.is_guess(sentence, mask, 0.1)
    assert vad.is_guess(_segment([(7.0, 9.0, " music", 0.9)]), mask, 0.1)  # not over speech at all
    loop = _segment([(2.0, 3.9, " Thank you." * 8, 0.9)])
    assert vad.is_repetition_loop(loop.text) and vad.is_guess(loop, mask, 0.1)
    assert not vad.is_repetition_loop("And so my fellow Americans, ask not what your country can do for you")


def test_blocks_carry_the_state(lstm_path, monkeypatch):
    """Long recordings go through in blocks (bounded memory); the LSTM state and the
    chunk context cross each block's edge, so the probabilities are the same."""
    x = load_audio(str(LS))
    whole = silero.speech_probabilities(x)
    monkeypatch.setattr(silero, "BLOCK", 37)
    assert np.abs(silero.speech_probabilities(x) - whole).max() < 1e-6
