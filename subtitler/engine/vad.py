"""A light energy-based voice activity pass (numpy only): where is there speech?

Used to pull word boundaries onto speech (DTW tends to hand a pause to the word
after it) and to keep subtitles off silence and noise.
"""

from __future__ import annotations

import numpy as np

from subtitler.engine.audio import SAMPLE_RATE

FRAME = SAMPLE_RATE // 100  # 10 ms


def frame_db(samples: np.ndarray) -> np.ndarray:
    n = len(samples) // FRAME
    x = samples[: n * FRAME].reshape(n, FRAME).astype(np.float32)
    return 20 * np.log10(np.sqrt((x * x).mean(axis=1)) + 1e-9)


def speech_mask(samples: np.ndarray, margin_db: float = 18.0) -> np.ndarray:
    """Boolean per 10 ms frame: True where the level is within ``margin_db`` of the
    loud speech peaks and clearly above the noise floor."""
    db = frame_db(samples)
    if db.size == 0:
        return np.zeros(0, bool)
    smooth = np.convolve(db, np.ones(3) / 3, mode="same")
    floor = np.percentile(smooth, 10)
    peak = np.percentile(smooth, 99.5)
    threshold = max(peak - margin_db, floor + 6.0)
    return smooth > threshold


def refine_words(words, mask: np.ndarray, min_keep: float = 0.05) -> None:
    """Move each word's start forward (and end back) to the speech inside its span.

    ``words`` have ``start``/``end`` in seconds; a word whose span holds no speech
    frames is left as it is.
    """
    for w in words:
        a, b = int(w.start * 100), int(np.ceil(w.end * 100))
        span = mask[max(0, a) : max(0, b)]
        idx = np.flatnonzero(span)
        if idx.size == 0:
            continue
        start = (a + idx[0]) / 100
        end = (a + idx[-1] + 1) / 100
        if end - start >= min_keep:
            w.start, w.end = round(float(max(w.start, start)), 3), round(float(min(w.end, end)), 3)


def speech_fraction(mask: np.ndarray, start: float, end: float) -> float:
    """Share of 10 ms frames between ``start`` and ``end`` (seconds) that hold speech."""
    a, b = max(0, int(start * 100)), max(0, int(np.ceil(end * 100)))
    span = mask[a:b]
    return float(span.mean()) if span.size else 0.0


def is_repetition_loop(text: str, min_repeats: int = 4) -> bool:
    """True when the text is mostly one short phrase said over and over."""
    words = text.lower().split()
    if len(words) < min_repeats * 2:
        return False
    for n in range(1, 6):
        grams = [" ".join(words[i : i + n]) for i in range(0, len(words) - n + 1, n)]
        run = best = 1
        for a, b in zip(grams, grams[1:]):
            run = run + 1 if a == b else 1
            best = max(best, run)
        if best >= min_repeats and best * n >= 0.6 * len(words):
            return True
    return False
