"""The ``subtitler`` command: transcribe media to subtitle files, convert and check them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from subtitler import __version__
from subtitler.core.formats import FORMATS
from subtitler.core.profiles import PROFILES
from subtitler.engine.backends import COMPUTE_TYPES
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


def _track(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: audio tracks are numbered from 1")
    return int(text)


def settings_from(args):
    from subtitler.pipeline import Settings

    return Settings(
        model=args.model,
        language=args.language,
        task=args.task,
        beam_size=args.beam_size,
        temperature=args.temperature,
        profile=args.profile,
        segments=args.segments,
        word_timestamps=args.word_timestamps or args.format == "json",
        prompt=args.prompt,
        seed=args.seed,
        compute_type=args.compute_type,
        audio_track=args.audio_track - 1,
    )


def cmd_transcribe(args) -> int:
    from subtitler import batch
    from subtitler.core import formats
    from subtitler.engine.whisper.languages import language_code

    out_is_file = args.output and not Path(args.output).is_dir() and Path(args.output).suffix
    try:  # what would fail after the transcription, said before it
        fmt = args.format or (formats.format_of(args.output) if out_is_file else "srt")
        if args.language not in (None, "auto"):
            language_code(args.language)
    except (SubtitlerError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if out_is_file and len(args.inputs) > 1:
        print("error: -o must be a folder when there are several inputs.", file=sys.stderr)
        return 2
    if args.ray is not None:
        try:
            import ray  # noqa: F401  (is it installed?)
        except ImportError:
            print('error: --ray needs Ray: pip install "subtitler[cluster]"', file=sys.stderr)
            return 2
    try:
        if out_is_file:
            jobs, skipped = [batch.Job(args.inputs[0], Path(args.output))], []
        else:
            jobs, skipped = batch.plan(
                args.inputs, args.output, fmt, args.keep_extension_in_name, args.skip_existing
            )
    except SubtitlerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = batch.Report(skipped=skipped)
    for job in skipped:
        print(f"skipped (up to date): {job.input} -> {job.output}", file=sys.stderr)
    batch.measure(jobs)
    progress = batch.BatchReport(jobs, lambda line: print(line, file=sys.stderr))

    in_process = args.ray is None and not (args.jobs > 1 and len(jobs) > 1)

    def done(job) -> None:
        if in_process and not args.quiet:
            sys.stderr.write("\n")  # after the file's own progress bar
        failed = next((msg for j, msg in report.failed if j is job), None)
        for warning in job.warnings:
            print(f"warning: {job.input}: {warning}", file=sys.stderr)
        if failed is not None:
            print(f"error: {failed}", file=sys.stderr)
        elif not args.quiet:
            progress.done(job)
            empty = ""
            if job.cues == 0:
                empty = (
                    f" (no speech found in audio track {args.audio_track} of {job.audio_tracks}:"
                    " no subtitles; --audio-track N reads another)"
                    if job.audio_tracks > 1
                    else " (no speech found: no subtitles)"
                )
            print(f"{job.input} -> {job.output}{empty}", file=sys.stderr)

    settings = settings_from(args)
    try:
        if args.ray is not None:
            batch.run_ray(jobs, settings, fmt, args.ray or None, report, done)
        elif args.jobs > 1 and len(jobs) > 1:
            batch.run_processes(jobs, settings, fmt, args.jobs, report, done)
        else:
            bar = None if args.quiet else (lambda job: _progress_bar(Path(job.input).name))
            batch.run_here(jobs, settings, fmt, report, done, bar)
    except SubtitlerError as e:  # the model could not be loaded
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: {report.summary()}; the files written are kept.", file=sys.stderr)
        return 130
    if len(jobs) + len(skipped) > 1:
        print(report.summary(), file=sys.stderr)
    return 1 if report.failed else 0


def cmd_doctor(args) -> int:
    """What this machine runs the engine with, so a slow one explains itself."""
    from subtitler.pipeline import machine_report

    report = machine_report()
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
        findings = check(doc.cues, args.profile)
    except (SubtitlerError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for f in findings:
        print(format_finding(f, doc.cues))
    return 1 if findings else 0


def cmd_video(args) -> int:
    """``mux`` and ``burn``: subtitles into a video (``subtitler.video``)."""
    from subtitler import video

    bar = _progress_bar(Path(args.output).name)
    common = dict(overwrite=args.overwrite, progress=lambda p: bar(p) if sys.stderr.isatty() else None)
    try:
        if args.command == "mux":
            video.mux(args.video, args.subtitles, args.output, language=args.language, **common)
        else:
            style = video.BurnStyle(font_size=args.font_size, outline=args.outline, bottom_margin=args.margin)
            video.burn(args.video, args.subtitles, args.output, style=style, **common)
    except SubtitlerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="subtitler", description="Video in, well-timed subtitles out (Whisper on MLX)."
    )
    p.add_argument("--version", action="version", version=f"subtitler {__version__}")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="say what the engine falls back on (temperature retries, loops dropped, the quiet-speech gain)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="transcribe media files to subtitles")
    t.add_argument("inputs", nargs="+", metavar="INPUT")
    t.add_argument("-o", "--output", help="output file (or folder, for several inputs)")
    t.add_argument("--format", choices=list(FORMATS))
    t.add_argument("--model", help="model name, Hugging Face repo id or folder (default: bundled tiny.en)")
    t.add_argument("--language", default=None, help="language code, or auto (default)")
    t.add_argument("--task", choices=["transcribe", "translate"], default="transcribe")
    t.add_argument("--beam-size", type=int, default=1)
    t.add_argument(
        "--temperature", type=float, default=None, help="fixed temperature (default: 0 with fallback)"
    )
    t.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="default",
        help="the reading profile cues are made for (default: default)",
    )
    t.add_argument(
        "--segments",
        action="store_true",
        help="write Whisper's raw segments instead of word-timed, speech-aware cues",
    )
    t.add_argument(
        "--word-timestamps",
        action="store_true",
        help="with --segments: keep word timings too (always on for cues and JSON)",
    )
    t.add_argument("--prompt", help="initial prompt: names, spelling, style")
    t.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for the sampling fallback (default 0): same input, same output",
    )
    t.add_argument(
        "--compute-type",
        choices=COMPUTE_TYPES,
        default="auto",
        help="weights the CPU's C kernels read: int8 (auto's choice where they run; "
        "`subtitler doctor` says) or float32",
    )
    t.add_argument(
        "--audio-track",
        type=_track,
        default=1,
        metavar="N",
        help="the audio track to transcribe, from 1 (default 1): a dub, a commentary, a second microphone",
    )
    t.add_argument("--jobs", type=int, default=1, metavar="N", help="N worker processes, each with its model")
    t.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: a local runtime, or 'auto', or ray://host:10001 (pip install subtitler[cluster])",
    )
    t.add_argument(
        "--skip-existing", action="store_true", help="skip inputs whose output is newer than the input"
    )
    t.add_argument(
        "--keep-extension-in-name",
        action="store_true",
        help="name outputs a.mp4.srt, so a.mp4 and a.mkv don't collide",
    )
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
    k.add_argument("--profile", choices=list(PROFILES), default="default")
    k.add_argument("--encoding", help="the file's text encoding (default: detected)")
    k.set_defaults(func=cmd_check)

    m = sub.add_parser("mux", help="add subtitles to a video as a soft track (no re-encoding)")
    m.add_argument("video")
    m.add_argument("subtitles", help="any subtitle file we read (.srt .vtt .ass .ssa .txt .json)")
    m.add_argument("-o", "--output", required=True, help="OUT.mkv (SRT or ASS track) or OUT.mp4 (mov_text)")
    m.add_argument("--language", help="the track's language (en, fr, eng ...)")
    m.add_argument("--overwrite", action="store_true", help="replace an existing output")
    m.set_defaults(func=cmd_video)

    b = sub.add_parser("burn", help="draw subtitles into a video's picture (libass, x264)")
    b.add_argument("video")
    b.add_argument("subtitles", help="any subtitle file we read; an .ass file keeps its own styles")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--font-size", type=float, default=0.05, help="of the picture's height (default 0.05)")
    b.add_argument("--outline", type=float, default=2.0, help="outline width (default 2)")
    b.add_argument("--margin", type=float, default=0.06, help="bottom margin, of the picture's height")
    b.add_argument("--overwrite", action="store_true", help="replace an existing output")
    b.set_defaults(func=cmd_video)

    d = sub.add_parser("doctor", help="say which BLAS, CPU path, ffmpeg and models this machine uses")
    d.set_defaults(func=cmd_doctor)
    return p


def _log_to_stderr(verbose: bool) -> None:
    """The package logger's warnings go to stderr as ``warning: ...`` lines; with -v, its
    INFO lines too (the engine's fallbacks)."""
    import logging

    logger = logging.getLogger("subtitler")
    for old in [h for h in logger.handlers if getattr(h, "subtitler_cli", False)]:
        logger.removeHandler(old)  # a run in the same process before this one
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.subtitler_cli = True
    handler.addFilter(lambda record: not getattr(record, "kept", False))  # printed with the file's name
    handler.setFormatter(
        logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "warning: %(message)s")
    )
    logger.addHandler(handler)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr(args.verbose)
    if args.command in ("transcribe", "doctor"):
        from subtitler.engine import runtime

        runtime.prepare()  # before anything imports MLX
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
