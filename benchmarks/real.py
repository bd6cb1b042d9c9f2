"""Real recordings: our default subtitles beside faster-whisper's, on the same weights.

    python benchmarks/real.py [--only NAME ...] [--skip-peer] [--json out.json] [--shifts N]

Every file in ``../shared/realspeech/`` and the hard cases of ``real_cases.py`` (built
from those voices) go through our default pipeline (no flags) and through faster-whisper
(float32, greedy, word timestamps), plain and with its VAD: tiny.en for English, base for
the rest. One table per clip:

- word errors and WER after Whisper's normalizer, where a reference exists (characters
  for Chinese, Japanese and Korean);
- the longest run of identical consecutive cues, and phrases said 3+ times inside a cue;
- cues under the Default profile's minimum (and under 2/3 of it), and ``check``'s flags;
- with labelled speech (``.rttm``, or the spans of a built case): seconds of cue outside
  it (0.3 s grace) and the share of it without a cue (also with the profile's minimum
  gap between chained cues counted as shown).

The totals line sums the word errors over the clips with a reference.

``--shifts N`` runs every clip with a reference N times more, each with its first few
samples cut (the phase of the 10-ms frames moved by 32, 64, ... samples: where
faster-whisper's VAD cuts a chunk, a multiple of its 32-ms window less its 400-ms pad,
falls on one of these): a short sentence's words can flip with that phase, for any
engine, so one clip at one phase is a coin; the mean over phases is the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quality import covered, edit_distance, union  # noqa: E402
from real_cases import REAL, Case, all_cases  # noqa: E402

from subtitler.core.checks import check  # noqa: E402
from subtitler.core.document import Cue  # noqa: E402
from subtitler.core.profiles import get_profile  # noqa: E402

CHARACTER_LANGUAGES = {"zh", "ja", "ko"}


@lru_cache(maxsize=2)
def normalizer(english: bool):
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer() if english else BasicTextNormalizer(remove_diacritics=False)


def tokens(text: str, language: str) -> list[str]:
    """What the error rate counts: words after Whisper's normalizer (English's for
    English), or characters for languages written without spaces."""
    if language == "en":
        return normalizer(True)(text).split()
    norm = normalizer(False)(text)
    return list(norm.replace(" ", "")) if language in CHARACTER_LANGUAGES else norm.split()


def longest_identical_run(texts: list[str]) -> int:
    best = run = 0
    prev = None
    for t in texts:
        key = " ".join(t.lower().split())
        run = run + 1 if key == prev else 1
        best, prev = max(best, run), key
    return best


def repeated_phrases(text: str, times: int = 3) -> list[str]:
    """Phrases of 1-6 words said ``times`` or more times in a row inside one cue."""
    words = [w.strip(".,!?;:\"'").lower() for w in text.split()]
    found = []
    for n in range(1, 7):
        for i in range(len(words) - n * times + 1):
            gram = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == gram for k in range(times)):
                found.append(" ".join(gram))
    return sorted(set(found))


def rttm_speech(path: Path) -> list[tuple[float, float]]:
    spans = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            spans.append((float(parts[3]), float(parts[3]) + float(parts[4])))
    return spans


def realspeech_clips() -> list[Case]:
    """The realspeech files as cases: the path stands in for the samples."""
    out = []
    for f in sorted(REAL.iterdir()):
        if f.suffix not in (".wav", ".mp3"):
            continue
        stem = f.stem
        language = stem.split("_")[-1] if stem.startswith(("read_", "vad_example_", "interview_")) else "en"
        language = {"8k": "en"}.get(language, language)
        ref = REAL / f"{stem}.ref.txt"
        rttm = REAL / f"{stem}.rttm"
        out.append(
            Case(
                stem,
                language,
                str(f),
                ref.read_text(encoding="utf-8").strip() if ref.exists() else "",
                rttm_speech(rttm) if rttm.exists() else [],
            )
        )
    return out


def model_for(language: str) -> str:
    return "tiny.en" if language == "en" else "base"


_OURS: dict = {}
_PEERS: dict = {}


def ours(name: str, source) -> list[tuple[float, float, str]]:
    """What a user gets with no flags: the pipeline's defaults, the model loaded once."""
    from subtitler import pipeline

    if name not in _OURS:
        _OURS[name] = pipeline.load_model(name)
    doc = pipeline.transcribe_media(
        source if isinstance(source, str) else None,
        pipeline.Settings(model=name),
        model=_OURS[name],
        audio=None if isinstance(source, str) else pipeline.Audio(source, None),
    )
    return [(c.start / 1000, c.end / 1000, c.text) for c in doc]


def peer_model_dir(name: str) -> Path:
    """The offline model as a CTranslate2 folder faster-whisper opens: the installed one,
    or (base, shipped in two packages) its parts joined once into the bench folder."""
    import shutil

    from subtitler.engine.whisper.catalog import OFFLINE_PACKAGES, offline_model_dir, package_dir

    src = offline_model_dir(name)
    if (src / "model.bin").exists():
        return src
    out = Path(os.environ.get("BENCH_DIR", "/tmp/subtitler-bench")) / f"ct2-{name}"
    if not (out / "model.bin").exists():
        out.mkdir(parents=True, exist_ok=True)
        entry = OFFLINE_PACKAGES[name]
        parts = sorted(src.glob("model.bin.part*")) + sorted(
            package_dir(entry[2]).joinpath(*entry[1]).glob("model.bin.part*")
        )
        with open(out / "model.bin.tmp", "wb") as f:
            for part in parts:
                f.write(part.read_bytes())
        for extra in src.iterdir():
            if not extra.name.startswith("model.bin"):
                shutil.copy(extra, out / extra.name)
        (out / "model.bin.tmp").rename(out / "model.bin")
    return out


def peer(name: str, source, vad: bool) -> list[tuple[float, float, str]]:
    from faster_whisper import WhisperModel

    if name not in _PEERS:
        _PEERS[name] = WhisperModel(
            str(peer_model_dir(name)), device="cpu", compute_type="float32", cpu_threads=os.cpu_count() or 2
        )
    segs, _ = _PEERS[name].transcribe(source, beam_size=1, vad_filter=vad, word_timestamps=True)
    return [(s.start, s.end, s.text.strip()) for s in segs]


def measure(case: Case, cues) -> dict:
    p = get_profile("default")
    texts = [c[2] for c in cues]
    row: dict = {
        "cues": len(cues),
        "identical_run": longest_identical_run(texts),
        "repeats": sorted({r for t in texts for r in repeated_phrases(t)}),
    }
    durations = [round((b - a) * 1000) for a, b, _ in cues]
    row["under_min"] = sum(d < p.min_duration for d in durations)
    row["under_two_thirds"] = sum(d < p.min_duration * 2 / 3 for d in durations)
    row["shortest_ms"] = min(durations, default=0)
    segs = [Cue(round(a * 1000), round(b * 1000), t) for a, b, t in cues]
    row["flags"] = len({f.index for f in check(segs, p)})
    if case.reference:
        ref = tokens(case.reference, case.language)
        hyp = [w for t in texts for w in tokens(t, case.language)]
        row["errors"], row["ref_words"] = edit_distance(ref, hyp), len(ref)
        row["wer"] = row["errors"] / max(1, len(ref))
    if case.speech:
        grace = [(a - 0.3, b + 0.3) for a, b in case.speech]
        shown = sum(b - a for a, b in union([(c[0], c[1]) for c in cues]))
        total = sum(b - a for a, b in union(case.speech))
        row["outside_s"] = shown - covered(cues, grace)
        row["uncovered_pct"] = 100 * (total - covered(cues, case.speech)) / total
        # and with the profile's minimum gaps between chained cues counted as shown (the
        # blank frames a viewer reads as one subtitle giving way to the next)
        chained = [
            (a, max(b, cues[i + 1][0]) if cues[i + 1][0] - b <= p.min_gap / 1000 + 1e-3 else b, t)
            for i, (a, b, t) in enumerate(cues[:-1])
        ] + cues[-1:]
        row["uncovered_chained_pct"] = 100 * (total - covered(chained, case.speech)) / total
    return row


def fmt(row: dict) -> str:
    wer = f"{row['errors']}/{row['ref_words']} ({row['wer']:.3f})" if "errors" in row else "-"
    rttm = (
        f"{row['outside_s']:.1f} | {row['uncovered_pct']:.1f}% ({row['uncovered_chained_pct']:.1f}%)"
        if "outside_s" in row
        else "- | -"
    )
    rep = ", ".join(row["repeats"]) or "-"
    return (
        f"{wer} | {row['identical_run']} | {rep} | {row['cues']} | {row['under_min']} "
        f"({row['under_two_thirds']}; {row['shortest_ms']} ms) | {row['flags']} | {rttm}"
    )


def engines(with_peer: bool = True) -> list:
    """(name, run(model, samples) -> cues): our default pipeline, and the peer plain and with its VAD."""
    out = [("subtitler", ours)]
    if with_peer:
        out += [
            ("faster-whisper", lambda m, s: peer(m, s, False)),
            ("faster-whisper + VAD", lambda m, s: peer(m, s, True)),
        ]
    return out


def run_tables(cases: list[Case], engines: list) -> dict:
    """Each case through each engine: a table per case, then the word errors summed over
    the cases with a reference. Returns every row, by case and engine."""
    results: dict = {}
    totals = {e: [0, 0] for e, _ in engines}
    for case in cases:
        m = model_for(case.language)
        print(f"\n### {case.name} ({case.language}, {m})\n")
        print(
            "| engine | errors (WER) | identical run | phrase 3x in a cue | cues | under min (under 2/3; shortest) "
            "| check flags | cue s outside speech | speech without cue (chained gaps as shown) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for engine, run in engines:
            t0 = time.perf_counter()
            cues = run(m, case.samples)
            row = measure(case, cues)
            row["seconds"] = time.perf_counter() - t0
            row["text"] = " / ".join(c[2] for c in cues)
            results.setdefault(case.name, {})[engine] = row
            if "errors" in row:
                totals[engine][0] += row["errors"]
                totals[engine][1] += row["ref_words"]
            print(f"| {engine} | {fmt(row)} |", flush=True)
    print("\n| engine | word errors over clips with a reference | WER |\n|---|---|---|")
    for engine, (e, n) in totals.items():
        print(f"| {engine} | {e}/{n} | {e / max(1, n):.3f} |")
    return results


# samples: faster-whisper's VAD cuts its chunks on this grid (512-sample windows, 6400 of pad)
SHIFT_STEP = 32


def shifted(case: Case, cut: int) -> Case:
    """``case`` with its first ``cut`` samples gone (and its labelled speech moved with them)."""
    from subtitler.engine.audio import SAMPLE_RATE, load_audio

    samples = load_audio(case.samples) if isinstance(case.samples, str) else case.samples
    dt = cut / SAMPLE_RATE
    return replace(
        case,
        samples=np.ascontiguousarray(samples[cut:], np.float32),
        speech=[(a - dt, b - dt) for a, b in case.speech],
    )


def run_shifts(cases: list[Case], engines: list, n: int) -> dict:
    """Every case with a reference at the file's own frame phase and ``n`` more (``shifted``
    by 32, 64, ... samples): each engine's word errors per phase, and their mean per clip."""
    cuts = [SHIFT_STEP * k for k in range(n + 1)]
    errors: dict = {}
    for case in (c for c in cases if c.reference):
        m = model_for(case.language)
        loaded = shifted(case, 0)  # a file read once for all its phases
        for cut in cuts:
            trial = shifted(loaded, cut) if cut else case
            for engine, run in engines:
                row = measure(trial, run(m, trial.samples))
                errors.setdefault(case.name, {}).setdefault(engine, []).append(row["errors"])
    names = [e for e, _ in engines]
    print(f"\n### word errors at {len(cuts)} frame phases (cut {', '.join(map(str, cuts))} samples)\n")
    print("| clip | " + " | ".join(f"{e} (mean; per phase)" for e in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for clip, by_engine in errors.items():
        cells = [f"{np.mean(by_engine[e]):.2f}; {' '.join(map(str, by_engine[e]))}" for e in names]
        print(f"| {clip} | " + " | ".join(cells) + " |")
    totals = [
        np.mean([sum(by_engine[e][k] for by_engine in errors.values()) for k in range(len(cuts))])
        for e in names
    ]
    print("| mean total | " + " | ".join(f"{t:.1f}" for t in totals) + " |")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", help="clip names to run")
    ap.add_argument("--skip-peer", action="store_true", help="our pipeline only")
    ap.add_argument("--json", help="write every row here")
    ap.add_argument(
        "--shifts", type=int, default=0, help="also N sub-frame phases of each clip with a reference"
    )
    args = ap.parse_args()
    from subtitler.engine import runtime

    runtime.prepare()
    cases = realspeech_clips() + all_cases()
    if args.only:
        cases = [c for c in cases if c.name in args.only]
    if args.shifts:
        results = run_shifts(cases, engines(not args.skip_peer), args.shifts)
    else:
        results = run_tables(cases, engines(not args.skip_peer))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
