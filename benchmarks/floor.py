"""What our encoder and decoding step cost next to their matrix products alone, and
next to CTranslate2 (faster-whisper's engine), in one process, interleaved.

    python benchmarks/floor.py [--reps 7]

For the jfk window and tiny.en (float32, the same weights for both engines) it times:

- the encoder: CTranslate2's whole encoder; ours; ours reduced to its matrix products
  (the same products, shapes and weights, run through MLX and the preloaded BLAS,
  with nothing between them: no softmax, GELU, layer norm or residual);
- one greedy decoding step: CTranslate2's cost per generated token; ours (decoder,
  logit rules and selection); ours reduced to the step's matrix products (with the
  self-attention over 100 cached positions).

If the products alone already take longer than CTranslate2's whole stage, no amount of
work around them closes the gap: the products themselves must get faster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def timed(fn) -> float:
    time.sleep(0.2)  # let the other engine's worker threads stop spinning first
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def encoder_products(model, mx):
    """A closure running the encoder's products on well-scaled inputs of the real shapes."""
    enc = model.encoder
    d = model.dims
    n, h, t = d.n_audio_state, d.n_audio_head, d.n_audio_ctx
    mel = mx.random.normal((1, 2 * t, d.n_mels))
    x = mx.random.normal((1, t, n)) * 0.1
    wide = mx.random.normal((1, t, 4 * n)) * 0.1
    q = mx.random.normal((1, h, t, n // h)) * 0.1
    kt = mx.random.normal((1, h, n // h, t)) * 0.1
    s = mx.softmax(mx.random.normal((1, h, t, t)), axis=-1)
    v = mx.random.normal((1, h, t, n // h)) * 0.1
    conv1_in = mx.random.normal((1, 2 * t, n)) * 0.1
    mx.eval(mel, x, wide, q, kt, s, v, conv1_in)

    def run():
        outs = [enc.conv1(mel), enc.conv2(conv1_in)]
        for blk in enc.blocks:
            w = blk.attn.fused_weights[0] if blk.attn.fused_weights is not None else blk.attn.query.weight
            outs += [
                x @ w.T,
                q @ kt,
                s @ v,
                x @ blk.attn.out.weight.T,
                x @ blk.mlp1.weight.T,
                wide @ blk.mlp2.weight.T,
            ]
        mx.eval(outs)

    return run


def step_products(model, cross_kv, mx, context: int = 100):
    """A closure running one decoding step's products (batch 1) on the real weights."""
    dec = model.decoder
    d = model.dims
    n, h = d.n_text_state, d.n_text_head
    x = mx.random.normal((1, 1, n)) * 0.1
    wide = mx.random.normal((1, 1, 4 * n)) * 0.1
    q = mx.random.normal((1, h, 1, n // h)) * 0.1
    k = mx.random.normal((1, h, context, n // h)) * 0.1
    v = mx.random.normal((1, h, context, n // h)) * 0.1
    w_self = mx.softmax(mx.random.normal((1, h, 1, context)), axis=-1)
    w_cross = mx.softmax(mx.random.normal((1, h, 1, d.n_audio_ctx)), axis=-1)
    mx.eval(x, wide, q, k, v, w_self, w_cross)
    emb_t = mx.contiguous(dec.token_embedding.weight.T)

    def run():
        outs = []
        for blk, (ckt, cvt) in zip(dec.blocks, cross_kv):
            w = blk.attn.fused_weights[0] if blk.attn.fused_weights is not None else blk.attn.query.weight
            outs += [
                x @ w.T,
                q @ k.swapaxes(-1, -2),
                w_self @ v,
                x @ blk.attn.out.weight.T,
                x @ blk.cross_attn.query.weight.T,
                q @ ckt,
                w_cross @ cvt.swapaxes(-1, -2),
                x @ blk.cross_attn.out.weight.T,
                x @ blk.mlp1.weight.T,
                wide @ blk.mlp2.weight.T,
            ]
        outs.append(x[:, 0] @ emb_t)
        mx.eval(outs)

    return run


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()

    import numpy as np

    from subtitler.engine import runtime

    runtime.prepare()  # the BLAS before MLX
    import clips
    import ctranslate2
    import mlx.core as mx
    from bench import machine
    from faster_whisper.feature_extractor import FeatureExtractor

    from subtitler.engine import audio
    from subtitler.engine.backends import backend_for
    from subtitler.engine.whisper.decoding import DecodingOptions, DecodingTask
    from subtitler.engine.whisper.load import load_model, offline_model_dir
    from subtitler.engine.whisper.tokenizer import get_tokenizer

    info = machine()
    model = load_model("tiny.en")
    ct2 = ctranslate2.models.Whisper(
        str(offline_model_dir("tiny.en")), device="cpu", compute_type="float32", intra_threads=info["threads"]
    )
    samples = audio.load_audio(str(clips.DATA / "jfk.flac"))
    ours_mel = mx.array(
        audio.pad_or_trim(audio.log_mel_spectrogram(samples, model.dims.n_mels, padding=audio.HOP_LENGTH))
    )[None]
    padded = np.pad(samples, (0, audio.N_SAMPLES - len(samples)))
    ct2_mel = ctranslate2.StorageView.from_array(
        np.ascontiguousarray(FeatureExtractor(model.dims.n_mels)(padded)[None, :, : audio.N_FRAMES])
    )
    cross_kv = backend_for(model).encode(ours_mel)
    ct2_encoded = ct2.encode(ct2_mel)
    tokenizer = get_tokenizer(False, model.num_languages, "en", "transcribe")
    prompt = [list(tokenizer.sot_sequence)]

    def ct2_tokens(max_length):
        out = ct2.generate(ct2_encoded, prompt, max_length=max_length, beam_size=1)
        return len(out[0].sequences_ids[0])

    def ours_decode():
        return DecodingTask(model, tokenizer, DecodingOptions(language="en"), backend=backend_for(model)).run(
            cross_kv, "en"
        )

    n_ours = len(ours_decode().tokens) + 1  # the EOT step counts too
    short, n_short = 4, ct2_tokens(4)
    n_long = ct2_tokens(448)
    enc_products = encoder_products(model, mx)
    dec_products = step_products(model, cross_kv, mx)

    rows = {
        k: []
        for k in (
            "ct2 encoder",
            "ours encoder",
            "ours encoder products",
            "ct2 step",
            "ours step",
            "ours step products",
        )
    }
    for _ in range(args.reps):
        rows["ct2 encoder"].append(timed(lambda: ct2.encode(ct2_mel)))
        rows["ours encoder"].append(timed(lambda: backend_for(model).encode(ours_mel)))
        rows["ours encoder products"].append(timed(enc_products))
        t_long = timed(lambda: ct2_tokens(448))
        t_short = timed(lambda: ct2_tokens(short))
        rows["ct2 step"].append((t_long - t_short) / max(1, n_long - n_short))
        rows["ours step"].append(timed(ours_decode) / n_ours)
        rows["ours step products"].append(timed(dec_products))

    print("# Products floor (jfk window, tiny.en, float32)\n")
    for k, v in info.items():
        print(f"- {k}: {v}")
    print(f"- tokens per window: ours {n_ours}, CTranslate2 {n_long}; {args.reps} interleaved repetitions\n")
    print("| stage | median ms | min ms |\n|---|---|---|")
    med = {}
    for name, times in rows.items():
        med[name] = statistics.median(times) * 1e3
        print(f"| {name} | {med[name]:.1f} | {min(times) * 1e3:.1f} |")
    print(
        f"\nencoder: ours / CTranslate2 {med['ours encoder'] / med['ct2 encoder']:.2f}, "
        f"products alone / CTranslate2 {med['ours encoder products'] / med['ct2 encoder']:.2f}"
    )
    print(
        f"step: ours / CTranslate2 {med['ours step'] / med['ct2 step']:.2f}, "
        f"products alone / CTranslate2 {med['ours step products'] / med['ct2 step']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
