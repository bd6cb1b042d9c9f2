"""Accuracy of the compute types against each other: our default pipeline with the C
decoding steps reading float32 weights and int8 weights, on every clip with a reference
(``real.py``'s real recordings and hard cases, and ``quality.py``'s long clip).

    python benchmarks/compute_types.py [--types float32 int8]

Per clip: word errors for each type (after Whisper's normalizer), and how far the word
times of the int8 run lie from the float32 run's where both wrote the same words. The
totals are what the compute types are judged on: int8's WER within +0.005 of float32's.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def run(model, source, compute_type: str):
    """Cues (start, end, text) in seconds and words (text, start, end) in milliseconds (the
    core's integers: a shift of one 20-ms alignment frame is exactly 20, not 20 and a bit)."""
    from subtitler import pipeline

    doc = pipeline.transcribe_media(
        source if isinstance(source, str) else None,
        pipeline.Settings(compute_type=compute_type),
        model=model,
        audio=None if isinstance(source, str) else pipeline.Audio(source, None),
    )
    cues = [(c.start / 1000, c.end / 1000, c.text) for c in doc]
    words = [(w.text.strip(), w.start, w.end) for c in doc for w in c.words]
    return cues, words


def time_shifts(a: list, b: list) -> list[int]:
    """|start| and |end| differences (ms) of the words both runs wrote, matched in order."""
    sm = difflib.SequenceMatcher(None, [w[0] for w in a], [w[0] for w in b], autojunk=False)
    out = []
    for i, j, n in sm.get_matching_blocks():
        for k in range(n):
            out += [abs(a[i + k][1] - b[j + k][1]), abs(a[i + k][2] - b[j + k][2])]
    return out


def cases(minutes: float) -> list[tuple]:
    """(name, language, reference text, samples or path) of every clip with a reference:
    ``real.py``'s real recordings and hard cases, and ``quality.py``'s long clip."""
    import clips
    from real import realspeech_clips
    from real_cases import all_cases

    work = Path(os.environ.get("BENCH_DIR", "/tmp/subtitler-bench"))
    mp4, spans, _ = clips.make(work, minutes)
    out = [
        (c.name, c.language, c.reference, c.samples) for c in realspeech_clips() + all_cases() if c.reference
    ]
    return out + [("quality long clip", "en", " ".join(s.text for s in spans), str(mp4))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--types", nargs="+", default=["float32", "int8"])
    ap.add_argument("--minutes", type=float, default=2.5, help="quality.py's long clip")
    args = ap.parse_args()
    from subtitler.engine import runtime

    runtime.prepare()
    from quality import edit_distance
    from real import model_for, tokens

    from subtitler import pipeline

    models: dict = {}
    errors = {t: 0 for t in args.types}
    ref_words, shifts = 0, []
    print(
        f"| clip | words | {' | '.join(f'{t} errors' for t in args.types)} | word times: median / max shift s |"
    )
    print(f"|---|---|{'---|' * len(args.types)}---|")
    for name, language, reference, source in cases(args.minutes):
        m = model_for(language)
        ref = tokens(reference, language)
        ref_words += len(ref)
        row, words = [], {}
        for t in args.types:
            if (m, t) not in models:  # a model is loaded for its compute type (int8 holds no float32)
                models.clear()
                models[(m, t)] = pipeline.load_model(m, compute_type=t)
            cues, words[t] = run(models[(m, t)], source, t)
            e = edit_distance(ref, [w for c in cues for w in tokens(c[2], language)])
            errors[t] += e
            row.append(str(e))
        d = time_shifts(words[args.types[0]], words[args.types[-1]])
        shifts += d
        d.sort()
        spread = f"{d[len(d) // 2] / 1000:.3f} / {d[-1] / 1000:.3f}" if d else "-"
        print(f"| {name} | {len(ref)} | {' | '.join(row)} | {spread} |", flush=True)
    shifts.sort()
    totals = ", ".join(f"{t} {errors[t]} ({errors[t] / ref_words:.4f})" for t in args.types)
    print(f"\nword errors over {ref_words} reference words: {totals}")
    if shifts:
        within = sum(s <= 20 for s in shifts) / len(shifts)
        print(
            f"word times, {args.types[-1]} against {args.types[0]} on the words both wrote: median shift "
            f"{shifts[len(shifts) // 2] / 1000:.3f} s, {100 * within:.1f}% of word edges within 20 ms "
            f"({sum(s > 20 for s in shifts)} of {len(shifts)} further), max {shifts[-1] / 1000:.3f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
