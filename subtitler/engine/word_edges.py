"""Word edges on the speech: DTW tends to hand a pause to the word after it, so each
word's start and end are pulled onto the speech of its span (``refine_words``), taking
in each speech region's soft onset and decay (``with_edges``). Word timing's second
step, after ``whisper.timing``'s alignment; the mask comes from ``vad``."""

from __future__ import annotations

import numpy as np

from subtitler.engine.vad import FLOOR_DB, levels

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
    smooth, local_peak, floor = levels(samples)
    n = min(len(smooth), len(speech))
    edge = (smooth[:n] > local_peak[:n] - EDGE_DB) & (smooth[:n] > floor + FLOOR_DB)
    out = speech[:n].copy()
    for _ in range(EDGE_FRAMES):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        out |= grown & edge
    return out


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
