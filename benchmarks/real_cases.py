"""Hard cases built from the real voices in ``../shared/realspeech/``.

The failures measured on held-back film, phone and broadcast recordings are of three
kinds, and each is rebuilt here from real speech (never synthetic voices):

- ``quiet_first_line``: a far, quiet sentence (26 dB under the rest) over room tone,
  then two louder speakers; ``quiet_under_music`` the same over a music bed;
- ``rapid_turns``: two voices trading one- to three-word turns 0.15-0.4 s apart,
  cut from real sentences at their word boundaries;
- ``jingle_fast_en`` / ``jingle_fast_fr``: a 4-s jingle, then sentences at 1.3x speed.

Each case is samples (16 kHz), its reference text, and its labelled speech spans.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from subtitler.engine.audio import SAMPLE_RATE, ffmpeg_exe, load_audio
from subtitler.engine.vad import frame_db

REAL = Path(os.environ.get("REALSPEECH", Path(__file__).resolve().parents[2] / "shared" / "realspeech"))
SR = SAMPLE_RATE


@dataclass
class Case:
    name: str
    language: str
    samples: np.ndarray
    reference: str
    speech: list[tuple[float, float]] = field(default_factory=list)  # labelled speech (s)


def ref_text(name: str) -> str:
    return (REAL / f"{name}.ref.txt").read_text(encoding="utf-8").strip()


@cache
def voice(name: str, tempo: float = 1.0) -> np.ndarray:
    """A realspeech file as 16 kHz mono, trimmed of leading and trailing near-silence,
    at ``tempo`` times its speed (ffmpeg's atempo: the pitch is kept)."""
    src = REAL / f"{name}.wav"
    if tempo != 1.0:
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            subprocess.run(
                [
                    ffmpeg_exe(),
                    "-y",
                    "-loglevel",
                    "error",
                    "-i",
                    str(src),
                    "-filter:a",
                    f"atempo={tempo}",
                    "-ac",
                    "1",
                    "-ar",
                    str(SR),
                    f.name,
                ],
                check=True,
            )
            x = load_audio(f.name)
    else:
        x = load_audio(str(src))
    return trim(x)


def trim(x: np.ndarray, db: float = -40.0) -> np.ndarray:
    frame = SR // 100
    n = len(x) // frame
    level = frame_db(x)
    loud = np.flatnonzero(level > level.max() + db)
    a, b = max(0, loud[0] - 5) * frame, min(n, loud[-1] + 6) * frame
    return x[a:b].astype(np.float32)


def level(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x`` scaled so its loud frames (95th percentile, 10 ms RMS) sit at ``dbfs``."""
    rms = 10 ** (frame_db(x) / 20)
    return (x * (10 ** (dbfs / 20) / (np.percentile(rms, 95) + 1e-9))).astype(np.float32)


def room_tone(seconds: float, dbfs: float = -58.0, seed: int = 1) -> np.ndarray:
    """Low-passed noise with a mains hum: a quiet room, as a far microphone hears it."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    white = rng.standard_normal(n)
    brown = np.cumsum(white)
    brown -= np.convolve(brown, np.ones(4001) / 4001, mode="same")  # no drift
    t = np.arange(n) / SR
    x = brown / (np.std(brown) + 1e-9) + 0.3 * np.sin(2 * np.pi * 50 * t) + 0.3 * white
    return (x / np.std(x) * 10 ** (dbfs / 20)).astype(np.float32)


class Layout:
    """Lays pieces of audio end to end with gaps, over a bed, noting each piece's span."""

    def __init__(self, start: float = 0.0):
        self.pieces: list[tuple[int, np.ndarray]] = []
        self.t = int(start * SR)
        self.spans: list[tuple[float, float]] = []

    def put(self, x: np.ndarray, gap_after: float = 0.0, speech: bool = True) -> None:
        self.pieces.append((self.t, x))
        if speech:
            self.spans.append((self.t / SR, (self.t + len(x)) / SR))
        self.t += len(x) + int(gap_after * SR)

    def mix(self, bed: np.ndarray | None = None, tail: float = 1.0) -> np.ndarray:
        n = self.t + int(tail * SR)
        out = np.zeros(n, np.float32)
        if bed is not None:
            out[: min(n, len(bed))] += bed[:n]
        for at, x in self.pieces:
            out[at : at + len(x)] += x[: n - at]
        return np.clip(out, -1, 1)


def quiet_first_line(under_music: bool = False) -> Case:
    """A far, quiet first line, then louder speakers, over room tone (or a music bed)."""
    lay = Layout(start=1.6)
    lay.put(level(voice("read_en"), -42), gap_after=0.7)  # 26 dB under the rest
    lay.put(level(voice("audiobook_en"), -16), gap_after=0.5)
    lay.put(level(voice("audiobook2_en"), -16))
    seconds = lay.t / SR + 1.0
    bed = room_tone(seconds)
    if under_music:
        from vad_clips import music

        bed = bed + level(music(seconds, seed=3), -40)
    ref = " ".join(ref_text(n) for n in ("read_en", "audiobook_en", "audiobook2_en"))
    name = "quiet_under_music" if under_music else "quiet_first_line"
    return Case(name, "en", lay.mix(bed), ref, lay.spans)


@cache
def word_times(name: str) -> list[tuple[str, float, float]]:
    """(word, start, end) of a trimmed voice, by faster-whisper's word timing (the peer's,
    beam 5), so the cuts do not lean on our own timing."""
    from faster_whisper import WhisperModel

    from subtitler.engine.whisper.load import offline_model_dir

    fw = WhisperModel(str(offline_model_dir("tiny.en")), device="cpu", compute_type="float32")
    segs, _ = fw.transcribe(voice(name), beam_size=5, word_timestamps=True, language="en")
    return [(w.word.strip(), w.start, w.end) for s in segs for w in s.words]


def pieces_of(name: str, sizes: list[int]) -> list[tuple[np.ndarray, str]]:
    """Cut a voice at its word boundaries into pieces of ``sizes`` words: (audio, text)."""
    x = voice(name)
    words = word_times(name)
    out, k = [], 0
    for size in sizes:
        group = words[k : k + size]
        if len(group) < size:
            break
        prev_end = words[k - 1][2] if k else 0.0
        next_start = words[k + size][1] if k + size < len(words) else len(x) / SR
        a = (group[0][1] + prev_end) / 2 if k else max(0.0, group[0][1] - 0.05)
        b = min(next_start, group[-1][2] + 0.08)
        seg = x[int(a * SR) : int(b * SR)].copy()
        fade = min(len(seg) // 4, int(0.01 * SR))
        if fade:
            seg[:fade] *= np.linspace(0, 1, fade)
            seg[-fade:] *= np.linspace(1, 0, fade)
        out.append((seg, " ".join(w for w, _, _ in group)))
        k += size
    return out


def rapid_turns() -> Case:
    """Two real voices trading one- to three-word turns, 0.15-0.4 s apart, over room tone."""
    rng = np.random.default_rng(7)
    a = pieces_of("audiobook2_en", [1, 2, 1, 3, 2, 2, 3])
    b = pieces_of("read_en", [2, 1, 3, 1, 2, 3, 2])
    lay = Layout(start=0.8)
    texts = []
    for (xa, ta), (xb, tb) in zip(a, b):
        for x, t in ((level(xa, -18), ta), (level(xb, -20), tb)):
            lay.put(x, gap_after=float(rng.uniform(0.15, 0.4)))
            texts.append(t)
    bed = room_tone(lay.t / SR + 1.0, dbfs=-55)
    return Case("rapid_turns", "en", lay.mix(bed), " ".join(texts), lay.spans)


def jingle_fast(language: str) -> Case:
    """A loud 4-s jingle, then fast (1.3x) speech fading in over its tail."""
    from vad_clips import music

    names = {"en": ["audiobook_en", "read_en", "audiobook2_en"], "fr": ["read_fr", "read_fr"]}[language]
    tempos = {"en": [1.3, 1.3, 1.3], "fr": [1.3, 1.15]}[language]
    lay = Layout()
    jingle = level(music(4.0, seed=11), -14)
    jingle[-SR:] *= np.linspace(1, 0.05, SR)
    lay.put(jingle, gap_after=-0.6, speech=False)  # the speech comes in over the jingle's tail
    for n, tempo in zip(names, tempos):
        lay.put(level(voice(n, tempo), -16), gap_after=0.25)
    bed = room_tone(lay.t / SR + 1.0, dbfs=-60)
    ref = " ".join(ref_text(n) for n in names)
    return Case(f"jingle_fast_{language}", language, lay.mix(bed), ref, lay.spans)


def all_cases() -> list[Case]:
    return [
        quiet_first_line(),
        quiet_first_line(under_music=True),
        rapid_turns(),
        jingle_fast("en"),
        jingle_fast("fr"),
    ]
