"""The temperature-fallback path, ours against faster-whisper in the same run.

    python benchmarks/fallback.py [--runs 3]

ls_test.flac played backwards sounds like speech but decodes to nothing sensible, so
both engines climb the whole temperature ladder (0.0 ... 1.0, best of 5 when sampling)
on it. Both run without a VAD (ours: ``vad_guards=False``), greedy, tiny.en, 2 threads;
the model loads are outside the times.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import quality  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from subtitler import pipeline

    model = pipeline.load_model("tiny.en")  # first: it prepares the process (the fast BLAS) before MLX loads
    from faster_whisper import WhisperModel

    from subtitler.engine.audio import load_audio
    from subtitler.engine.transcribe import transcribe
    from subtitler.engine.types import TranscribeOptions
    from subtitler.engine.whisper.load import offline_model_dir

    backwards = load_audio(str(HERE.parent / "tests" / "data" / "ls_test.flac"))[::-1].copy()
    wav = quality.write_wav(backwards, Path("/tmp/subtitler-bench/ls_backwards.wav"))
    fw = WhisperModel(str(offline_model_dir("tiny.en")), device="cpu", compute_type="float32", cpu_threads=2)
    print(
        "| run | ours s (temperatures) | faster-whisper s (temperatures) | ours / theirs |\n|---|---|---|---|"
    )
    for run in range(1, args.runs + 1):
        t = time.perf_counter()
        ours = list(transcribe(model, str(wav), TranscribeOptions(vad_guards=False)))
        a = time.perf_counter() - t
        t = time.perf_counter()
        theirs = list(fw.transcribe(str(wav), beam_size=1)[0])
        b = time.perf_counter() - t
        print(
            f"| {run} | {a:.2f} ({[s.temperature for s in ours]}) | {b:.2f} ({[s.temperature for s in theirs]}) "
            f"| {a / b:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
