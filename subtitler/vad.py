"""A light energy-based voice activity pass (numpy only): where is there speech?

Used to pull word boundaries onto speech (DTW tends to hand a pause to the word
after it) and to keep subtitles off silence and noise.
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE

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
