"""Where is there speech? A mask over 10-ms frames, from two passes:

- Silero VAD (``silero``), a neural network trained to tell speech from music,
  laughter and noise, gives P(speech) every 32 ms; its speech regions (with
  hysteresis, and a margin) say where speech may be;
- an energy pass puts the edges on the 10-ms frames that carry sound, relative to
  the loudest sound nearby (not in the whole file), so a quiet speaker beside a loud
  one keeps every word.

The transcription loop uses it to skip windows without speech, to drop segments
decoded over non-speech, and to pull word boundaries onto speech (DTW tends to hand
a pause to the word after it), taking in each region's soft onset and decay
(``with_edges``).
"""

from __future__ import annotations

import numpy as np

from subtitler.engine.audio import SAMPLE_RATE

FRAME = SAMPLE_RATE // 100  # 10 ms


def frame_db(samples: np.ndarray) -> np.ndarray:
    n = len(samples) // FRAME
    x = np.asarray(samples[: n * FRAME], np.float32).reshape(n, FRAME)  # a view: no copy of the audio
    return 20 * np.log10(np.sqrt(np.einsum("ij,ij->i", x, x) / FRAME) + 1e-9)


# Silero's speech regions: start above ON, end below OFF (its own defaults), and a
# region is widened by MARGIN on each side (its probabilities lag the speech by a
# chunk or two). Measured on benchmarks/quality.py's clips (``--vad`` cases).
ON, OFF = 0.5, 0.35
MARGIN_MS = 200
LOCAL_MS = 1500  # the energy pass compares a frame with the loudest sound this close
MARGIN_DB = 18.0  # a frame counts as sound within this much of that loudest sound
FLOOR_DB = 6.0  # and this much above the file's noise floor


def neural_regions(samples: np.ndarray, cancel=None) -> np.ndarray:
    """Boolean per 10 ms frame: inside one of Silero's speech regions (with margins)."""
    from subtitler.engine import silero

    n = len(samples) // FRAME
    probs = silero.speech_probabilities(samples, cancel)
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
    partition: NumPy's own first imports ``numpy.ma``, 13-16 ms of every process's
    first transcription here."""
    pos = (x.size - 1) * q / 100
    lo = int(np.floor(pos))
    hi = min(lo + 1, x.size - 1)
    part = np.partition(x, [lo, hi])
    a, b, t = part[lo], part[hi], x.dtype.type(pos - lo)  # in the array's precision, as NumPy's
    return float(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)  # NumPy's lerp


def _levels(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
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
    smooth, local_peak, floor = _levels(samples)
    return (smooth > local_peak - MARGIN_DB) & (smooth > floor + FLOOR_DB)


# A speech region's soft onset and decay, which word edges take in: the frames beside
# it within EDGE_DB of the loudest sound nearby, up to EDGE_FRAMES out (chosen on
# benchmarks/quality.py's clips; figures in benchmarks/README.md).
EDGE_DB = 30.0
EDGE_FRAMES = 5


def with_edges(samples: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """``speech`` with each region's onset and decay: the frames beside it, up to
    ``EDGE_FRAMES`` out, that stay within ``EDGE_DB`` of the loudest sound nearby (and
    above the floor). Word edges go onto these; what counts as speech does not."""
    if not speech.any():
        return speech
    smooth, local_peak, floor = _levels(samples)
    n = min(len(smooth), len(speech))
    edge = (smooth[:n] > local_peak[:n] - EDGE_DB) & (smooth[:n] > floor + FLOOR_DB)
    out = speech[:n].copy()
    for _ in range(EDGE_FRAMES):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        out |= grown & edge
    return out


def speech_mask(samples: np.ndarray, cancel=None) -> np.ndarray:
    """Boolean per 10 ms frame: speech, as the two passes agree on it. ``cancel``: see
    ``silero.speech_probabilities``."""
    sound = sound_mask(samples)
    return sound & neural_regions(samples, cancel)[: len(sound)]


REACH_BACK = 30  # frames (0.3 s): how far a word's start may move back onto the speech it begins
HOLE = 6  # frames: a gap this short in the mask is still the same stretch of speech


def refine_words(
    words, mask: np.ndarray, min_keep: float = 0.05, not_before: float = 0.0, edges: np.ndarray | None = None
) -> float:
    """Put each word's edges on the speech of its span: the start forward (and the end
    back) past non-speech, and a start that DTW put inside speech back to where that
    speech begins (at most ``REACH_BACK``, never before the previous word's end or
    ``not_before``). ``words`` have ``start``/``end`` in seconds; a word whose span holds
    no speech frames is left as it is. ``edges``: ``mask`` with its regions' onsets and
    decays (``with_edges``), which the edges found take in, within the word's span.
    Returns the last word's end (or ``not_before``)."""
    edges = mask if edges is None else edges
    for w in words:
        a, b = int(w.start * 100), int(np.ceil(w.end * 100))
        span = mask[max(0, a) : max(0, b)]
        idx = np.flatnonzero(span)
        if idx.size == 0 and b > a:  # a word over no speech at all: left as it is
            not_before = max(not_before, w.end)
            continue
        if idx.size:
            lo, hi = max(0, a) + idx[0], max(0, a) + idx[-1]  # the span's first and last speech frames
            while lo > max(0, a) and edges[lo - 1]:  # the onset before them...
                lo -= 1
            while hi + 1 < min(b, len(edges)) and edges[hi + 1]:  # ...and the decay after
                hi += 1
            start, end = lo / 100, (hi + 1) / 100
            if end - start >= min_keep:
                w.start, w.end = round(float(max(w.start, start)), 3), round(float(min(w.end, end)), 3)
        first = int(round(w.start * 100))  # (a word DTW gave no time at all only moves back)
        floor = max(first - REACH_BACK, int(np.ceil(not_before * 100)), 0)
        lead, k = first, first - 1
        while k >= floor and first - k <= REACH_BACK:  # back over speech, and holes under HOLE frames in it
            if edges[k]:
                lead = k
            elif lead - k > HOLE:
                break
            k -= 1
        if lead < first:
            w.start = round(lead / 100, 3)
        not_before = max(not_before, w.end)
    return not_before


def speech_fraction(mask: np.ndarray, start: float, end: float) -> float:
    """Share of 10 ms frames between ``start`` and ``end`` (seconds) that hold speech."""
    a, b = max(0, int(start * 100)), max(0, int(np.ceil(end * 100)))
    span = mask[a:b]
    return float(span.mean()) if span.size else 0.0
