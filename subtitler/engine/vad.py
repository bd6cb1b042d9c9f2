"""Where is there speech? A mask over 10-ms frames, from two passes:

- Silero VAD (``silero``), a neural network trained to tell speech from music,
  laughter and noise, gives P(speech) every 32 ms; its speech regions (with
  hysteresis, and a margin) say where speech may be;
- an energy pass puts the edges on the 10-ms frames that carry sound, relative to
  the loudest sound nearby (not in the whole file), so a quiet speaker beside a loud
  one keeps every word.

The transcription loop uses it to skip windows without speech and to drop segments
decoded over non-speech; word timing (``word_edges``) pulls word boundaries onto it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from subtitler.engine.audio import SAMPLE_RATE

FRAME = SAMPLE_RATE // 100  # 10 ms


def frame_db(samples: np.ndarray) -> np.ndarray:
    """The level of each 10 ms frame in dB, a block of frames at a time (each block's
    samples let go behind it where they map a file: ``audio.release``)."""
    from subtitler.engine.audio import release

    n = len(samples) // FRAME
    x = np.asarray(samples[: n * FRAME], np.float32).reshape(n, FRAME)  # a view: no copy of the audio
    energy = np.empty(n, np.float32)
    for a in range(0, n, BLOCK_FRAMES):
        rows = x[a : a + BLOCK_FRAMES]
        energy[a : a + len(rows)] = np.einsum("ij,ij->i", rows, rows)
        release(samples, a * FRAME, (a + len(rows)) * FRAME)
    return 20 * np.log10(np.sqrt(energy / FRAME) + 1e-9)


BLOCK_FRAMES = 1 << 15  # frames (5.5 minutes) a pass over a recording takes at once


# Silero's speech regions: start above ON, end below OFF (its own defaults), and a
# region is widened by MARGIN on each side (its probabilities lag the speech by a
# chunk or two). Measured on benchmarks/quality.py's clips (``--vad`` cases).
ON, OFF = 0.5, 0.35
MARGIN_MS = 200
LOCAL_MS = 1500  # the energy pass compares a frame with the loudest sound this close
MARGIN_DB = 18.0  # a frame counts as sound within this much of that loudest sound
FLOOR_DB = 6.0  # and this much above the file's noise floor


def neural_regions(
    samples: np.ndarray, cancel=None, probabilities: Optional[np.ndarray] = None
) -> np.ndarray:
    """Boolean per 10 ms frame: inside one of Silero's speech regions (with margins).
    ``probabilities``: Silero's for these samples, when found already (``silero.SpeechStream``)."""
    from subtitler.engine import silero

    n = len(samples) // FRAME
    probs = silero.speech_probabilities(samples, cancel) if probabilities is None else probabilities
    # Hysteresis: a chunk is in a region when the last chunk up to it that decided
    # (P >= ON starts or keeps one, P < OFF ends it; in between the state holds) started one.
    decided = np.flatnonzero((probs >= ON) | (probs < OFF))
    last = np.full(len(probs), -1, np.int64)
    last[decided] = decided
    last = np.maximum.accumulate(last)
    on = (last >= 0) & (probs[np.maximum(last, 0)] >= ON)
    chunk_of_frame = np.minimum((np.arange(n) * FRAME) // silero.CHUNK, len(on) - 1)
    frames = on[chunk_of_frame] if len(on) else np.zeros(n, bool)
    margin = MARGIN_MS // 10
    if frames.any() and margin:  # widen each region by the margin: a maximum filter
        padded = np.pad(frames, margin)
        frames = np.lib.stride_tricks.sliding_window_view(padded, 2 * margin + 1).any(axis=1)
    return frames


def percentile(x: np.ndarray, q: float) -> float:
    """``np.percentile(x, q)`` (linear interpolation; the same to float rounding), by a
    partition: NumPy's own first imports ``numpy.ma``, a cost on every process's first
    transcription."""
    pos = (x.size - 1) * q / 100
    lo = int(np.floor(pos))
    hi = min(lo + 1, x.size - 1)
    part = np.partition(x, [lo, hi])
    a, b, t = part[lo], part[hi], x.dtype.type(pos - lo)  # in the array's precision, as NumPy's
    return float(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)  # NumPy's lerp


def levels(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per 10 ms frame: the level (dB, smoothed over 3 frames) and the loudest level
    within ``LOCAL_MS``; and the file's noise floor."""
    smooth = np.convolve(frame_db(samples), np.ones(3) / 3, mode="same")
    half = LOCAL_MS // 20
    local_peak = np.lib.stride_tricks.sliding_window_view(
        np.pad(smooth, half, mode="edge"), 2 * half + 1
    ).max(axis=1)
    return smooth, local_peak, percentile(smooth, 10)


def sound_mask(samples: np.ndarray) -> np.ndarray:
    """Boolean per 10 ms frame: within ``MARGIN_DB`` of the loudest sound within
    ``LOCAL_MS`` and ``FLOOR_DB`` above the noise floor."""
    if len(samples) < FRAME:
        return np.zeros(0, bool)
    smooth, local_peak, floor = levels(samples)
    return (smooth > local_peak - MARGIN_DB) & (smooth > floor + FLOOR_DB)


def speech_mask(samples: np.ndarray, cancel=None, probabilities: Optional[np.ndarray] = None) -> np.ndarray:
    """Boolean per 10 ms frame: speech, as the two passes agree on it. ``cancel``: see
    ``silero.speech_probabilities``; ``probabilities``: see ``neural_regions``."""
    sound = sound_mask(samples)
    return sound & neural_regions(samples, cancel, probabilities)[: len(sound)]


def speech_fraction(mask: np.ndarray, start: float, end: float) -> float:
    """Share of 10 ms frames between ``start`` and ``end`` (seconds) that hold speech."""
    a, b = max(0, int(start * 100)), max(0, int(np.ceil(end * 100)))
    span = mask[a:b]
    return float(span.mean()) if span.size else 0.0
