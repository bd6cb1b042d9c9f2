"""Subtitle timing quality on clips with known sentence times, ours against the peer.

    python benchmarks/quality.py [--minutes 2.5]

Reports word error rate, the median |cue start - sentence start|, seconds of
subtitles shown over non-speech, words emitted inside the noise-only stretch,
and the share of cues that break the Default profile. The peer is faster-whisper
on the same tiny.en weights, with and without its VAD.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from subtitler.core.checks import check  # noqa: E402
from subtitler.core.document import Cue  # noqa: E402


def words_of(text: str) -> list[str]:
    """The words WER counts, after Whisper's English normalizer (the one its paper
    scores with: "six" and "6" are one word, contractions spelled out, punctuation
    gone), the same for every engine."""
    return _normalizer()(text).split()


def _normalizer():
    global _NORMALIZER
    if _NORMALIZER is None:
        try:
            from whisper_normalizer.english import EnglishTextNormalizer
        except ImportError:
            sys.exit('quality.py scores with Whisper\'s text normalizer: pip install -e ".[bench]"')
        _NORMALIZER = EnglishTextNormalizer()
    return _NORMALIZER


_NORMALIZER = None


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word edits (substitutions, insertions, deletions) from ``ref`` to ``hyp``."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)]


def wer(ref: list[str], hyp: list[str]) -> float:
    return edit_distance(ref, hyp) / max(1, len(ref))


def overlap(a0, a1, b0, b1) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def union(intervals):
    out = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def score(cues: list[tuple[float, float, str, list]], spans, noise, duration) -> dict:
    """cues: (start s, end s, text, [(word, start, end)])."""
    ref = [w for s in spans for w in words_of(s.text)]
    hyp = [w for c in cues for w in words_of(c[2])]
    starts = [c[0] for c in cues]
    errors = [min(abs(s.start - x) for x in starts) for s in spans] if starts else [float("inf")]
    shown = union([(c[0], c[1]) for c in cues])
    speech = union([(s.start, s.end) for s in spans])
    shown_total = sum(b - a for a, b in shown)
    over_speech = sum(overlap(a, b, c, d) for a, b in shown for c, d in speech)
    non_speech = duration - sum(b - a for a, b in speech)
    in_noise = sum(1 for c in cues for (w, ws, we) in c[3] if noise[0] + 0.5 < (ws + we) / 2 < noise[1] - 0.5)
    if not any(c[3] for c in cues):  # no word timings: count the words of cues inside the stretch
        in_noise = sum(
            len(words_of(c[2])) for c in cues if noise[0] + 0.5 < (c[0] + c[1]) / 2 < noise[1] - 0.5
        )
    segs = [Cue(int(c[0] * 1000), int(c[1] * 1000), c[2]) for c in cues]
    findings = check(segs, "default")
    bad = {f.index for f in findings}
    kinds = sorted({f.kind for f in findings})
    avoidable = {f.index for f in findings if not f.unavoidable}
    return {
        "kinds": ",".join(kinds) or "-",
        "avoidable_pct": 100 * len(avoidable) / max(1, len(cues)),
        "wer": wer(ref, hyp),
        "median_start_err": statistics.median(errors),
        "over_nonspeech_s": shown_total - over_speech,
        "over_nonspeech_pct": 100 * (shown_total - over_speech) / non_speech,
        "noise_words": in_noise,
        "cues": len(cues),
        "profile_break_pct": 100 * len(bad) / max(1, len(cues)),
    }


def ours(clip: str):
    """What a user gets with no flags: the pipeline's default settings."""
    from subtitler import pipeline

    doc = pipeline.transcribe_media(clip, pipeline.Settings(model="tiny.en"))
    return [
        (c.start / 1000, c.end / 1000, c.text, [(w.text, w.start / 1000, w.end / 1000) for w in c.words])
        for c in doc
    ]


def peer(clip: str, vad: bool):
    from faster_whisper import WhisperModel

    from subtitler.engine.whisper.load import offline_model_dir

    fw = WhisperModel(
        str(offline_model_dir("tiny.en")),
        device="cpu",
        compute_type="float32",
        cpu_threads=os.cpu_count() or 2,
    )
    segs, _ = fw.transcribe(clip, beam_size=1, vad_filter=vad, word_timestamps=True)
    return [
        (s.start, s.end, s.text.strip(), [(w.word, w.start, w.end) for w in (s.words or [])]) for s in segs
    ]


def write_wav(samples, path: Path) -> Path:
    import wave

    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def covered(cues, spans) -> float:
    """Seconds of cues inside ``spans`` ((start, end) pairs)."""
    return sum(overlap(a, b, c, d) for a, b in union([(c[0], c[1]) for c in cues]) for c, d in union(spans))


def speech_detection(work: Path) -> None:
    """The speech-detection cases: music, laughter, silence, speech over music, a loud
    and a quiet speaker, and overlapping turns, each against its known speech spans."""
    import vad_clips

    print("\n## Speech detection\n")
    print(
        "| clip | engine | words | cues | WER | cue s over music-only | quiet-speaker WER (loud) "
        "| cue s outside speech (0.3 s grace) | speech without a cue |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for clip in vad_clips.build_all():
        wav = write_wav(clip.samples, work / "vad" / (clip.name.replace(" ", "_").replace(",", "") + ".wav"))
        duration = len(clip.samples) / 16000
        for name, cues in (
            ("subtitler", ours(str(wav))),
            ("faster-whisper", peer(str(wav), False)),
            ("faster-whisper + VAD", peer(str(wav), True)),
        ):
            hyp = [w for c in cues for w in words_of(c[2])]
            ref = [w for s in clip.speech for w in words_of(s.text)]
            speech = [(s.start, s.end) for s in clip.speech]
            graced = [(a - 0.3, b + 0.3) for a, b in speech]
            shown = sum(b - a for a, b in union([(c[0], c[1]) for c in cues]))
            outside = shown - covered(cues, graced)
            missed = sum(b - a for a, b in union(speech)) - covered(cues, speech)
            quiet = ""
            if clip.quiet:

                def wer_of(spans):
                    r = [w for s in spans for w in words_of(s.text)]
                    h = [
                        w
                        for c in cues
                        for w in words_of(c[2])
                        if any(overlap(c[0], c[1], s.start, s.end) > 0 for s in spans)
                    ]
                    return wer(r, h)

                loud = [s for s in clip.speech if s not in clip.quiet]
                quiet = f"{wer_of(clip.quiet):.3f} ({wer_of(loud):.3f})"
            total_speech = sum(b - a for a, b in union(speech))
            print(
                f"| {clip.name} | {name} | {len(hyp)} | {len(cues)} | {wer(ref, hyp) if ref else 0:.3f} "
                f"| {covered(cues, clip.music):.1f} | {quiet} | {outside:.1f} "
                f"| {100 * missed / total_speech if total_speech else 0:.1f}% |",
                flush=True,
            )
    del duration


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=2.5)
    ap.add_argument("--only", choices=["long", "vad"], help="run one part only")
    args = ap.parse_args()
    from subtitler.engine import runtime

    runtime.prepare()  # the fast BLAS before anything imports MLX
    import clips

    from subtitler.engine.audio import probe

    work = Path(os.environ.get("BENCH_DIR", "/tmp/subtitler-bench"))
    if args.only == "vad":
        speech_detection(work)
        return 0
    mp4, spans, noise = clips.make(work, args.minutes)
    duration = probe(str(mp4)).duration
    speech = sum(s.end - s.start for s in spans)
    print(
        f"clip: {duration:.1f} s, {len(spans)} sentences, {duration - speech:.1f} s non-speech, "
        f"noise-only {noise[0]:.1f}-{noise[1]:.1f} s\n"
    )
    rows = [
        ("subtitler (default settings)", ours(str(mp4))),
        ("faster-whisper", peer(str(mp4), False)),
        ("faster-whisper + VAD", peer(str(mp4), True)),
    ]
    print(
        "| engine | WER | median start error s | subtitle over non-speech s (% of non-speech) "
        "| words in noise stretch | cues | cues breaking profile (kinds) | of which avoidable |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, cues in rows:
        m = score(cues, spans, noise, duration)
        print(
            f"| {name} | {m['wer']:.3f} | {m['median_start_err']:.2f} | {m['over_nonspeech_s']:.1f} "
            f"({m['over_nonspeech_pct']:.1f}%) | {m['noise_words']} | {m['cues']} | {m['profile_break_pct']:.0f}% ({m['kinds']}) | {m['avoidable_pct']:.0f}% |"
        )
    if args.only is None:
        speech_detection(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
