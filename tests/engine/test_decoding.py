"""The logit rules, as array operations with state carried from step to step, mask
exactly what Whisper's per-sequence rules mask."""

import mlx.core as mx
import numpy as np
import pytest

from subtitler.engine.whisper.decoding import LogitRules
from subtitler.engine.whisper.tokenizer import get_tokenizer

N_VOCAB = 51864  # tiny.en


def reference_mask(
    logits: np.ndarray, history: list[list[int]], tok, suppress, max_initial: int
) -> np.ndarray:
    """openai/whisper's SuppressBlank, SuppressTokens and ApplyTimestampRules, one
    sequence at a time, written as plainly as the original."""
    tb, eot = tok.timestamp_begin, tok.eot
    out = logits.astype(np.float64).copy()
    for k, seq in enumerate(history):
        row = out[k]
        if not seq:
            row[tok.encode(" ") + [eot]] = -np.inf
        row[suppress] = -np.inf
        row[tok.no_timestamps] = -np.inf
        last_ts = len(seq) >= 1 and seq[-1] >= tb
        penult_ts = len(seq) < 2 or seq[-2] >= tb
        if last_ts:
            if penult_ts:
                row[tb:] = -np.inf
            else:
                row[:eot] = -np.inf
        stamps = [t for t in seq if t >= tb]
        if stamps:
            floor = stamps[-1] if (last_ts and not penult_ts) else stamps[-1] + 1
            row[tb:floor] = -np.inf
        if not seq:
            row[:tb] = -np.inf
            row[tb + max_initial + 1 :] = -np.inf
        logprobs = row - np.logaddexp.reduce(row)
        if np.logaddexp.reduce(logprobs[tb:]) > logprobs[:tb].max():
            row[:tb] = -np.inf
    return out


@pytest.mark.parametrize("xp", [mx, np], ids=["mlx", "numpy"])
def test_timestamp_rules_match_the_per_sequence_reference_along_sampled_paths(xp):
    """Over MLX arrays, and over the host logits of the C decoding step (NumPy)."""
    tok = get_tokenizer(False)
    tb = tok.timestamp_begin
    suppress = sorted(set(tok.non_speech_tokens) | {tok.sot, tok.sot_prev, tok.transcribe, tok.translate})
    rules = LogitRules(
        tok,
        N_VOCAB,
        sample_begin=1,
        suppress=suppress,
        suppress_blank=True,
        timestamps=True,
        max_initial_timestamp_index=50,
        xp=xp,
    )
    rng = np.random.default_rng(7)
    n = 6
    history: list[list[int]] = [[] for _ in range(n)]
    state = None
    kinds = set()
    for step in range(60):
        logits = rng.normal(0, 2, (n, N_VOCAB)).astype(np.float32)
        # Some rows lean towards timestamps, so that pairs, lone stamps and the
        # "timestamps outweigh text" rule all come up.
        logits[:, tb:] += rng.choice([-4.0, 0.0, 4.0, 9.0], size=(n, 1)).astype(np.float32)
        ours = np.array(rules(xp.array(logits), state))
        ref = reference_mask(logits, history, tok, suppress, 50)
        assert np.array_equal(np.isneginf(ours), np.isneginf(ref)), f"step {step}"
        # Follow a path the rules allow: sample from the masked distribution.
        p = np.exp(ours.astype(np.float64) - ours.max(axis=1, keepdims=True))
        picks = [int(rng.choice(N_VOCAB, p=row / row.sum())) for row in p]
        for h, t in zip(history, picks):
            kinds.add(("ts" if h and h[-1] >= tb else "text") + ">" + ("ts" if t >= tb else "text"))
            h.append(t)
        state = rules.advance(state, xp.array(picks))
    assert {"ts>ts", "ts>text", "text>ts", "text>text"} <= kinds


@pytest.mark.parametrize("xp", [mx, np], ids=["mlx", "numpy"])
def test_beam_state_follows_reordered_rows(xp):
    tok = get_tokenizer(False)
    rules = LogitRules(tok, N_VOCAB, 1, [], False, True, None, xp=xp)
    tb = tok.timestamp_begin
    state = rules.advance(None, xp.array([tb + 5, 400, tb + 9]))
    state = rules.advance(state, xp.array([tb + 7, tb + 2, 500]))
    moved = state.take(xp.array([2, 2, 0]))
    assert np.array(moved.max_ts)[:, 0].tolist() == [tb + 9, tb + 9, tb + 7]
    assert np.array(moved.last)[:, 0].tolist() == [False, False, True]
    assert np.array(moved.penult)[:, 0].tolist() == [True, True, True]


def test_rows_sharing_the_prompt_decode_as_rows_with_their_own_copy(model):
    """Beam search and best-of-N keep the prompt's keys and values once for all rows
    (``attend_after`` in MLX, the prefix of the C step): they must decode exactly as
    rows that each carry a copy, and the C step as MLX does."""
    from conftest import LS

    from subtitler.engine import audio
    from subtitler.engine.backends import backend_for
    from subtitler.engine.cpu.backend import CpuBackend
    from subtitler.engine.whisper.backend import MlxBackend, MlxSteps
    from subtitler.engine.whisper.decoding import DecodingOptions, DecodingTask

    tok = get_tokenizer(False)
    mel = audio.log_mel_spectrogram(audio.load_audio(str(LS)), 80, padding=audio.HOP_LENGTH)
    cross = MlxBackend(model).encode(mx.array(audio.pad_or_trim(mel[: audio.N_FRAMES]))[None])
    prompt = tok.encode(" Ask not what your country can do for you, ask what you can do for your country.")

    class CopiedSteps(MlxSteps):
        def __init__(self, decoder, cross_kv, initial_cache, n):
            super().__init__(
                decoder, cross_kv, [(mx.repeat(k, n, 0), mx.repeat(v, n, 0)) for k, v in initial_cache], 1
            )

    cpu = backend_for(model, "float32")
    cpu = cpu if isinstance(cpu, CpuBackend) and cpu.step_kernel is not None else None

    def decode(options, steps=None, backend=None):
        if backend is None:
            backend = MlxBackend(model)
            backend.steps_class = steps
        return DecodingTask(model, tok, options, backend=backend).run(cross, "en")

    for options in (
        DecodingOptions(beam_size=5, prompt=prompt),
        DecodingOptions(temperature=0.7, best_of=3, prompt=prompt),
    ):
        shared, copied = decode(options, MlxSteps), decode(options, CopiedSteps)
        assert shared.tokens == copied.tokens and len(shared.tokens) > 10
        assert abs(shared.sum_logprob - copied.sum_logprob) < 1e-3
        if cpu is not None:
            by_kernel = decode(options, backend=cpu)
            assert by_kernel.tokens == shared.tokens
            assert abs(by_kernel.sum_logprob - shared.sum_logprob) < 1e-3
