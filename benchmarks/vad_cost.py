"""The speech detector's cost: its share of a transcription, beside faster-whisper's Silero.

    python benchmarks/vad_cost.py [--minutes 2.5] [--runs 5]

One process, each model loaded once and warmed up on the clip. Each run:

- transcribes the clip with default settings (``pipeline.transcribe_media``: word-timed
  cues), timing the speech detection where the pipeline runs it (``vad.speech_mask``,
  wrapped) and the whole transcription around it;
- then faster-whisper with ``vad_filter=True, word_timestamps=True``, timing its Silero
  (``faster_whisper.vad.get_speech_timestamps``, ONNX Runtime, wrapped where its
  transcription calls it) and the whole transcription around it.

The shares are detector / whole transcription, run by run; the medians are reported.
In the CLI our detector runs while the model loads and in the window when a file
opens, so a user does not wait for it; this measures its compute when it runs in line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def timed(module, name: str, spent: list):
    """Wrap ``module.name`` so that each call's seconds are appended to ``spent``."""
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t)

    setattr(module, name, wrapper)


def ours(clip: str, runs: int) -> list[tuple[float, float]]:
    """(detector s, transcription s) per run."""
    from subtitler import pipeline
    from subtitler.engine import vad

    settings = pipeline.Settings(model="tiny.en")
    model = pipeline.load_model("tiny.en")
    spent: list[float] = []
    timed(vad, "speech_mask", spent)
    pipeline.transcribe_media(clip, settings, model=model)  # warm-up
    out = []
    for _ in range(runs):
        spent.clear()
        t = time.perf_counter()
        pipeline.transcribe_media(clip, settings, model=model)
        out.append((sum(spent), time.perf_counter() - t))
    return out


def theirs(clip: str, runs: int) -> list[tuple[float, float]]:
    """faster-whisper's (Silero s, transcription s) per run, on the same weights."""
    import faster_whisper.transcribe as fw_transcribe
    from faster_whisper import WhisperModel

    from subtitler.engine.whisper.load import offline_model_dir

    model = WhisperModel(
        str(offline_model_dir("tiny.en")),
        device="cpu",
        compute_type="float32",
        cpu_threads=os.cpu_count() or 2,
    )
    spent: list[float] = []
    timed(fw_transcribe, "get_speech_timestamps", spent)  # the name its transcribe() calls

    def run():
        segments, _ = model.transcribe(clip, vad_filter=True, word_timestamps=True)
        return [s.text for s in segments]

    run()  # warm-up
    out = []
    for _ in range(runs):
        spent.clear()
        t = time.perf_counter()
        run()
        out.append((sum(spent), time.perf_counter() - t))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=2.5)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # one engine in a process of its own (each its own threads and memory)
        engine, clip = json.loads(args.child)
        print(json.dumps((ours if engine == "subtitler" else theirs)(clip, args.runs)))
        return 0

    import subprocess

    import clips

    work = Path(os.environ.get("BENCH_DIR", "/tmp/subtitler-bench"))
    long_mp4, _, _ = clips.make(work, args.minutes)
    print(
        f"# The speech detector's share of a transcription ({os.cpu_count()} cores, medians of {args.runs})\n"
    )
    print(
        "| clip | engine | detector ms (range) | transcription s (range) | share (range) |\n|---|---|---|---|---|"
    )
    for name, clip in (
        ("jfk 11 s", str(clips.DATA / "jfk.flac")),
        (f"long {args.minutes:g} min", str(long_mp4)),
    ):
        for engine in ("subtitler", "faster-whisper"):
            out = subprocess.run(
                [sys.executable, __file__, "--runs", str(args.runs), "--child", json.dumps([engine, clip])],
                capture_output=True,
                text=True,
            )
            if out.returncode:
                raise RuntimeError(out.stderr[-2000:])
            pairs = json.loads(out.stdout.strip().splitlines()[-1])
            vad_s = [v for v, _ in pairs]
            total = [t for _, t in pairs]
            share = [v / t for v, t in pairs]
            print(
                f"| {name} | {engine} | {statistics.median(vad_s) * 1e3:.0f} ({min(vad_s) * 1e3:.0f}-"
                f"{max(vad_s) * 1e3:.0f}) | {statistics.median(total):.2f} ({min(total):.2f}-{max(total):.2f}) | "
                f"**{statistics.median(share):.2%}** ({min(share):.2%}-{max(share):.2%}) |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
