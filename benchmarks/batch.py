"""A batch of 8 clips three ways on this machine: one process (--jobs 1), two worker
processes (--jobs 2) and a local Ray runtime (--ray), each a fresh ``subtitler
transcribe`` run; wall time and the peak RSS of the largest process.

    python benchmarks/batch.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"


def run(args: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "subtitler", "transcribe", *args, "-q"],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    wall = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> int:
    work = Path(tempfile.mkdtemp())
    clips = []
    for i in range(8):  # jfk and ls_test, four copies each: 8 files, 71 s of speech
        src = DATA / ("jfk.flac" if i % 2 == 0 else "ls_test.flac")
        dst = work / f"clip{i}.flac"
        dst.write_bytes(src.read_bytes())
        clips.append(str(dst))
    print(f"# batch of {len(clips)} clips, {os.cpu_count()} cores\n")
    print("| how | wall s | peak RSS MB (largest process so far) |\n|---|---|---|")
    ways = [("--jobs 1", ["--jobs", "1"]), ("--jobs 2", ["--jobs", "2"])]
    try:
        import ray  # noqa: F401

        ways.append(("--ray (local runtime)", ["--ray"]))
    except ImportError:
        pass
    outputs = {}
    for name, extra in ways:
        out = work / name.split()[0].strip("-")
        wall, rss = run([*clips, "-o", str(out), *extra])
        outputs[name] = {p.name: p.read_text() for p in out.glob("*.srt")}
        print(f"| {name} | {wall:.1f} | {rss:.0f} |", flush=True)
    same = all(o == outputs["--jobs 1"] for o in outputs.values())
    print(f"\nidentical outputs across the ways: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
