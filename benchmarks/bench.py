"""Speed and memory: our engine against faster-whisper on the same weights, same run.

    python benchmarks/bench.py [--minutes 2.5] [--pairs 3] [--hour]

Two kinds of output are timed: raw Whisper segments (beam 1 and 5), and the
subtitle-grade output a user gets by default (our pipeline's word-timed cues;
faster-whisper with word_timestamps=True, vad_filter=True), the latter for the
whole job including the model load.

Each measurement runs in a fresh subprocess (so peak RSS is its own). Times are
transcription wall time after the model is loaded; load time is listed apart.
Ratios are ours / theirs (below 1.0 means we are faster). Each configuration runs
``--pairs`` times, in turn with the others (a slow spell of the machine hits them
all), and medians are reported: single runs here swing by 20%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def child(spec: dict) -> dict:
    """Runs inside the subprocess: load, transcribe, report."""
    from subtitler.engine.audio import probe

    clip, engine, beam = spec["clip"], spec["engine"], spec["beam"]
    name = spec.get("model", "tiny.en")
    cues = spec.get("mode") == "cues"
    duration = probe(clip).duration
    t0 = time.perf_counter()
    if engine == "subtitler":
        from subtitler import pipeline

        compute = {"int8": "int8", "float32": "float32"}.get(spec["compute"], "auto")
        settings = pipeline.Settings(model=name, beam_size=beam, segments=not cues, compute_type=compute)
        audio = None
        if cues:  # as the CLI does it: the audio read while the model loads (reported with the load)
            model, audio_of = pipeline.load_model_reading(name, clip, settings)
            audio = audio_of()
        else:  # the audio read after the load, inside the time without it, as faster-whisper's is
            model = pipeline.load_model(
                name, compute_type=compute
            )  # prepares the process first, as the CLI does
        t1 = time.perf_counter()
        text = " ".join(s.text for s in pipeline.transcribe_media(clip, settings, model=model, audio=audio))
    else:
        from faster_whisper import WhisperModel
        from real import peer_model_dir

        model = WhisperModel(
            str(peer_model_dir(name)),
            device="cpu",
            compute_type=spec["compute"],
            cpu_threads=os.cpu_count() or 2,
        )
        t1 = time.perf_counter()
        segs, _ = model.transcribe(clip, beam_size=beam, vad_filter=cues, word_timestamps=cues)
        text = "".join(s.text for s in segs)
    t2 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "load_s": t1 - t0,
        "time_s": t2 - t1,
        "cpu_s": usage.ru_utime + usage.ru_stime,  # the whole process's, its threads' included
        "duration_s": duration,
        "rss_mb": usage.ru_maxrss / 1024,
        "text": text,
    }


def measure(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def start(title: str, minutes: float) -> tuple[Path, str, dict]:
    """A benchmark's clips (the long one of ``minutes``, made once; jfk) and this machine's
    facts, printed under ``title``."""
    import clips

    work = Path(os.environ.get("BENCH_DIR", "/tmp/subtitler-bench"))
    long_mp4, _, _ = clips.make(work, minutes)
    info = machine()
    print(f"{title}\n")
    for k, v in info.items():
        print(f"- {k}: {v}")
    return long_mp4, str(clips.DATA / "jfk.flac"), info


def machine() -> dict:
    from subtitler.engine import runtime

    runtime.prepare()  # before anything imports mlx, as the engine does
    import ctranslate2
    import faster_whisper
    import mlx.core as mx

    import subtitler
    from subtitler.engine.kernels import blas as _blas

    cpu = (
        next(
            (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    return {
        "machine": f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "mlx": mx.__version__,
        "subtitler": subtitler.__version__,
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
        **_blas.describe(),
        "threads": os.cpu_count(),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--minutes", type=float, default=2.5)
    ap.add_argument("--hour", action="store_true", help="also peak RSS of our engine on a 1-hour file")
    ap.add_argument(
        "--hours", type=float, nargs="*", default=[1.0], help="with --hour: the lengths in hours (e.g. 1 3)"
    )
    ap.add_argument(
        "--pairs", type=int, default=3, help="runs of each configuration, in turn (medians reported)"
    )
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    import clips

    work = Path(os.environ.get("BENCH_DIR", "/tmp/subtitler-bench"))
    long_mp4, jfk, info = start("# subtitler benchmark", args.minutes)
    runs = [
        ("subtitler", "float32", 1),
        ("faster-whisper", "float32", 1),
        ("faster-whisper", "int8", 1),
        ("subtitler", "float32", 5),
        ("faster-whisper", "float32", 5),
    ]
    results = {"info": info, "rows": []}
    for name, clip in (("jfk 11 s", jfk), (f"long {args.minutes:g} min", str(long_mp4))):
        print(
            f"\n## {name}\n\n| engine | compute | beam | time s (median of {args.pairs}) | RTF | load s "
            f"| peak RSS MB |\n|---|---|---|---|---|---|---|"
        )
        got = {}
        tries = {run: [] for run in runs}
        for _ in range(args.pairs):  # the configurations in turn, so a slow spell hits them all
            for engine, compute, beam in runs:
                tries[(engine, compute, beam)].append(
                    measure({"clip": clip, "engine": engine, "compute": compute, "beam": beam})
                )
        for (engine, compute, beam), rs in tries.items():
            r = sorted(rs, key=lambda x: x["time_s"])[len(rs) // 2]
            got[(engine, compute, beam)] = r
            results["rows"].append(
                {
                    "clip": name,
                    "engine": engine,
                    "compute": compute,
                    "beam": beam,
                    **r,
                    "times_s": [x["time_s"] for x in rs],
                }
            )
            print(
                f"| {engine} | {compute} | {beam} | {r['time_s']:.2f} | {r['time_s'] / r['duration_s']:.3f} "
                f"| {r['load_s']:.2f} | {r['rss_mb']:.0f} |",
                flush=True,
            )
        ours1, ours5 = got[("subtitler", "float32", 1)]["time_s"], got[("subtitler", "float32", 5)]["time_s"]
        print(
            f"\nratios (ours / theirs): greedy vs fw float32 {ours1 / got[('faster-whisper', 'float32', 1)]['time_s']:.2f}, "
            f"greedy vs fw int8 {ours1 / got[('faster-whisper', 'int8', 1)]['time_s']:.2f}, "
            f"beam 5 vs fw float32 beam 5 {ours5 / got[('faster-whisper', 'float32', 5)]['time_s']:.2f}"
        )
        # Subtitle-grade output, whole job with the model load: what a user waits for.
        # Paired runs (ours, then theirs), the median of the pairs' ratios.
        ratios = []
        for _ in range(args.pairs):
            grade = {}
            for engine in ("subtitler", "faster-whisper"):
                r = measure({"clip": clip, "engine": engine, "compute": "float32", "beam": 1, "mode": "cues"})
                grade[engine] = r["load_s"] + r["time_s"]
                results["rows"].append(
                    {
                        "clip": name,
                        "engine": engine,
                        "compute": "float32",
                        "beam": 1,
                        "mode": "subtitle-grade",
                        **r,
                    }
                )
                print(
                    f"subtitle-grade {engine}: {r['load_s']:.2f} s load + {r['time_s']:.2f} s "
                    f"(peak RSS {r['rss_mb']:.0f} MB)",
                    flush=True,
                )
            ratios.append(grade["subtitler"] / grade["faster-whisper"])
        print(
            f"ratio subtitle-grade (ours / fw float32 word_timestamps+vad_filter, with load): "
            f"{sorted(ratios)[len(ratios) // 2]:.2f} (median of pairs: {', '.join(f'{x:.2f}' for x in ratios)})"
        )
    for hours in args.hours if args.hour else []:
        # Joined from copies of the long clip by ffmpeg's concat demuxer (no re-encoding), as
        # files joined end to end are: the result decodes seconds past its header.
        parts = int(hours * 3600 // args.minutes // 60)
        long_file = work / f"joined-{parts}.mp4"
        if not long_file.exists():
            listing = work / f"parts-{parts}.txt"
            listing.write_text("".join(f"file '{long_mp4}'\n" for _ in range(parts)))
            cmd = [
                clips.ffmpeg_exe(),
                "-y",
                "-loglevel",
                "error",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(listing),
            ]
            subprocess.run([*cmd, "-c", "copy", str(long_file)], check=True)
        r = measure(
            {"clip": str(long_file), "engine": "subtitler", "compute": "auto", "beam": 1, "mode": "cues"}
        )
        results[f"hours {hours:g}"] = r
        print(
            f"\n{hours:g}-hour file ({parts} parts joined), default settings (cues): {r['time_s']:.0f} s, "
            f"peak RSS {r['rss_mb']:.0f} MB"
        )
    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
