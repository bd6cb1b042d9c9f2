"""Many files at once: in this process, in N worker processes, or on a Ray cluster.

Every file goes through the one pipeline (``pipeline.transcribe_media``) in a worker
that loaded the model once; the driver writes each output atomically as it comes
back, so an interruption keeps every file already written. One bad file never stops
the rest: it is reported and counted. A worker that dies (killed, out of memory) is
replaced and its file tried once more.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Optional

from subtitler import pipeline
from subtitler.core import formats
from subtitler.core.formats.plain import document_from_dict, document_to_dict
from subtitler.errors import SubtitlerError
from subtitler.pipeline import Settings


@dataclass
class Job:
    input: str
    output: Path
    seconds: float = 0.0  # media length, for progress
    attempts: int = 0
    cues: Optional[int] = None  # how many subtitles were written, once they were
    audio_tracks: int = 1  # the file's audio streams (one is transcribed: ``Settings.audio_track``)
    warnings: list[str] = field(default_factory=list)  # the engine's, about this file


@dataclass
class Report:
    written: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.written)} written, {len(self.skipped)} skipped, {len(self.failed)} failed"


def plan(
    inputs: list[str],
    out_dir: Optional[str],
    fmt: str,
    keep_extension: bool = False,
    skip_existing: bool = False,
) -> tuple[list[Job], list[Job]]:
    """The jobs to run and the ones skipped as up to date. Two inputs that would write
    the same output are an error before anything runs."""
    jobs, seen = [], {}
    for inp in inputs:
        p = Path(inp)
        name = (p.name if keep_extension else p.stem) + "." + fmt
        out = (Path(out_dir) if out_dir else p.parent) / name
        key = os.path.abspath(out)
        if key in seen:
            raise SubtitlerError(
                f"{seen[key]} and {inp} would both be written to {out}: "
                "give --keep-extension-in-name, or rename one."
            )
        seen[key] = inp
        jobs.append(Job(inp, out))
    if not skip_existing:
        return jobs, []
    todo, skipped = [], []
    for j in jobs:
        fresh = (
            j.output.exists()
            and Path(j.input).exists()
            and j.output.stat().st_mtime >= Path(j.input).stat().st_mtime
        )
        (skipped if fresh else todo).append(j)
    return todo, skipped


def measure(jobs: list[Job]) -> None:
    """Each job's media length (for the progress bar; 0 where it can't be probed) and
    audio streams."""
    from subtitler.engine.audio import probe

    for j in jobs:
        try:
            info = probe(j.input)
            j.seconds, j.audio_tracks = info.duration, max(1, len(info.audio_tracks))
        except SubtitlerError:
            j.seconds = 0.0


def transcribe_file(path: str, settings: Settings, model, progress=None, audio=None) -> dict:
    """One file through the pipeline: the document, as plain data (it crosses processes),
    with the engine's warnings about it under ``"warnings"``."""
    with pipeline.WarningsKept() as warnings:
        data = document_to_dict(
            pipeline.transcribe_media(path, settings, model=model, progress=progress, audio=audio)
        )
    return {**data, "warnings": warnings.messages}


def _write(job: Job, data: dict, fmt: str, report: Report) -> None:
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        formats.save(document_from_dict(data), job.output, fmt)
        job.cues = len(data["segments"])
        job.warnings = data.get("warnings", [])
        report.written.append(job)
    except SubtitlerError as e:
        report.failed.append((job, str(e)))


# ----------------------------------------------------------------------------- in this process


def run_here(
    jobs: list[Job],
    settings: Settings,
    fmt: str,
    report: Report,
    done: Callable,
    file_progress: Optional[Callable[[Job], Callable]] = None,
) -> None:
    """One file after another in this process (``file_progress(job)`` gives a callback
    for the progress within a file)."""
    if not jobs:
        return
    # The first file's audio is read while the model loads.
    model, first_audio = pipeline.load_model_reading(pipeline.model_name(settings), jobs[0].input, settings)
    for k, job in enumerate(jobs):
        try:
            audio = first_audio() if k == 0 else None
            _write(
                job,
                transcribe_file(job.input, settings, model, file_progress and file_progress(job), audio),
                fmt,
                report,
            )
        except SubtitlerError as e:
            report.failed.append((job, str(e)))
        done(job)


# ----------------------------------------------------------------------------- worker processes


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _worker(conn, settings: Settings, threads: int) -> None:
    """A worker process: load the model once, then transcribe what the driver sends."""
    os.environ["SUBTITLER_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    from subtitler.engine import runtime

    runtime.prepare()  # a new process: the fast BLAS before MLX
    model = pipeline.load_model(pipeline.model_name(settings), compute_type=settings.compute())
    conn.send(("ready", os.getpid()))
    while True:
        path = conn.recv()
        if path is None:
            return
        try:
            conn.send(("ok", transcribe_file(path, settings, model)))
        except SubtitlerError as e:
            conn.send(("error", str(e)))


def run_processes(
    jobs: list[Job],
    settings: Settings,
    fmt: str,
    workers: int,
    report: Report,
    done: Callable,
    on_start: Optional[Callable[[Job, int], None]] = None,
) -> None:
    """``workers`` processes, each with its model, share the jobs; a worker that dies is
    replaced and its job tried once more."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    threads = threads_per_worker(workers)
    queue = list(jobs)
    running: dict = {}  # connection -> (process, job or None, pid)

    def start():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, settings, threads), daemon=True)
        proc.start()
        child.close()
        running[parent] = [proc, None, None]

    def give(conn):
        proc, _, pid = running[conn]
        if not queue:
            conn.send(None)
            proc.join()
            del running[conn]
            return
        job = queue.pop(0)
        job.attempts += 1
        running[conn][1] = job
        conn.send(job.input)
        if on_start is not None:
            on_start(job, pid)

    for _ in range(min(workers, len(queue))):
        start()
    try:
        while running:
            sentinels = {running[c][0].sentinel: c for c in running}
            for ready in wait(list(running) + list(sentinels)):
                conn = sentinels.get(ready, ready)
                if conn not in running:
                    continue
                proc, job, _ = running[conn]
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):  # the worker died
                    del running[conn]
                    proc.join()
                    if job is not None and job.attempts < 2:
                        queue.insert(0, job)
                    elif job is not None:
                        report.failed.append(
                            (job, f"the worker transcribing it stopped (exit code {proc.exitcode})")
                        )
                        done(job)
                    if queue:
                        start()
                    continue
                if kind == "ready":
                    running[conn][2] = payload
                elif kind == "ok":
                    _write(job, payload, fmt, report)
                    done(job)
                else:
                    report.failed.append((job, payload))
                    done(job)
                give(conn)
    finally:
        for proc, _, _ in running.values():
            proc.kill()


# ----------------------------------------------------------------------------- Ray


RAY_INLINE_BYTES = 64 << 20  # inputs up to this size travel through Ray's object store


def run_ray(
    jobs: list[Job],
    settings: Settings,
    fmt: str,
    address: Optional[str],
    report: Report,
    done: Callable,
    num_cpus: Optional[int] = None,
) -> None:
    """One task per file on a Ray cluster (``address``: None starts a local one, "auto"
    joins this machine's, "ray://host:10001" a remote one), run by actors that each
    keep a model loaded. Small inputs are sent through the object store; larger ones
    must be at the same path on the workers (a shared folder)."""
    import ray

    from subtitler.engine.runtime import has_gpu_backend

    ray.init(
        address=address,
        num_cpus=num_cpus if address is None else None,
        ignore_reinit_error=True,
        log_to_driver=False,
        include_dashboard=False,
    )
    try:
        gpu = has_gpu_backend()
        cpus = int(ray.available_resources().get("CPU", 1))
        threads = 1 if gpu else min(2, cpus)
        actors = max(1, int(ray.available_resources().get("GPU", 0)) if gpu else cpus // threads)

        @ray.remote(
            num_cpus=0 if gpu else threads, num_gpus=1 if gpu else 0, max_restarts=1, max_task_retries=1
        )
        class Transcriber:
            def __init__(self):
                os.environ["SUBTITLER_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
                from subtitler import pipeline
                from subtitler.engine import runtime

                runtime.prepare()  # a new process: the fast BLAS before MLX
                self.model = pipeline.load_model(
                    pipeline.model_name(settings), compute_type=settings.compute()
                )

            def run(self, name: str, data):
                import tempfile

                if isinstance(data, bytes):  # sent through the object store
                    with tempfile.TemporaryDirectory() as d:
                        path = Path(d) / Path(name).name
                        path.write_bytes(data)
                        return _run_one(str(path), settings, self.model)
                return _run_one(name, settings, self.model)

        pool = [Transcriber.remote() for _ in range(min(actors, len(jobs)))]
        pending = {}
        queue = list(jobs)

        def submit(actor):
            job = queue.pop(0)
            size = Path(job.input).stat().st_size if Path(job.input).exists() else 0
            data = Path(job.input).read_bytes() if 0 < size <= RAY_INLINE_BYTES else None
            pending[actor.run.remote(job.input, data)] = (job, actor)

        for actor in pool:
            if queue:
                submit(actor)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job, actor = pending.pop(ready[0])
            try:
                kind, payload = ray.get(ready[0])
                if kind == "ok":
                    _write(job, payload, fmt, report)
                else:
                    report.failed.append((job, payload))
            except ray.exceptions.RayError as e:  # retried once already by Ray
                report.failed.append((job, f"the worker transcribing it stopped ({e.__class__.__name__})"))
            done(job)
            if queue:
                submit(actor)
    finally:
        if address is None:
            ray.shutdown()


def _run_one(path: str, settings: Settings, model) -> tuple[str, object]:
    try:
        return "ok", transcribe_file(path, settings, model)
    except SubtitlerError as e:
        return "error", str(e)


# ----------------------------------------------------------------------------- progress


class BatchReport:
    """One line over the whole batch after each file: files and seconds of media done,
    and an ETA (the engine's ``Progress`` over the batch's seconds)."""

    def __init__(self, jobs: list[Job], write: Callable[[str], None]):
        self.total_files, self.total_seconds = len(jobs), sum(j.seconds for j in jobs) or 0.0
        self.files = 0
        self.seconds = 0.0
        self.started = time.perf_counter()
        self.write = write

    def done(self, job: Job) -> None:
        self.files += 1
        self.seconds += job.seconds
        elapsed = time.perf_counter() - self.started
        progress = (  # by seconds of media, or by files where none could be probed
            pipeline.Progress(self.seconds, self.total_seconds, elapsed)
            if self.total_seconds
            else pipeline.Progress(self.files, max(1, self.total_files), elapsed)
        )
        eta = f", about {progress.eta:.0f} s left" if 0 < progress.fraction < 1 else ""
        self.write(
            f"[{self.files}/{self.total_files} files, {self.seconds:.0f}/{self.total_seconds:.0f} s of media"
            f"{eta}] {job.input}"
        )
