"""Our compute types against faster-whisper's, subtitle-grade output, whole process.

    python benchmarks/int8.py [--pairs 3] [--minutes 2.5]

Ours: the default CLI pipeline (word-timed cues) with the compute type auto (int8 here
where the C kernels run) and float32. faster-whisper: ``word_timestamps=True,
vad_filter=True``, int8 and float32, on the same weights (tiny.en, base). Each run is a
fresh process (``bench.measure``); the configurations run in turn, ``--pairs`` times,
and the ratios are medians of the rounds' ratios: wall time (load + transcription), CPU
seconds of the whole process, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RUNS = [
    ("subtitler", "auto"),
    ("faster-whisper", "int8"),
    ("subtitler", "float32"),
    ("faster-whisper", "float32"),
]


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=2.5)
    ap.add_argument("--out", default=str(HERE / "int8.json"))
    args = ap.parse_args()
    from bench import measure, start

    long_mp4, jfk, info = start("# compute types, subtitle-grade, whole process", args.minutes)
    cases = [("jfk 11 s", jfk, "tiny.en"), (f"long {args.minutes:g} min", str(long_mp4), "tiny.en")]
    cases.append((f"long {args.minutes:g} min", str(long_mp4), "base"))
    results = {"info": info, "cases": []}
    for clip_name, clip, model in cases:
        rounds = []
        for _ in range(args.pairs):
            rounds.append(
                {
                    (engine, compute): measure(
                        {
                            "clip": clip,
                            "engine": engine,
                            "compute": compute,
                            "beam": 1,
                            "mode": "cues",
                            "model": model,
                        }
                    )
                    for engine, compute in RUNS
                }
            )
        print(f"\n## {clip_name}, {model} (medians of {args.pairs} rounds)\n")
        print("| engine | compute | wall s (load + run) | CPU s | peak RSS MB |\n|---|---|---|---|---|")
        for run in RUNS:
            rs = [r[run] for r in rounds]
            print(
                f"| {run[0]} | {run[1]} | {median([x['load_s'] + x['time_s'] for x in rs]):.2f} "
                f"({median([x['load_s'] for x in rs]):.2f} + {median([x['time_s'] for x in rs]):.2f}) "
                f"| {median([x['cpu_s'] for x in rs]):.2f} | {median([x['rss_mb'] for x in rs]):.0f} |"
            )

        def ratio(a, b, key):
            return median([key(r[a]) / key(r[b]) for r in rounds])

        wall, cpu, rss = (
            (lambda x: x["load_s"] + x["time_s"]),
            (lambda x: x["cpu_s"]),
            (lambda x: x["rss_mb"]),
        )
        lines = []
        for ours, theirs in (
            (("subtitler", "auto"), ("faster-whisper", "int8")),
            (("subtitler", "auto"), ("faster-whisper", "float32")),
            (("subtitler", "float32"), ("faster-whisper", "float32")),
            (("subtitler", "float32"), ("subtitler", "auto")),
        ):
            lines.append(
                f"- {ours[0]} {ours[1]} / {theirs[0]} {theirs[1]}: wall {ratio(ours, theirs, wall):.2f}, "
                f"CPU s {ratio(ours, theirs, cpu):.2f}, peak RSS {ratio(ours, theirs, rss):.2f}"
            )
        print("\n" + "\n".join(lines), flush=True)
        results["cases"].append(
            {
                "clip": clip_name,
                "model": model,
                "rounds": [{f"{e} {c}": r for (e, c), r in rnd.items()} for rnd in rounds],
                "ratios": lines,
            }
        )
    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
