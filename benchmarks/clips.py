"""Long test clips with known sentence times, for the speed and quality benchmarks.

espeak-ng speaks sentences in several voices and speeds; numpy lays them out with
pauses of 0.3-5 s, a stretch of noise only, low background noise and the real clips
from tests/data; ffmpeg wraps the result in an mp4. Needs espeak-ng (apt).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from subtitler.engine.audio import SAMPLE_RATE, ffmpeg_exe, load_audio

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"

SENTENCES = [
    "The museum opens at nine in the morning and closes at six.",
    "Please remember to bring your passport to the airport.",
    "Our team finished the project two weeks ahead of schedule.",
    "The weather forecast says it will rain heavily tomorrow afternoon.",
    "She bought three apples, a loaf of bread and some cheese.",
    "Turn left at the second traffic light and park near the bank.",
    "The library has thousands of books about history and science.",
    "He plays the piano every evening after dinner.",
    "We need to update the software before the meeting on Friday.",
    "The children built a small boat out of wood and string.",
    "A good night of sleep helps you think more clearly.",
    "The train to London leaves from platform four.",
    "They planted tomatoes and beans in the garden this spring.",
    "Water boils at one hundred degrees at sea level.",
    "The concert was cancelled because the singer was ill.",
    "Could you send me the report by the end of the day?",
]
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
# ls_test.flac (LibriSpeech test-clean). We have no official transcript at hand: this is
# the reading that larger Whisper models agree on, so its WER contribution is approximate.
LS_TEXT = (
    "Then the good soul openly shouldered the burden she had borne so long in secret "
    "and bravely trudged on alone."
)
VOICES = [("en-us", 160), ("en-gb", 150), ("en-gb-scotland", 175), ("en-us+f3", 140), ("en-gb-x-rp", 185)]


@dataclass
class Span:
    start: float
    end: float
    text: str


def speak(text: str, voice: str, wpm: int) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", f.name, text], check=True, capture_output=True
        )
        return load_audio(f.name)


def _trim(x: np.ndarray, thr: float = 0.01) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x) > thr)
    return x[idx[0] : idx[-1] + 1] if idx.size else x


def build(minutes: float = 2.5, noise_gap: float = 35.0, seed: int = 0):
    """Samples plus the true speech spans (start, end, text) and the noise-only span."""
    rng = np.random.default_rng(seed)
    pieces, spans, t = [], [], 0.0
    noise_span = None

    def add(x, text=None):
        nonlocal t
        pieces.append(x)
        if text is not None:
            spans.append(Span(round(t, 3), round(t + len(x) / SAMPLE_RATE, 3), text))
        t += len(x) / SAMPLE_RATE

    def pause(seconds):
        add(np.zeros(int(seconds * SAMPLE_RATE), np.float32))

    pause(1.0)
    add(_trim(load_audio(str(DATA / "jfk.flac")), 0.02), JFK_TEXT)
    k = 0
    while t < minutes * 60:
        if noise_span is None and t > minutes * 60 * 0.4:
            pause(1.5)
            n0 = t
            pause(noise_gap)  # filled with noise below
            noise_span = (n0, t)
            pause(1.5)
        if k == 6:  # the second real recording, among the synthetic voices
            add(_trim(load_audio(str(DATA / "ls_test.flac")), 0.02), LS_TEXT)
            pause(1.0)
        voice, wpm = VOICES[k % len(VOICES)]
        text = SENTENCES[k % len(SENTENCES)]
        add(_trim(speak(text, voice, wpm)), text)
        pause(float(rng.choice([0.3, 0.6, 1.0, 2.0, 3.5, 5.0])))
        k += 1
    audio = np.concatenate(pieces).astype(np.float32)
    peak = np.abs(audio).max()
    audio = audio / peak * 0.5
    # Low background noise everywhere, louder (but never speech) in the noise-only stretch.
    audio += rng.normal(0, 0.004, audio.size).astype(np.float32)
    a, b = int(noise_span[0] * SAMPLE_RATE), int(noise_span[1] * SAMPLE_RATE)
    hum = 0.02 * np.sin(2 * np.pi * 60 * np.arange(b - a) / SAMPLE_RATE)
    audio[a:b] += (rng.normal(0, 0.03, b - a) + hum).astype(np.float32)
    return np.clip(audio, -1, 1), spans, noise_span


def write_mp4(samples: np.ndarray, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    pcm = (samples * 32767).astype(np.int16).tobytes()
    subprocess.run(
        [
            ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:s=320x240:r=10",
            "-f",
            "s16le",
            "-ar",
            str(SAMPLE_RATE),
            "-ac",
            "1",
            "-i",
            "-",
            "-shortest",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            str(out),
        ],
        input=pcm,
        check=True,
    )
    return out


def make(out_dir: Path, minutes: float = 2.5) -> tuple[Path, list[Span], tuple[float, float]]:
    """Build (or reuse) the long clip; returns the mp4, the speech spans and the noise span."""
    out_dir = Path(out_dir)
    mp4, meta = out_dir / f"long-{minutes:g}min-v2.mp4", out_dir / f"long-{minutes:g}min-v2.json"
    if not (mp4.exists() and meta.exists()):
        samples, spans, noise = build(minutes)
        write_mp4(samples, mp4)
        meta.write_text(json.dumps({"spans": [asdict(s) for s in spans], "noise": noise}))
    m = json.loads(meta.read_text())
    return mp4, [Span(**s) for s in m["spans"]], tuple(m["noise"])
