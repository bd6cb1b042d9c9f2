"""Speech-detection test clips with known speech spans, made here (NumPy, and espeak-ng
for the voices): music alone, laughter-like bursts, near silence, speech over a music
bed, a loud and a quiet speaker, and a two-speaker exchange whose turns overlap.

The music is synthetic (harmonic chords with decaying envelopes, a kick drum and a
hi-hat); the laughter is voiced "ha" bursts (a falling pulse train through vowel
resonances, with breath noise). Each clip: samples, speech spans, and the spans of
music or other non-speech sound. ``python benchmarks/quality.py`` scores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from clips import SENTENCES, Span, _trim, speak

SR = 16000


@dataclass
class Clip:
    name: str
    samples: np.ndarray
    speech: list[Span]  # what is said, when
    music: list[tuple[float, float]] = field(default_factory=list)  # music (or other sound) without speech
    quiet: list[Span] = field(default_factory=list)  # the quiet speaker's sentences (loud/quiet clip)


def music(seconds: float, seed: int = 0, level: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = np.zeros(n, np.float32)
    chords = [(220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7), (261.6, 329.6, 392.0)]
    beat = 0.5
    for k in range(int(seconds / beat)):
        a = int(k * beat * SR)
        seg = np.arange(min(int(2 * beat * SR), n - a)) / SR
        env = np.exp(-seg * 3.0)
        for f in chords[(k // 4) % 4]:
            for h, amp in ((1, 1.0), (2, 0.5), (3, 0.25), (4, 0.12)):
                out[a : a + len(seg)] += (0.08 * amp * env * np.sin(2 * np.pi * f * h * seg)).astype(
                    np.float32
                )
        kick = np.arange(min(int(0.15 * SR), n - a)) / SR
        out[a : a + len(kick)] += (
            0.5 * np.exp(-kick * 30) * np.sin(2 * np.pi * (60 + 80 * np.exp(-kick * 40)) * kick)
        ).astype(np.float32)
        hat = int(a + beat / 2 * SR)
        if hat < n:
            m = min(int(0.05 * SR), n - hat)
            out[hat : hat + m] += (0.15 * rng.normal(size=m) * np.exp(-np.arange(m) / SR * 80)).astype(
                np.float32
            )
    del t
    return (out / np.abs(out).max() * level).astype(np.float32)


def laughter(bursts: int, seed: int = 1, level: float = 0.4) -> np.ndarray:
    """ "ha-ha-ha": voiced bursts of about 0.12 s, 0.1 s apart, pitch falling across the laugh."""
    rng = np.random.default_rng(seed)
    pieces = []
    for k in range(bursts):
        n = int(rng.uniform(0.10, 0.15) * SR)
        t = np.arange(n) / SR
        f0 = 320 - 12 * k + 40 * np.exp(-t * 20)
        phase = 2 * np.pi * np.cumsum(f0) / SR
        pulses = np.sign(np.sin(phase)) * 0.3 + np.sin(phase)  # harsh, voiced
        voiced = sum(np.sin(phase * h) / h for h in range(1, 12)) + 0.3 * pulses
        # open vowel resonances (~700 Hz, ~1200 Hz) by a rough two-tap emphasis
        vowel = (
            voiced + 0.6 * np.sin(2 * np.pi * 700 * t) * voiced + 0.3 * np.sin(2 * np.pi * 1200 * t) * voiced
        )
        env = np.minimum(1, t / 0.015) * np.exp(-t * 12)
        burst = env * (vowel / np.abs(vowel).max() + 0.35 * rng.normal(size=n))
        pieces += [burst, np.zeros(int(rng.uniform(0.07, 0.13) * SR))]
    out = np.concatenate(pieces)
    return (out / np.abs(out).max() * level).astype(np.float32)


def _place(total: np.ndarray, x: np.ndarray, at: float) -> tuple[float, float]:
    a = int(at * SR)
    total[a : a + len(x)] += x[: len(total) - a]
    return round(at, 3), round(at + len(x) / SR, 3)


def _noise(n: int, level: float = 0.002, seed: int = 2) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=n) * level).astype(np.float32)


def _voice(text: str, voice: str = "en-us", wpm: int = 160, level: float = 0.5) -> np.ndarray:
    x = _trim(speak(text, voice, wpm))
    return (x / np.abs(x).max() * level).astype(np.float32)


def build_all() -> list[Clip]:
    clips = []
    # Music alone, laughter alone, near silence: nothing should be shown.
    m = music(20.0)
    clips.append(Clip("music alone", m + _noise(len(m)), [], [(0.0, 20.0)]))
    lg = np.concatenate(
        [
            np.zeros(SR // 2, np.float32),
            laughter(14),
            np.zeros(SR, np.float32),
            laughter(10, seed=3),
            np.zeros(SR // 2, np.float32),
        ]
    )
    clips.append(Clip("laughter", lg + _noise(len(lg)), [], [(0.0, len(lg) / SR)]))
    clips.append(Clip("silence", _noise(12 * SR, 0.001), [], []))
    # Speech over a music bed, after a music-only intro and with a music-only break.
    total = music(36.0, seed=4, level=0.12)
    speech = []
    t = 8.0
    for k, text in enumerate(SENTENCES[:5]):
        v = _voice(text, ("en-us", "en-gb")[k % 2])
        speech.append(Span(*_place(total, v, t), text))
        t = speech[-1].end + (6.0 if k == 2 else 0.8)
    total = total[: int((t + 1.0) * SR)]
    gaps = [(0.0, speech[0].start)] + [
        (a.end, b.start) for a, b in zip(speech, speech[1:]) if b.start - a.end > 3
    ]
    clips.append(Clip("speech over music", total + _noise(len(total)), speech, gaps))
    # A loud and a quiet speaker (25 dB apart), taking turns.
    total = np.zeros(45 * SR, np.float32)
    speech, quiet, t = [], [], 1.0
    for k, text in enumerate(SENTENCES[5:11]):
        loud = k % 2 == 0
        v = _voice(
            text, "en-us", level=0.6 if loud else 0.6 * 10 ** (-25 / 20)
        )  # one voice: only the level differs
        span = Span(*_place(total, v, t), text)
        speech.append(span)
        if not loud:
            quiet.append(span)
        t = span.end + 1.0
    total = total[: int((t + 0.5) * SR)]
    clips.append(Clip("loud and quiet speakers", total + _noise(len(total), 0.0005), speech, [], quiet))
    # Two speakers with overlapping turns, as in a hand-labelled conversation.
    total = np.zeros(45 * SR, np.float32)
    speech, t = [], 1.0
    for k, text in enumerate(SENTENCES[11:16]):
        v = _voice(text, ("en-us", "en-gb-x-rp")[k % 2], wpm=170)
        speech.append(Span(*_place(total, v, t), text))
        t = speech[-1].end + (-0.5 if k % 2 == 0 else 1.2)  # the next turn starts before this one ends
    total = total[: int((max(s.end for s in speech) + 1.0) * SR)]
    clips.append(Clip("two speakers, overlapping", total + _noise(len(total)), speech))
    return clips
