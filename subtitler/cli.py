"""The ``subtitler`` command: transcribe media to subtitle files, convert and check them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from subtitler import __version__
from subtitler.errors import SubtitlerError


def _progress_bar(name: str):
    last = [-1]

    def show(p):
        pct = int(p.fraction * 100)
        if pct == last[0] or not sys.stderr:
            return
        last[0] = pct
        eta = f" ETA {p.eta:4.0f}s" if p.eta is not None and p.fraction < 1 else ""
        bar = "#" * (pct // 4)
        sys.stderr.write(f"\r{name[:30]:30s} [{bar:25s}] {pct:3d}%{eta}   ")
        sys.stderr.flush()

    return show


def settings_from(args) -> "Settings":
    from subtitler.pipeline import Settings

    return Settings(model=args.model, language=args.language, task=args.task, beam_size=args.beam_size,
                    temperature=args.temperature, profile=args.profile, segments=args.segments,
                    word_timestamps=args.word_timestamps or args.format == "json",
                    prompt=args.prompt, seed=args.seed)


def cmd_transcribe(args) -> int:
    from subtitler.core import formats
    from subtitler import pipeline

    out_is_file = args.output and not Path(args.output).is_dir() and Path(args.output).suffix
    fmt = args.format or (formats.format_of(args.output) if out_is_file else "srt")
    if args.output and len(args.inputs) > 1 and not Path(args.output).is_dir():
        print("error: -o must be a folder when there are several inputs.", file=sys.stderr)
        return 2
    settings = settings_from(args)
    try:
        model = pipeline.load_model(pipeline.model_name(settings))
    except SubtitlerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    failed = 0
    for inp in args.inputs:
        out = Path(args.output) if args.output else Path(inp).with_suffix("." + fmt)
        if out.is_dir():
            out = out / (Path(inp).stem + "." + fmt)
        try:
            bar = _progress_bar(Path(inp).name) if not args.quiet else None
            doc = pipeline.transcribe_media(inp, settings, model=model, progress=bar)
            if bar:
                sys.stderr.write("\n")
            formats.save(doc, out, fmt)
            if not args.quiet:
                print(f"{inp} -> {out} ({len(doc)} subtitles, language {doc.language})", file=sys.stderr)
        except SubtitlerError as e:
            if not args.quiet:
                sys.stderr.write("\n")
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_doctor(args) -> int:
    """What this machine runs the engine with, so a slow one explains itself."""
    import platform

    from subtitler.engine import runtime

    runtime.prepare()
    from subtitler.engine.cpu import blas

    report = {"subtitler": __version__, "python": platform.python_version(),
              "machine": f"{platform.system()} {platform.machine()}"}
    report.update(blas.describe())
    import mlx.core as mx

    from subtitler.engine.cpu import native
    from subtitler.engine.audio import ffmpeg_exe

    report["mlx"] = f"{mx.__version__} on {mx.default_device()}"
    report["cpu kernels"] = "C kernels" if native.available() else "MLX only (not built, or SUBTITLER_CPU_KERNELS=0)"
    try:
        report["ffmpeg"] = ffmpeg_exe()
    except SubtitlerError as e:
        report["ffmpeg"] = str(e)
    from subtitler.engine.whisper.load import default_model, offline_models

    report["default model"] = default_model()
    report["offline models"] = ", ".join(offline_models()) or "none"
    width = max(map(len, report))
    for k, v in report.items():
        print(f"{k:>{width}}: {v}")
    return 0


def cmd_convert(args) -> int:
    from subtitler.core import formats

    if args.list_formats:
        print(formats.list_formats())
        return 0
    if not args.input or not args.output:
        print("error: convert needs IN and OUT (or --list-formats).", file=sys.stderr)
        return 2
    try:
        doc = formats.load(args.input, encoding=args.encoding)
        formats.save(doc, args.output, bom=args.bom)
    except SubtitlerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_check(args) -> int:
    from subtitler.core import formats
    from subtitler.core.checks import check, format_finding

    try:
        doc = formats.load(args.file, encoding=args.encoding)
        findings = check(doc.segments, args.profile)
    except (SubtitlerError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for f in findings:
        print(format_finding(f, doc.segments))
    return 1 if findings else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="subtitler", description="Video in, well-timed subtitles out (Whisper on MLX).")
    p.add_argument("--version", action="version", version=f"subtitler {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="transcribe media files to subtitles")
    t.add_argument("inputs", nargs="+", metavar="INPUT")
    t.add_argument("-o", "--output", help="output file (or folder, for several inputs)")
    t.add_argument("--format", choices=["srt", "vtt", "ass", "ssa", "txt", "json"])
    t.add_argument("--model", help="model name, Hugging Face repo id or folder (default: bundled tiny.en)")
    t.add_argument("--language", default=None, help="language code, or auto (default)")
    t.add_argument("--task", choices=["transcribe", "translate"], default="transcribe")
    t.add_argument("--beam-size", type=int, default=1)
    t.add_argument("--temperature", type=float, default=None, help="fixed temperature (default: 0 with fallback)")
    t.add_argument("--profile", choices=["default", "netflix"], default="default",
                   help="the reading profile cues are made for (default: default)")
    t.add_argument("--segments", action="store_true",
                   help="write Whisper's raw segments instead of word-timed, speech-aware cues")
    t.add_argument("--word-timestamps", action="store_true",
                   help="with --segments: keep word timings too (always on for cues and JSON)")
    t.add_argument("--prompt", help="initial prompt: names, spelling, style")
    t.add_argument("--seed", type=int, default=0, help="seed for the sampling fallback (default 0): same input, same output")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_transcribe)

    c = sub.add_parser("convert", help="convert between SRT, VTT, ASS/SSA, TXT and JSON by extension")
    c.add_argument("input", nargs="?")
    c.add_argument("output", nargs="?")
    c.add_argument("--encoding", help="the input's text encoding (default: detected)")
    c.add_argument("--bom", action="store_true", help="write a UTF-8 byte-order mark (for old players)")
    c.add_argument("--list-formats", action="store_true", help="list the formats we read and write")
    c.set_defaults(func=cmd_convert)

    k = sub.add_parser("check", help="list readability problems; exit 1 if any")
    k.add_argument("file")
    k.add_argument("--profile", choices=["default", "netflix"], default="default")
    k.add_argument("--encoding", help="the file's text encoding (default: detected)")
    k.set_defaults(func=cmd_check)

    d = sub.add_parser("doctor", help="say which BLAS, CPU path, ffmpeg and models this machine uses")
    d.set_defaults(func=cmd_doctor)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("transcribe", "doctor"):
        from subtitler.engine import runtime

        runtime.prepare()  # before anything imports MLX
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
