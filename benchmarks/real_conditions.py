"""The real voices through the conditions recordings come in, ours beside faster-whisper.

    python benchmarks/real_conditions.py [--only NAME ...] [--shifts N]

``real.py``'s hard cases rebuild the failures seen on held-back film, phone and broadcast
files; these put the same real voices (``../shared/realspeech/``, with their references)
through what else a recording does to speech, so that a change tuned to the files we
have shows here first:

- ``phone_*``: a telephone line (300-3400 Hz, 8 kHz mu-law, and back);
- ``reverb_*``: a far microphone in a reverberant room (an RT60 of 0.5-0.7 s, 30 dB
  quieter) over room tone, English and four other languages (base);
- ``long_gaps_en``: 12 s of room tone between sentences, after 6 s of it;
- ``music_bed_en``: music under the speech throughout, 10 dB down;
- ``clipped_en``: 25 dB too loud, clipped;
- ``quiet_*``: ``real.py``'s quiet first line with other voices: each of three real voices
  20, 26 or 32 dB under the two readers after it, over room tone or a music bed.

One row per engine (our default pipeline, faster-whisper float32 greedy, plain and with
its VAD, on the same weights), with ``real.py``'s columns; the totals sum the word errors.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_cases import SR, Case, Layout, level, ref_text, room_tone, voice  # noqa: E402

from subtitler.engine.audio import ffmpeg_exe, load_audio  # noqa: E402

ENGLISH = ["read_en", "audiobook_en", "audiobook2_en"]


def telephone(x: np.ndarray) -> np.ndarray:
    """``x`` as a phone line carries it: band-limited, 8 kHz mu-law, then 16 kHz again."""
    with tempfile.TemporaryDirectory() as d:
        src, line = Path(d, "in.wav"), Path(d, "line.wav")
        with wave.open(str(src), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SR)
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
        run = [ffmpeg_exe(), "-y", "-loglevel", "error", "-i"]
        subprocess.run(
            [
                *run,
                str(src),
                "-af",
                "highpass=f=300,lowpass=f=3400",
                "-ar",
                "8000",
                "-acodec",
                "pcm_mulaw",
                str(line),
            ],
            check=True,
        )
        return load_audio(str(line))


def room_response(rt60: float, seed: int) -> np.ndarray:
    """A reverberant room's impulse response: a direct path, then noise decaying 60 dB in ``rt60``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rt60 * SR)) / SR
    h = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    h[0] = 4.0
    return (h / np.sqrt((h**2).sum())).astype(np.float32)


def reverberant(x: np.ndarray, rt60: float, seed: int) -> np.ndarray:
    return np.convolve(x, room_response(rt60, seed), mode="full")[: len(x)].astype(np.float32)


def read_aloud(names: list[str], gap: float, start: float = 1.0, bed_dbfs: float = -58.0):
    """The voices one after another, ``gap`` s apart, at -20 dBFS over room tone: samples, spans."""
    lay = Layout(start=start)
    for n in names:
        lay.put(level(voice(n), -20), gap_after=gap)
    return lay.mix(room_tone(lay.t / SR + 1.0, dbfs=bed_dbfs)), lay.spans


def all_conditions() -> list[Case]:
    from vad_clips import music

    ref = " ".join(ref_text(n) for n in ENGLISH)
    x, spans = read_aloud(ENGLISH, 0.6)
    apart, apart_spans = read_aloud(ENGLISH, 12.0, start=6.0, bed_dbfs=-50)
    cases = [
        Case("phone_en", "en", telephone(x), ref, spans),
        Case(
            "reverb_far_en",
            "en",
            (level(reverberant(x, 0.7, 5), -30) + room_tone(len(x) / SR, -52, seed=9)).astype(np.float32),
            ref,
            spans,
        ),
        Case("long_gaps_en", "en", apart, ref, apart_spans),
        Case(
            "music_bed_en",
            "en",
            np.clip(x + level(music(len(x) / SR, seed=4), -30)[: len(x)], -1, 1).astype(np.float32),
            ref,
            spans,
        ),
        Case("clipped_en", "en", np.clip(x * 18, -1, 1).astype(np.float32), ref, spans),
    ]
    three = np.concatenate([np.zeros(SR, np.float32), level(voice("three_speakers_en"), -22)])
    cases.append(Case("phone_three_en", "en", telephone(three), ref_text("three_speakers_en")))
    for lang in ("de", "es", "it", "pt"):
        y, sp = read_aloud([f"read_{lang}"], 0.5, start=2.5)
        cases.append(
            Case(f"reverb_{lang}", lang, level(reverberant(y, 0.5, 2), -26), ref_text(f"read_{lang}"), sp)
        )
    return cases + quiet_first_lines()


QUIET_VOICES = ["read_en", "audiobook2_en", "three_speakers_en"]


def quiet_first_line(quiet: str, dbfs: int, bed: str) -> Case:
    """``quiet``'s recording at ``dbfs`` before two readers at -16, over room tone, or room
    tone and a music bed at -40 (``bed`` "room" or "music")."""
    from vad_clips import music

    k = QUIET_VOICES.index(quiet)
    after = [n for n in ["audiobook_en", "read_en", "audiobook2_en"] if n != quiet][:2]
    lay = Layout(start=1.2 + 0.3 * k)
    lay.put(level(voice(quiet), dbfs), gap_after=0.6)
    for n in after:
        lay.put(level(voice(n), -16), gap_after=0.5)
    seconds = lay.t / SR + 1.0
    under = room_tone(seconds, seed=k + 3)
    if bed == "music":
        under = under + level(music(seconds, seed=k + 5), -40)
    ref = " ".join(ref_text(n) for n in [quiet, *after])
    return Case(f"quiet_{quiet}_{-dbfs}_{bed}", "en", lay.mix(under), ref, lay.spans)


def quiet_first_lines() -> list[Case]:
    """A quiet first line (each of three real voices at -36, -42 or -48 dBFS) before two
    readers, over room tone or a music bed."""
    return [
        quiet_first_line(quiet, dbfs, bed)
        for quiet in QUIET_VOICES
        for dbfs in (-36, -42, -48)
        for bed in ("room", "music")
    ]


def main() -> int:
    import real

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", help="case names to run")
    ap.add_argument("--shifts", type=int, default=0, help="N more frame phases of each case (real.py's)")
    args = ap.parse_args()
    from subtitler.engine import runtime

    runtime.prepare()
    cases = [c for c in all_conditions() if not args.only or c.name in args.only]
    if args.shifts:
        real.run_shifts(cases, real.engines(), args.shifts)
    else:
        real.run_tables(cases, real.engines())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
