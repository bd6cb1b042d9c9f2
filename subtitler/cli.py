"""The ``subtitler`` command: transcribe media to subtitle files, convert and check them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import SubtitlerError


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


def cmd_transcribe(args) -> int:
    from .cues import build_cues
    from .document import Document
    from . import formats
    from .timecode import seconds_to_ms

    out_is_file = args.output and not Path(args.output).is_dir() and Path(args.output).suffix
    fmt = args.format or (formats.format_of(args.output) if out_is_file else "srt")
    if args.output and len(args.inputs) > 1 and not Path(args.output).is_dir():
        print("error: -o must be a folder when there are several inputs.", file=sys.stderr)
        return 2
    try:
        from .whisper import load_model
        from .whisper.load import default_model

        model_name = args.model or default_model()
        model = load_model(model_name)
    except SubtitlerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    from .transcribe import TranscribeOptions, TranscriptInfo, transcribe

    temps = (args.temperature,) if args.temperature is not None else TranscribeOptions.temperature
    options = TranscribeOptions(
        language=None if args.language in (None, "auto") else args.language, task=args.task,
        beam_size=args.beam_size, temperature=temps, word_timestamps=args.word_timestamps or args.profile is not None
        or fmt == "json", initial_prompt=args.prompt,
    )
    failed = 0
    for inp in args.inputs:
        out = Path(args.output) if args.output else Path(inp).with_suffix("." + fmt)
        if out.is_dir():
            out = out / (Path(inp).stem + "." + fmt)
        info = TranscriptInfo()
        try:
            decoded = []
            bar = _progress_bar(Path(inp).name) if not args.quiet else None
            for seg in transcribe(model, inp, options, progress=bar, info=info):
                decoded.append(seg)
            if bar:
                sys.stderr.write("\n")
            duration = seconds_to_ms(info.duration)
            cues = build_cues(decoded, args.profile, duration)
            doc = Document(cues, str(inp), model_name, info.language, duration)
            formats.save(doc, out, fmt)
            if not args.quiet:
                print(f"{inp} -> {out} ({len(cues)} subtitles, language {info.language})", file=sys.stderr)
        except SubtitlerError as e:
            if not args.quiet:
                sys.stderr.write("\n")
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_convert(args) -> int:
    from . import formats

    try:
        doc = formats.load(args.input)
        formats.save(doc, args.output)
    except SubtitlerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_check(args) -> int:
    from . import formats
    from .checks import check, format_finding

    try:
        doc = formats.load(args.file)
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
    t.add_argument("--format", choices=["srt", "vtt", "txt", "json"])
    t.add_argument("--model", help="model name, Hugging Face repo id or folder (default: bundled tiny.en)")
    t.add_argument("--language", default=None, help="language code, or auto (default)")
    t.add_argument("--task", choices=["transcribe", "translate"], default="transcribe")
    t.add_argument("--beam-size", type=int, default=1)
    t.add_argument("--temperature", type=float, default=None, help="fixed temperature (default: 0 with fallback)")
    t.add_argument("--word-timestamps", action="store_true", help="word timings (always on for JSON)")
    t.add_argument("--profile", choices=["default", "netflix"], default=None,
                   help="regroup cues for a reading profile (uses word timings)")
    t.add_argument("--prompt", help="initial prompt: names, spelling, style")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_transcribe)

    c = sub.add_parser("convert", help="convert between SRT, VTT, TXT and JSON by extension")
    c.add_argument("input")
    c.add_argument("output")
    c.set_defaults(func=cmd_convert)

    k = sub.add_parser("check", help="list readability problems; exit 1 if any")
    k.add_argument("file")
    k.add_argument("--profile", choices=["default", "netflix"], default="default")
    k.set_defaults(func=cmd_check)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
